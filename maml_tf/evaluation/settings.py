"""One measurement over several settings: a meta-trained model scored on a task distribution
per setting (a shift, a noise level, a K), with the per-setting mean and 95% CI over tasks.
The basis of the evaluation suite's measures."""
import numpy as np

from maml_tf.core import arguments
from maml_tf.evaluation.protocol import meta_test

TEST_SEED = 30_000  # fixed test tasks: every model scored with one seed sees the same tasks


def check_steps(steps):
    """``steps`` as an int >= 0 (None stays None: the model's own), else a one-line error."""
    return arguments.whole_number("steps", steps, none_ok=True)


def check_num_tasks(num_tasks):
    if int(num_tasks) < 2:
        raise ValueError(f"num_tasks must be >= 2 (a 95% CI needs two tasks), got {num_tasks}.")


def evaluate_settings(maml, settings, steps=None, num_tasks=100, seed=TEST_SEED, chunk_size=50):
    """Score ``maml`` after ``steps`` inner steps (default ``maml.eval_inner_steps``) on
    ``num_tasks`` fixed tasks of each task distribution of ``settings`` (label -> tasks with
    ``fixed_tasks(num_tasks, seed, chunk_size)``: ``SinusoidTasks``, ``FewShotTasks``,
    ``TransformedTasks``).

    Returns ``{"settings": [labels], "steps", "num_tasks", "loss": {"mean": [...], "ci95":
    [...], "median": [...]}, "accuracy": {...} (integer labels only), "diverged": [...]}``, one
    entry per setting (``diverged``: tasks whose loss became NaN or Inf).
    """
    check_steps(steps)
    check_num_tasks(num_tasks)
    steps = maml.eval_inner_steps if steps is None else int(steps)
    out = {"settings": list(settings), "steps": steps, "num_tasks": int(num_tasks)}
    for label, tasks in settings.items():
        result = meta_test(maml, tasks.fixed_tasks(num_tasks, seed, chunk_size), steps)
        for metric in ("loss", "accuracy"):
            if metric in result:
                entry = out.setdefault(metric, {"mean": [], "ci95": [], "median": []})
                per_task = np.asarray(result[metric]["per_task"])[:, steps]
                entry["mean"].append(float(result[metric]["mean"][steps]))
                entry["ci95"].append(float(result[metric]["ci95"][steps]))
                # A task whose loss became NaN counts as the worst (np.median would return NaN).
                entry["median"].append(float(np.median(np.where(np.isnan(per_task), np.inf, per_task))))
        final_loss = np.asarray(result["loss"]["per_task"])[:, steps]
        out.setdefault("diverged", []).append(int((~np.isfinite(final_loss)).sum()))
    return out


def headline(result, metric=None):
    """``(metric, means, ci95s)`` of a result: accuracy when measured, else loss."""
    metric = metric or ("accuracy" if "accuracy" in result else "loss")
    return metric, np.asarray(result[metric]["mean"]), np.asarray(result[metric]["ci95"])
