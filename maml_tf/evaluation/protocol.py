"""Meta-test protocol: adapt on many held-out tasks, report per-step mean +- 95% CI."""
import numpy as np


def mean_ci95(values, axis=0):
    """Mean and half-width of the normal-approximation 95% confidence interval."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    ci = 1.96 * values.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    return mean, ci


def meta_test(maml, episodes, steps=None, progress=None):
    """Evaluate ``maml`` on a fixed set of test tasks.

    Args:
        maml: a compiled ``MAML``.
        episodes: one meta-batch holding every test task, or an iterable of meta-batches
            (chunks bound the memory of conv nets).
        steps: inner steps at test time (default ``maml.eval_inner_steps``).
        progress: called with the number of tasks scored so far after each meta-batch.

    Returns:
        ``{"loss": {"mean": [steps+1], "ci95": [steps+1], "median": [steps+1],
        "per_task": [T, steps+1]}, "accuracy": {...} (integer labels only), "num_tasks": T}``;
        index i = after i steps.
    """
    collected, done = {}, 0
    for batch in [episodes] if isinstance(episodes, dict) else episodes:
        for key, value in maml.evaluate_tasks(batch, steps).items():
            collected.setdefault(key, []).append(np.asarray(value))
        done += len(collected["loss"][-1])
        if progress is not None:
            progress(done)
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
