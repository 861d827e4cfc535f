"""Adaptation speed: the metric after 0..steps inner steps, optionally with another inner
step size than at meta-training (does MAML's initialisation still adapt well off its alpha?)."""
import contextlib

from maml_tf.evaluation.protocol import meta_test
from maml_tf.evaluation.settings import TEST_SEED, check_num_tasks, check_steps


def set_inner_step_size(maml, inner_lr):
    """Make ``maml`` adapt with the plain SGD step size ``inner_lr`` from now on."""
    if not float(inner_lr) > 0:
        raise ValueError(f"inner_lr must be > 0, got {inner_lr}.")
    if getattr(maml.inner_rule, "rates", None) is not None:
        raise ValueError("inner_lr= replaces the plain SGD step size; this MAML learns its step "
                         "sizes (meta-sgd or lslr): leave inner_lr=None.")
    maml.inner_rule.learning_rate = maml.inner_lr = float(inner_lr)
    maml._compiled_fns.clear()  # traced functions hold the step size as a constant


@contextlib.contextmanager
def inner_step_size(maml, inner_lr):
    """Within the block, ``maml`` adapts with step size ``inner_lr`` (plain SGD rule only)."""
    if inner_lr is None:
        yield maml
        return
    before = maml.inner_rule.learning_rate
    set_inner_step_size(maml, inner_lr)
    try:
        yield maml
    finally:
        set_inner_step_size(maml, before)


def adaptation_curve(maml, tasks, steps=20, inner_lr=None, num_tasks=100, seed=TEST_SEED, chunk_size=50):
    """Query loss (and accuracy for classification) after 0, 1, ..., ``steps`` inner steps on
    ``num_tasks`` fixed tasks of ``tasks``, with step size ``inner_lr`` (default the model's).

    Returns ``{"steps": [0..steps], "inner_lr", "num_tasks", "loss": {"mean": [...], "ci95":
    [...]}, "accuracy": {...}}``; index 0 is the unadapted model.
    """
    check_steps(steps)
    check_num_tasks(num_tasks)
    with inner_step_size(maml, inner_lr):
        result = meta_test(maml, tasks.fixed_tasks(num_tasks, seed, chunk_size), int(steps))
        lr = maml.inner_rule.learning_rate
    out = {"steps": list(range(int(steps) + 1)), "inner_lr": float(lr), "num_tasks": result["num_tasks"]}
    for metric in ("loss", "accuracy"):
        if metric in result:
            out[metric] = {"mean": [float(v) for v in result[metric]["mean"]],
                           "ci95": [float(v) for v in result[metric]["ci95"]]}
    return out
