"""Task switching for policies (2D navigation): goal A -> goal B -> goal A,
each link adapted by the learner's own policy-gradient steps (:meth:`PolicyLearner.adapt`)
from the previous link's weights (``no_reset``) or from the meta-policy (``reset``)."""
import numpy as np

from maml_tf.evaluation.settings import check_steps
from maml_tf.evaluation.switching import MODES, distance_from, global_norm, over_chains
from maml_tf.rl.learner import mean_returns


def policy_switching(learner, chain, steps=3, step_sizes=None, episodes_per_task=None, seed=0):
    """Adapt a policy along chains of tasks with and without resetting to its meta-weights.

    Args:
        learner: a :class:`~maml_tf.rl.learner.PolicyLearner` (its weights: the meta-policy).
        chain: the links in order, each a list of tasks, one per chain (e.g. goals from
            ``learner.sample_tasks``; pass the same list again to revisit a task).
        steps, step_sizes, episodes_per_task: as :meth:`PolicyLearner.adapt`, per link.
        seed: the sampling seed; both modes draw the same seeds (common random numbers).

    Returns:
        ``{"steps", "num_chains", "num_links", "weight_norm", "reset": {...}, "no_reset": {...}}``
        with :func:`~maml_tf.evaluation.switching.over_chains` dicts: ``return`` ``[links,
        steps + 1]`` (mean episode return after 0..steps steps), ``gradient_norm`` ``[links]``
        (of the first step's policy gradient), ``distance`` / ``relative_distance``
        ``[links + 1]`` (from the meta-policy at the chain's start and after each link).
    """
    steps = check_steps(steps)
    chain = [list(link) for link in chain]
    if not chain:
        raise ValueError("chain is empty: give at least one link (a list of tasks, one per chain), "
                         "e.g. [goals_a, goals_b, goals_a].")
    sizes = {len(link) for link in chain}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError("Every link needs the same number of tasks (one per chain), at least one; "
                         f"got {sorted(sizes)}.")
    if step_sizes is None:
        step_sizes = (learner.inner_lr, learner.inner_lr / 2)  # PolicyLearner.adapt's default
    num_chains = sizes.pop()
    meta = [v.numpy() for v in learner.model.trainable_variables]
    result = {"steps": steps, "num_chains": num_chains, "num_links": len(chain), "weight_norm": global_norm(meta)}
    for mode in MODES:
        weights, per_link = None, []
        for index, tasks in enumerate(chain):
            start = None if mode == "reset" else weights
            returns, grad_norm = [], np.zeros(num_chains)
            for k in range(steps):
                size = step_sizes[min(k, len(step_sizes) - 1)]
                adapted, sampled = learner.adapt(tasks, 1, [size], episodes_per_task, _seed(seed, index, k), start)
                if k == 0:  # the inner step is theta - size * gradient
                    grad_norm = distance_from(adapted, meta if start is None else start) / size
                returns.append(sampled[:, 0])
                start = adapted
            final = learner.sample(tasks, _seed(seed, index, steps), start, episodes_per_task)
            returns.append(mean_returns(final))
            weights = start if start is not None else _stacked_meta(meta, num_chains)
            per_link.append({"return": np.stack(returns, axis=1), "gradient_norm": grad_norm,
                             "distance": distance_from(weights, meta)})
        per_chain = {key: np.stack([r[key] for r in per_link], axis=1) for key in per_link[0]}
        per_chain["distance"] = np.concatenate([np.zeros((num_chains, 1)), per_chain["distance"]], axis=1)
        per_chain["relative_distance"] = per_chain["distance"] / result["weight_norm"]
        result[mode] = {key: over_chains(value) for key, value in per_chain.items()}
    return result


def _seed(seed, link, step):
    return int(np.random.SeedSequence([seed, link, step]).generate_state(1)[0])


def _stacked_meta(meta, num_chains):
    return [np.repeat(m[None], num_chains, axis=0) for m in meta]
