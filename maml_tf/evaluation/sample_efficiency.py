"""Sample efficiency: the metric after adaptation on K = 1, 2, 5, ... support examples (per
class for classification), whatever K the model was meta-trained with."""
from maml_tf.evaluation.settings import TEST_SEED, evaluate_settings


def sample_efficiency(maml, tasks, shots=(1, 2, 5, 10, 20), steps=None, num_tasks=100, seed=TEST_SEED,
                      chunk_size=50):
    """Score ``maml`` after ``steps`` inner steps on ``tasks.with_shots(K)`` for each K of
    ``shots``; the query sets are drawn as ``tasks``' (same size for every K).

    Returns :func:`~maml_tf.evaluation.settings.evaluate_settings`' result, settings = ``shots``.
    """
    shots = tuple(shots)
    bad = [k for k in shots if int(k) != k or k < 1]
    if not shots or bad:
        raise ValueError(f"shots must be whole numbers >= 1, got {shots}.")
    settings = {int(k): tasks.with_shots(int(k)) for k in shots}
    return evaluate_settings(maml, settings, steps, num_tasks, seed, chunk_size)
