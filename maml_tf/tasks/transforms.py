"""Episode transforms: what robustness and distribution-shift tests change in a meta-batch.

A transform is a callable ``transform(episodes, seed) -> episodes`` on a meta-batch
``{"support": (x, y), "query": (x, y)}`` (leading task axis), made by one of the functions
here with its strength; :class:`TransformedTasks` applies one to every meta-batch of a task
distribution. Transforms of the support set only (label and input noise, a corrupted or
duplicated example) test robustness of the adaptation; transforms of both sets (image
rotation, scaling, pixel noise) shift the task distribution itself.
"""
import numpy as np
import tensorflow as tf

from maml_tf.core.arguments import one_of
from maml_tf.core.episodes import make as make_episodes

PARTS = ("support", "both")


def check_fraction(name, value):
    """A one-line error unless ``value`` is a fraction in [0, 1]."""
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value}.")


def check_nonnegative(name, value):
    if not float(value) >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value}.")


def _arrays(episodes):
    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    return [np.array(t) for t in (sx, sy, qx, qy)]  # copies: transforms never write their input


def _episodes(sx, sy, qx, qy):
    return make_episodes(*(tf.constant(a) for a in (sx, sy, qx, qy)))


def label_noise(fraction, num_classes=None):
    """Flip a ``fraction`` of each task's support labels: a class label to another class drawn
    uniformly (``num_classes``: N, default the largest label + 1), a regression target to its
    negative (a sinusoid's -y is the target of the same task shifted by pi). ``fraction * K``
    labels per task, rounded up or down at random, so that the expected fraction is exact."""
    check_fraction("label noise", fraction)

    def transform(episodes, seed):
        sx, sy, qx, qy = _arrays(episodes)
        rng = np.random.default_rng(seed)
        tasks, shots = sy.shape[:2]
        classes = num_classes or int(max(sy.max(), qy.max())) + 1
        for t in range(tasks):
            n = int(np.floor(fraction * shots))
            n += int(rng.random() < fraction * shots - n)
            chosen = rng.choice(shots, n, replace=False)
            if np.issubdtype(sy.dtype, np.integer):
                sy[t, chosen] = (sy[t, chosen] + rng.integers(1, classes, size=n)) % classes
            else:
                sy[t, chosen] = -sy[t, chosen]
        return _episodes(sx, sy, qx, qy)

    return transform


def input_noise(std, part="support", clip=None):
    """Gaussian noise of standard deviation ``std`` added to the inputs of the support set
    (``part="support"``: robustness) or of both sets (``"both"``: a shifted distribution);
    ``clip``: the inputs' range, e.g. ``(0, 1)`` for images."""
    check_nonnegative("input noise", std)
    one_of("part", part, PARTS)

    def transform(episodes, seed):
        sx, sy, qx, qy = _arrays(episodes)
        rng = np.random.default_rng(seed)
        sx = sx + rng.normal(0.0, std, sx.shape).astype(sx.dtype)
        if part == "both":
            qx = qx + rng.normal(0.0, std, qx.shape).astype(qx.dtype)
        if clip is not None:
            sx, qx = np.clip(sx, *clip), np.clip(qx, *clip)
        return _episodes(sx, sy, qx, qy)

    return transform


def corrupt_example():
    """Replace the input of one support example per task (chosen at random) by uniform noise
    over the range of that task's support inputs; its label stays: one wrong example."""

    def transform(episodes, seed):
        sx, sy, qx, qy = _arrays(episodes)
        rng = np.random.default_rng(seed)
        for t in range(sx.shape[0]):
            i = rng.integers(sx.shape[1])
            sx[t, i] = rng.uniform(sx[t].min(), sx[t].max(), sx.shape[2:]).astype(sx.dtype)
        return _episodes(sx, sy, qx, qy)

    return transform


def duplicate_example():
    """Append to each task's support set a copy of one of its examples (chosen at random):
    K + 1 examples, one of them twice."""

    def transform(episodes, seed):
        sx, sy, qx, qy = _arrays(episodes)
        rng = np.random.default_rng(seed)
        pick = rng.integers(sx.shape[1], size=sx.shape[0])
        rows = np.arange(sx.shape[0])
        sx = np.concatenate([sx, sx[rows, pick][:, None]], axis=1)
        sy = np.concatenate([sy, sy[rows, pick][:, None]], axis=1)
        return _episodes(sx, sy, qx, qy)

    return transform


def _affine(images, matrix):
    """Warp ``[..., H, W, C]`` images by the 2x2 ``matrix`` about their centre (output pixel
    -> input pixel), bilinear, zero (background) outside."""
    import keras
    shape = images.shape
    flat = images.reshape((-1,) + shape[-3:])
    height, width = shape[-3:-1]
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    offset = centre - matrix @ centre
    row = np.array([matrix[0, 0], matrix[0, 1], offset[0], matrix[1, 0], matrix[1, 1], offset[1], 0, 0],
                   dtype=np.float32)
    out = keras.ops.image.affine_transform(flat, np.tile(row, (flat.shape[0], 1)), interpolation="bilinear",
                                           fill_mode="constant", fill_value=0.0)
    return np.asarray(out).reshape(shape)


def rotate_images(degrees):
    """Rotate every image of both sets by ``degrees`` (counter-clockwise, about the centre)."""
    angle = np.deg2rad(float(degrees))
    matrix = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    return _warp(matrix)


def scale_images(factor):
    """Zoom every image of both sets by ``factor`` about the centre (< 1 shrinks the drawing)."""
    if not float(factor) > 0:
        raise ValueError(f"scale factor must be > 0, got {factor}.")
    return _warp(np.eye(2) / float(factor))


def _warp(matrix):
    def transform(episodes, seed):
        sx, sy, qx, qy = _arrays(episodes)
        return _episodes(_affine(sx, matrix), sy, _affine(qx, matrix), qy)

    return transform


class TransformedTasks:
    """A task distribution whose every meta-batch goes through ``transform`` (seeded by the
    meta-batch's seed, so the same tasks get the same change on every call). Offers what the
    evaluation measures use: ``fixed_tasks``, ``with_shots``, ``support_shots``."""

    def __init__(self, tasks, transform):
        self.tasks, self.transform = tasks, transform

    @property
    def support_shots(self):
        return self.tasks.support_shots

    def with_shots(self, support_shots, query_shots=None):
        return TransformedTasks(self.tasks.with_shots(support_shots, query_shots), self.transform)

    def fixed_tasks(self, num_tasks, seed, chunk_size=100):
        for index, episodes in enumerate(self.tasks.fixed_tasks(num_tasks, seed, chunk_size)):
            yield self.transform(episodes, [int(np.ravel(seed)[0]), index, 7919])
