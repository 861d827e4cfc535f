"""Run any built Keras 3 model with weights given as tensors (no variable assignment).

MAML adapts weights functionally so that the outer gradient can flow through the
inner updates (Finn et al. 2017, Algorithm 1). Keras 3's ``stateless_call`` does the
substitution for Sequential, functional and subclassed models alike; this module adds
the two batch-normalisation fixes a meta-learner needs, and runs BN with batch statistics
through TensorFlow's fused ops where they apply and are safe (:data:`BATCH_NORM_OP`,
:mod:`fused_batch_norm`: BN was about half of a conv meta-step's op time as a composite,
benchmarks/README.md).
"""
import contextlib
import functools
import types

import keras
import tensorflow as tf

from maml_tf.core import fused_batch_norm, keras_internals
from maml_tf.core.arguments import one_of

BATCH_NORM_MODES = ("transductive", "inductive")
# How BN with batch statistics runs (read when a step is traced; benchmarks switch it):
# "composite": Keras' BN with _exact_moments; "fused": TensorFlow's fused ops and its rule for
# the second derivative; "fused-closedform": the fused ops with fused_batch_norm's closed form
# (about 0.5x the composite's meta-step time, benchmarks/README.md); "auto" (default):
# fused-closedform for models without a biased conv layer, composite otherwise. A second-order
# conv step through the fused ops, compiled by fit without XLA, failed with "N nodes in a cycle"
# in some processes when convs had a bias (oneDNN's layout pass fused a conv bias's BiasAddGrad
# with the outer tape's Conv2DBackpropFilter; benchmarks/cycle_check.py), never without one.
# float64 and the cases _fused_batch_statistics declines take the composite in every mode.
BATCH_NORM_OPS = ("auto", "composite", "fused", "fused-closedform")
BATCH_NORM_OP = "auto"
CONV_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
               keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


def convolutions(model):
    """The convolution layers nested in ``model``."""
    return [layer for layer in keras_internals.all_layers(model) if isinstance(layer, CONV_LAYERS)]


def has_biased_conv(model):
    """Whether any convolution of ``model`` has a bias (then "auto" keeps BN composite)."""
    return any(layer.use_bias for layer in convolutions(model))


def resolve_batch_norm_op(op, biased_conv):
    """The BN op ``op`` (one of :data:`BATCH_NORM_OPS`) names for a model with or without a
    biased conv layer."""
    one_of("functional.BATCH_NORM_OP", op, BATCH_NORM_OPS)
    if op == "auto":
        return "composite" if biased_conv else "fused-closedform"
    return op


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


def _fused_batch_statistics(layer, inputs, closed_form):
    """BN with the batch's statistics through the fused ops (:mod:`fused_batch_norm`, exact to
    second order), or None where they do not apply (not 4-D NHWC float32/half, sync, renorm,
    a frozen layer)."""
    if (layer.synchronized or layer.renorm or not layer.trainable or inputs.shape.rank != 4
            or layer.axis % 4 != 3 or inputs.dtype not in (tf.float32, tf.float16, tf.bfloat16)):
        return None
    x = tf.cast(inputs, tf.float32)  # Keras' BN computes in float32 under mixed precision too
    channels = x.shape[-1]
    gamma = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones([channels])
    beta = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros([channels])
    y, mean, variance = fused_batch_norm.batch_statistics(x, gamma, beta, layer.epsilon, closed_form)
    momentum = layer.momentum
    layer.moving_mean.assign(tf.cast(layer.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
    layer.moving_variance.assign(
        tf.cast(layer.moving_variance, tf.float32) * momentum + variance * (1.0 - momentum))
    return tf.cast(y, layer.compute_dtype)


def _batch_norm_call(layer, inputs, training=None, mask=None, always_batch_statistics=False,
                     biased_conv=True):
    """BN call of a meta-learner: with batch statistics, the fused ops where :data:`BATCH_NORM_OP`
    picks them and they apply (see :func:`_fused_batch_statistics`), else Keras' call with exact
    moments."""
    training = training or always_batch_statistics
    op = resolve_batch_norm_op(BATCH_NORM_OP, biased_conv)
    if training and mask is None and op != "composite":
        out = _fused_batch_statistics(layer, inputs, closed_form=op == "fused-closedform")
        if out is not None:
            return out
    return type(layer).call(layer, inputs, training=training, mask=mask)


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

    Batch statistics run through TensorFlow's fused BN ops when no convolution of the model
    has a bias (:data:`BATCH_NORM_OP` "auto"): give convs followed by BN ``use_bias=False``
    (BN removes a bias anyway) for the fast path.
    """

    def __init__(self, model, batch_norm="transductive"):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"MAML needs a keras.Model, got {type(model).__name__}. Wrap your layers "
                "in keras.Sequential([...]) or a functional keras.Model."
            )
        one_of("batch_norm", batch_norm, BATCH_NORM_MODES)
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
        self.biased_conv = has_biased_conv(model)  # checked once: "auto" BN op (BATCH_NORM_OP)

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
                layer.__dict__["call"] = types.MethodType(
                    functools.partial(_batch_norm_call, biased_conv=self.biased_conv,
                                      always_batch_statistics=self.batch_norm == "transductive"), layer)
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
