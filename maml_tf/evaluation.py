"""Meta-test protocol: adapt on many held-out tasks, report per-step mean +- 95% CI."""
import numpy as np
import tensorflow as tf


def mean_ci95(values, axis=0):
    """Mean and half-width of the normal-approximation 95% confidence interval."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    ci = 1.96 * values.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, ci


def meta_test(maml, episodes, steps=None, tasks_per_batch=None):
    """Evaluate ``maml`` on a fixed set of test tasks.

    Args:
        maml: a compiled ``MAML``.
        episodes: one meta-batch holding every test task, or an iterable of meta-batches.
        steps: inner steps at test time (default ``maml.eval_inner_steps``).
        tasks_per_batch: split a single large meta-batch into chunks of this many tasks
            (bounds memory for conv nets).

    Returns:
        ``{"loss": {"mean": [steps+1], "ci95": [steps+1], "per_task": [T, steps+1]},
        "accuracy": {...} (integer labels only), "num_tasks": T}``; index i = after i steps.
    """
    batches = _batches(episodes, tasks_per_batch)
    collected = {}
    for batch in batches:
        for key, value in maml.evaluate_tasks(batch, steps).items():
            collected.setdefault(key, []).append(np.asarray(value))
    if not collected:
        raise ValueError("meta_test got no episodes.")
    result = {}
    for key, chunks in collected.items():
        per_task = np.concatenate(chunks, axis=0)
        mean, ci = mean_ci95(per_task)
        result[key] = {"mean": mean.tolist(), "ci95": ci.tolist(),
                       "median": np.median(per_task, axis=0).tolist(), "per_task": per_task}
        result["num_tasks"] = int(per_task.shape[0])
    return result


def _batches(episodes, tasks_per_batch):
    if isinstance(episodes, dict):
        if tasks_per_batch is None:
            return [episodes]
        total = int(episodes["support"][0].shape[0])
        return [tf.nest.map_structure(lambda t: t[i:i + tasks_per_batch], episodes)
                for i in range(0, total, tasks_per_batch)]
    return episodes
