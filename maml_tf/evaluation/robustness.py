"""Robustness of adaptation to a flawed support set: label noise, input noise, one corrupted
example, one duplicated example (the query set stays clean)."""
from maml_tf.evaluation.settings import TEST_SEED, evaluate_settings
from maml_tf.tasks import transforms
from maml_tf.tasks.transforms import TransformedTasks


def robustness(maml, tasks, label_noise=(0.0, 0.1, 0.2, 0.3, 0.4), input_noise=(0.0, 0.1, 0.2, 0.3),
               flawed_example=True, input_range=None, num_classes=None, steps=None, num_tasks=100,
               seed=TEST_SEED, chunk_size=50):
    """Score ``maml`` on ``tasks`` whose support sets are spoiled.

    Args:
        label_noise: fractions of support labels flipped (:func:`transforms.label_noise`).
        input_noise: standard deviations of Gaussian noise on support inputs.
        flawed_example: also score a clean support set against one with a corrupted example
            and one with a duplicated example.
        input_range: clip noisy inputs to it, e.g. ``(0, 1)`` for images.
        num_classes: N of N-way tasks (default: the largest label + 1).

    Returns ``{"label_noise": result, "input_noise": result, "support_example": result}``,
    each :func:`~maml_tf.evaluation.settings.evaluate_settings`' result (empty axes left out).
    """
    for value in label_noise:
        transforms.check_fraction("label noise", value)
    for value in input_noise:
        transforms.check_nonnegative("input noise", value)
    axes = {
        "label_noise": {float(f): transforms.label_noise(f, num_classes) for f in label_noise},
        "input_noise": {float(s): transforms.input_noise(s, clip=input_range) for s in input_noise},
        "support_example": ({"clean": None, "corrupted": transforms.corrupt_example(),
                             "duplicated": transforms.duplicate_example()} if flawed_example else {}),
    }
    return {axis: evaluate_settings(maml, {label: tasks if change is None else TransformedTasks(tasks, change)
                                           for label, change in changes.items()},
                                    steps, num_tasks, seed, chunk_size)
            for axis, changes in axes.items() if changes}
