"""N-way K-shot classification episodes from images grouped by class (Section 5.2).

A task draws ``ways`` classes, labels them 0..N-1 in the (random) order drawn, and
takes ``support_shots + query_shots`` distinct images of each. Sampling is NumPy with
a seed per meta-batch, so a stream is reproducible everywhere and can restart at any
iteration; images are gathered from an in-memory uint8 array (decoded once), so the
input pipeline costs microseconds per task.
"""
import copy

import numpy as np
import tensorflow as tf

from maml_tf.core.arguments import whole_number
from maml_tf.core.episodes import make as make_episodes


class FewShotTasks:
    """N-way K-shot tasks over ``images`` (uint8 ``[classes, examples, H, W, C]``).

    Args:
        ways: N, classes per task.
        support_shots: K, labelled images per class to adapt on.
        query_shots: images per class to score the adapted model on.
        rotate: rotate each class of a task by a random multiple of 90 degrees (the
            Omniglot protocol: new classes by rotation, Santoro et al. 2016).
    """

    def __init__(self, images, ways, support_shots, query_shots, rotate=False):
        images = np.asarray(images) if not isinstance(images, np.ndarray) else images
        if images.ndim != 5:
            raise ValueError(f"images must be [classes, examples, height, width, channels], "
                             f"got shape {images.shape}.")
        ways, support_shots, query_shots = (whole_number(name, value, 1) for name, value in (
            ("ways", ways), ("support_shots", support_shots), ("query_shots", query_shots)))
        classes, per_class = images.shape[:2]
        if ways > classes:
            raise ValueError(f"{ways}-way tasks need {ways} classes; this split has {classes}.")
        if support_shots + query_shots > per_class:
            raise ValueError(f"support_shots + query_shots = {support_shots + query_shots} images "
                             f"per class, but each class has only {per_class}.")
        if rotate and images.shape[2] != images.shape[3]:
            raise ValueError("rotate=True needs square images.")
        self.images = images
        self.ways, self.support_shots, self.query_shots = int(ways), int(support_shots), int(query_shots)
        self.rotate = bool(rotate)

    @property
    def image_shape(self):
        return tuple(self.images.shape[2:])

    def with_shots(self, support_shots, query_shots=None):
        """The same tasks with ``support_shots`` (and ``query_shots``) images per class."""
        support_shots = whole_number("support_shots", support_shots, 1)
        query_shots = self.query_shots if query_shots is None else whole_number("query_shots", query_shots, 1)
        if support_shots + query_shots > self.images.shape[1]:
            raise ValueError(f"support_shots + query_shots = {support_shots + query_shots} images "
                             f"per class, but each class has only {self.images.shape[1]}.")
        other = copy.copy(self)
        other.support_shots, other.query_shots = int(support_shots), int(query_shots)
        return other

    def sample_numpy(self, num_tasks, seed):
        """``(support_x, support_y, query_x, query_y)`` as NumPy arrays, x in [0, 1] float32."""
        num_tasks = whole_number("num_tasks", num_tasks, 1)
        rng = np.random.default_rng(seed)
        classes, per_class = self.images.shape[:2]
        shots = self.support_shots + self.query_shots
        chosen = np.stack([rng.choice(classes, self.ways, replace=False) for _ in range(num_tasks)])
        picks = rng.random((num_tasks, self.ways, per_class)).argsort(axis=-1)[..., :shots]
        x = self.images[chosen[..., None], picks]  # [tasks, ways, shots, H, W, C]
        if self.rotate:
            turns = rng.integers(0, 4, size=(num_tasks, self.ways))
            for k in (1, 2, 3):
                x[turns == k] = np.rot90(x[turns == k], k, axes=(-3, -2))
        x = x.astype(np.float32) / 255.0
        y = np.broadcast_to(np.arange(self.ways, dtype=np.int32)[None, :, None],
                            (num_tasks, self.ways, shots))
        k = self.support_shots

        def flat(a):  # [tasks, ways, shots', ...] -> [tasks, ways * shots', ...], class-major
            return np.ascontiguousarray(a.reshape((num_tasks, -1) + a.shape[3:]))

        return flat(x[:, :, :k]), flat(y[:, :, :k]), flat(x[:, :, k:]), flat(y[:, :, k:])

    def sample(self, num_tasks, seed):
        """A meta-batch of ``num_tasks`` episodes (tensors) from ``seed``."""
        return make_episodes(*(tf.constant(a) for a in self.sample_numpy(num_tasks, seed)))

    def dataset(self, meta_batch_size, seed=0, start=0):
        """Endless ``tf.data`` stream of meta-batches; batch ``i`` comes from seed
        ``(seed, i)``, so a resumed run can continue at ``start``."""
        n, shape = whole_number("meta_batch_size", meta_batch_size, 1), self.image_shape
        support, query = self.ways * self.support_shots, self.ways * self.query_shots

        def batch(i):
            parts = tf.numpy_function(lambda j: self.sample_numpy(n, [seed, int(j)]), [i],
                                      [tf.float32, tf.int32, tf.float32, tf.int32], stateful=False)
            shapes = ([n, support, *shape], [n, support], [n, query, *shape], [n, query])
            return make_episodes(*(tf.ensure_shape(p, s) for p, s in zip(parts, shapes)))

        return (tf.data.Dataset.counter(start)
                .map(batch, num_parallel_calls=2, deterministic=True)
                .prefetch(4))

    def fixed_tasks(self, num_tasks, seed, chunk_size=100):
        """The same ``num_tasks`` tasks on every call and machine, in chunks (meta-test)."""
        num_tasks, chunk_size = whole_number("num_tasks", num_tasks, 1), whole_number("chunk_size", chunk_size, 1)
        for begin in range(0, num_tasks, chunk_size):
            yield self.sample(min(chunk_size, num_tasks - begin), [seed, begin])
