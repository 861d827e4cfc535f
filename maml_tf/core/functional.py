"""Run any built Keras 3 model with weights given as tensors (no variable assignment).

MAML adapts weights functionally so that the outer gradient can flow through the
inner updates (Finn et al. 2017, Algorithm 1). Keras 3's ``stateless_call`` does the
substitution for Sequential, functional and subclassed models alike; this module adds
the two batch-normalisation fixes a meta-learner needs.
"""
import contextlib
import types

import keras
import tensorflow as tf

from maml_tf.core import keras_internals

BATCH_NORM_MODES = ("transductive", "inductive")


def _exact_moments(layer, inputs, mask):
    """Batch mean and variance whose second derivatives are exact.

    Keras' TF backend uses ``tf.nn.moments``, which centres the variance on
    ``stop_gradient(mean)``: first derivatives stay exact but second-order MAML
    through batch norm loses terms. ``mean((x - mean)^2)`` keeps them.
    """
    if mask is not None or layer.synchronized:
        return keras_internals.stock_batch_norm_moments(layer, inputs, mask)
    rank = inputs.shape.rank
    axes = [i for i in range(rank) if i != layer.axis % rank]  # all but the channel axis
    mean = tf.reduce_mean(inputs, axis=axes, keepdims=True)
    variance = tf.reduce_mean(tf.square(inputs - mean), axis=axes, keepdims=True)
    return tf.squeeze(mean, axes), tf.squeeze(variance, axes)


def _always_batch_statistics(layer, inputs, training=None, mask=None):
    """BN call that normalises with the current batch's statistics, also at test time.

    This is the authors' code behaviour (cbfinn/maml normalises with batch statistics
    everywhere, i.e. transductively over the support or query set of one task).
    """
    return type(layer).call(layer, inputs, training=True, mask=mask)


class FunctionalModel:
    """A Keras model called with given trainable weights, in the model's own variable order.

    Args:
        model: a built ``keras.Model`` (Sequential, functional or subclassed).
        batch_norm: ``"transductive"`` (default, as the authors' code: batch statistics
            at training and test time, moving averages unused) or ``"inductive"``
            (Keras' standard behaviour: batch statistics when ``training=True``,
            moving averages otherwise).
    """

    def __init__(self, model, batch_norm="transductive"):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"MAML needs a keras.Model, got {type(model).__name__}. Wrap your layers "
                "in keras.Sequential([...]) or a functional keras.Model."
            )
        if batch_norm not in BATCH_NORM_MODES:
            raise ValueError(f"batch_norm must be one of {BATCH_NORM_MODES}, got {batch_norm!r}.")
        if not model.built:
            raise ValueError(
                "The model has no weights yet. Build it first, e.g. pass an "
                "`keras.Input(shape=...)` or call `model.build(input_shape)`."
            )
        self.model = model
        self.batch_norm = batch_norm
        self._batch_norm_layers = [
            layer for layer in keras_internals.all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization)
        ]

    @property
    def has_batch_norm(self):
        return bool(self._batch_norm_layers)

    @contextlib.contextmanager
    def _patched_batch_norm(self):
        """Swap in the exact-moments BN (and transductive statistics) while tracing."""
        patched = []
        try:
            for layer in self._batch_norm_layers:
                keras_internals.override_batch_norm_moments(layer, _exact_moments)
                if self.batch_norm == "transductive":
                    layer.__dict__["call"] = types.MethodType(_always_batch_statistics, layer)
                patched.append(layer)
            yield
        finally:
            for layer in patched:
                keras_internals.restore_batch_norm_moments(layer)
                layer.__dict__.pop("call", None)

    def __call__(self, trainable_values, inputs, training=False, non_trainable_values=None):
        """Returns ``(outputs, new_non_trainable_values)``."""
        if non_trainable_values is None:
            non_trainable_values = [v.value for v in self.model.non_trainable_variables]
        with self._patched_batch_norm():
            return self.model.stateless_call(
                list(trainable_values), list(non_trainable_values), inputs, training=training
            )
