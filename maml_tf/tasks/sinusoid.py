"""Sinusoid regression tasks (Section 5.1): y = A sin(x - phase)."""
import copy
import math

import numpy as np
import tensorflow as tf

from maml_tf.core.arguments import whole_number
from maml_tf.core.episodes import make as make_episodes


class SinusoidTasks:
    """The paper's distribution: A ~ U[0.1, 5], phase ~ U[0, pi], x ~ U[-5, 5].

    Args:
        support_shots: K points per task to adapt on.
        query_shots: points per task to score the adapted model on.
        oracle: append (amplitude, phase) to every input (the paper's oracle baseline).
        frequency_range: y = A sin(f x - phase) with f drawn from this range; the paper's
            family is f = 1 (a shifted function family for out-of-distribution tests).
    """

    def __init__(self, support_shots=10, query_shots=10, amplitude_range=(0.1, 5.0),
                 phase_range=(0.0, math.pi), input_range=(-5.0, 5.0), oracle=False,
                 dtype="float32", frequency_range=(1.0, 1.0)):
        self.support_shots = whole_number("support_shots", support_shots, 1)
        self.query_shots = whole_number("query_shots", query_shots, 1)
        self.amplitude_range = tuple(amplitude_range)
        self.phase_range = tuple(phase_range)
        self.input_range = tuple(input_range)
        self.frequency_range = tuple(frequency_range)
        self.oracle = oracle
        self.dtype = tf.as_dtype(dtype)

    @property
    def input_dim(self):
        return 3 if self.oracle else 1

    def sample(self, num_tasks, seed):
        """A meta-batch of ``num_tasks`` episodes from a stateless seed (pair of ints).

        Returns ``(episodes, params)`` where ``params`` = {"amplitude", "phase"}.
        """
        num_tasks = whole_number("num_tasks", num_tasks, 1)
        seed = tf.convert_to_tensor(seed, tf.int64)
        seeds = tf.random.experimental.stateless_split(seed, 4)
        n, k = num_tasks, self.support_shots + self.query_shots
        amplitude = tf.random.stateless_uniform([n, 1, 1], seeds[0], *self.amplitude_range, dtype=self.dtype)
        phase = tf.random.stateless_uniform([n, 1, 1], seeds[1], *self.phase_range, dtype=self.dtype)
        x = tf.random.stateless_uniform([n, k, 1], seeds[2], *self.input_range, dtype=self.dtype)
        if self.frequency_range == (1.0, 1.0):  # the paper's family (and its random stream)
            y = amplitude * tf.sin(x - phase)
        else:
            frequency = tf.random.stateless_uniform([n, 1, 1], seeds[3], *self.frequency_range, dtype=self.dtype)
            y = amplitude * tf.sin(frequency * x - phase)
        if self.oracle:
            x = tf.concat([x, tf.broadcast_to(amplitude, [n, k, 1]), tf.broadcast_to(phase, [n, k, 1])], -1)
        s = self.support_shots
        episodes = make_episodes(x[:, :s], y[:, :s], x[:, s:], y[:, s:])
        return episodes, {"amplitude": amplitude[:, 0, 0], "phase": phase[:, 0, 0]}

    def with_shots(self, support_shots, query_shots=None):
        """The same distribution with ``support_shots`` (and ``query_shots``) per task."""
        other = copy.copy(self)
        other.support_shots = whole_number("support_shots", support_shots, 1)
        other.query_shots = self.query_shots if query_shots is None else whole_number("query_shots", query_shots, 1)
        return other

    def fixed_tasks(self, num_tasks, seed, chunk_size=1000):
        """The same ``num_tasks`` episodes on every call, in meta-batches of at most
        ``chunk_size`` (the interface of ``FewShotTasks.fixed_tasks``)."""
        num_tasks, chunk_size = whole_number("num_tasks", num_tasks, 1), whole_number("chunk_size", chunk_size, 1)
        for begin in range(0, num_tasks, chunk_size):
            yield self.sample(min(chunk_size, num_tasks - begin), [seed, begin])[0]

    def dataset(self, meta_batch_size, seed=0, start=0):
        """Endless ``tf.data`` stream of meta-batches; batch ``i`` comes from seed
        ``(seed, i)``, so a resumed run can continue at ``start``."""
        meta_batch_size = whole_number("meta_batch_size", meta_batch_size, 1)
        return (tf.data.Dataset.counter(start)
                .map(lambda i: self.sample(meta_batch_size, tf.stack([tf.cast(seed, tf.int64), i]))[0],
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .prefetch(tf.data.AUTOTUNE))

    def curve(self, amplitude, phase, x):
        """The true function of a task (for plots)."""
        return amplitude * np.sin(np.asarray(x) - phase)
