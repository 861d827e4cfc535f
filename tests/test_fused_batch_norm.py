"""Batch norm through TensorFlow's fused op (``functional.BATCH_NORM_OP``, float32; the
default for models without conv biases) computes the same meta-step as the composite of exact moments: meta-gradients of
first and second order, weights after a training step and BN moving statistics; its second
order is exact (against float64), where stock Keras BN is not."""
import contextlib
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import classification_loss, flat
from maml_tf import MAML
from maml_tf.core import functional, fused_batch_norm
from maml_tf.core.functional import FunctionalModel


@contextlib.contextmanager
def _floatx(dtype):
    """Build and run in ``dtype`` (floatx and the dtype policy, as conftest's float64)."""
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)


def _model(seed=3):
    """Two conv + BN + ReLU + max-pool blocks and a dense head (the conv4 pattern), 12x12x1."""
    inputs = keras.Input((12, 12, 1))
    h = inputs
    for b in range(2):
        h = keras.layers.Conv2D(6, 3, padding="same", name=f"conv{b}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{b}")(h)
        h = keras.layers.MaxPooling2D(2)(keras.layers.ReLU()(h))
    h = keras.layers.Flatten()(h)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(h))
    rng = np.random.default_rng(seed)  # the same weights in every dtype
    model.set_weights([rng.normal(scale=0.4, size=w.shape) if w.ndim > 1 else w
                       for w in model.get_weights()])
    return model


def _episodes(dtype, tasks=3, seed=5):
    rng = np.random.default_rng(seed)

    def one(k):
        x = rng.normal(size=(tasks, 3 * k, 12, 12, 1))
        return tf.constant(x, dtype), tf.constant(np.tile(np.arange(3), (tasks, k)).astype("int32"))
    return one(1), one(4)


@contextlib.contextmanager
def _batch_norm_op(op):
    previous = functional.BATCH_NORM_OP
    functional.BATCH_NORM_OP = op
    try:
        yield
    finally:
        functional.BATCH_NORM_OP = previous


def _maml(dtype, first_order=False, batch_norm="transductive", task_parallelism="loop", optimizer="adam"):
    maml = MAML(_model(), inner_lr=0.5, inner_steps=2, first_order=first_order,
                batch_norm=batch_norm, task_parallelism=task_parallelism)
    maml.compile(optimizer=optimizer, loss=classification_loss())
    return maml


def _meta_gradient(dtype, op, xla=False, **kwargs):
    with _batch_norm_op(op), _floatx(dtype):
        maml = _maml(dtype, **kwargs)
        support, query = _episodes(dtype)
        compute = tf.function(maml.meta_gradients, jit_compile=True) if xla else maml.meta_gradients
        loss, grads = compute({"support": support, "query": query})
    return float(loss), flat(grads)


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_fused_op_runs_for_float32_only():
    for dtype, expected in (("float32", True), ("float64", False)):
        with _batch_norm_op("fused"), _floatx(dtype):
            maml = _maml(dtype)
            support, query = _episodes(dtype)
            graph = tf.function(lambda s, q: maml.meta_gradients({"support": s, "query": q})
                                ).get_concrete_function(support, query).graph
            ops = {op.type for f in [graph, *graph._functions.values()]
                   for op in (f.get_operations() if hasattr(f, "get_operations") else f.graph.get_operations())}
            assert ("FusedBatchNormV3" in ops) == expected, (dtype, sorted(ops))


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("task_parallelism", ["loop", "unrolled", "vectorized"])
def test_fused_meta_gradient_equals_composite(first_order, task_parallelism):
    loss_c, composite = _meta_gradient("float32", "composite", first_order=first_order,
                                       task_parallelism=task_parallelism)
    loss_f, fused = _meta_gradient("float32", "fused", first_order=first_order,
                                   task_parallelism=task_parallelism)
    assert abs(loss_f - loss_c) < 1e-5 * abs(loss_c)
    assert _relative(fused, composite) < 1e-5


@pytest.mark.parametrize("first_order", [False, True])
def test_closed_form_second_order_meta_gradient_equals_composite(first_order):
    _, composite = _meta_gradient("float32", "composite", first_order=first_order)
    _, fused = _meta_gradient("float32", "fused-closedform", first_order=first_order)
    assert _relative(fused, composite) < 1e-5


def test_fused_meta_gradient_under_xla_is_as_exact_as_the_composite():
    """XLA reorders float32 sums, by how much depends on the CPU: against the float64 exact
    meta-gradient, the composite under XLA missed by 2.9e-3 (relative) and the fused op by
    2.7e-4 on an AMD EPYC (both about 1e-5 without XLA; 2026-12-06); on an Intel Xeon the two
    differed from each other by 2.8e-5. A lost second-order term misses by far more."""
    _, exact = _meta_gradient("float64", "composite")
    _, composite = _meta_gradient("float32", "composite", xla=True)
    _, fused = _meta_gradient("float32", "fused", xla=True)
    assert _relative(fused, exact) < 5e-3
    assert _relative(fused, exact) <= 2 * _relative(composite, exact) + 1e-5


@contextlib.contextmanager
def _stock_batch_norm(self):
    """Transductive statistics from stock Keras BN (tf.nn.moments, no exact-moments fix)."""
    for layer in self._batch_norm_layers:
        layer.__dict__["call"] = types.MethodType(
            lambda layer, inputs, training=None, mask=None: type(layer).call(layer, inputs, training=True),
            layer)
    try:
        yield
    finally:
        for layer in self._batch_norm_layers:
            layer.__dict__.pop("call", None)


def test_fused_second_order_is_exact(monkeypatch):
    """float32 fused BN against the exact composite in float64 (finite-difference checked in
    test_meta_gradient.py), far closer than stock Keras BN, which drops second-order terms."""
    _, exact = _meta_gradient("float64", "composite")
    _, fused = _meta_gradient("float32", "fused")
    _, fused_first_order = _meta_gradient("float32", "fused", first_order=True)
    monkeypatch.setattr(FunctionalModel, "_patched_batch_norm", _stock_batch_norm)
    _, stock = _meta_gradient("float64", "composite")
    fused_error, stock_error = _relative(fused, exact), _relative(stock, exact)
    assert fused_error < 1e-5, fused_error
    assert stock_error > 20 * fused_error, (stock_error, fused_error)
    assert _relative(fused_first_order, exact) > 1e-2  # the second-order terms are there


# First order only: a second-order step of this model (convs with a bias) through the fused ops,
# compiled by fit, can fail with a graph cycle from a oneDNN fusion (functional.BATCH_NORM_OP);
# the second-order meta-gradients are compared above, outside fit.
@pytest.mark.parametrize("first_order", [True])
def test_fused_training_step_equals_composite(first_order):
    """Weights and BN moving statistics after two meta-steps of fit (inductive BN). Plain SGD:
    a conv bias before BN has a zero meta-gradient up to rounding, which Adam would scale up
    to a full step in either implementation."""
    support, query = _episodes("float32")
    after = {}
    for fused in (False, True):
        with _batch_norm_op("fused" if fused else "composite"):
            maml = _maml("float32", first_order=first_order, batch_norm="inductive",
                         optimizer=keras.optimizers.SGD(0.5))
            data = tf.data.Dataset.from_tensors({"support": support, "query": query}).repeat()
            maml.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
            after[fused] = [v.numpy() for v in maml.model.weights]
    names = [v.path for v in _model().weights]
    start = _model().get_weights()
    for name, c, f, s in zip(names, after[False], after[True], start):
        if "conv" not in name or "bias" not in name:  # the step changed the rest
            assert np.abs(c - s).max() > 1e-4, name
        np.testing.assert_allclose(f, c, rtol=1e-4, atol=1e-5, err_msg=name)


def test_closed_form_second_order_equals_nested_tapes(float64, rng):
    """fused_batch_norm._second_order against differentiating the exact BN gradient twice."""
    shape, epsilon = (4, 5, 5, 3), 1e-3
    x, dy, a = (tf.constant(rng.normal(size=shape) * 2 + 1) for _ in range(3))
    gamma, b, c = (tf.constant(rng.normal(size=3)) for _ in range(3))
    beta = tf.zeros(3, tf.float64)

    def batch_norm(x, gamma, beta):
        mean = tf.reduce_mean(x, [0, 1, 2])
        variance = tf.reduce_mean(tf.square(x - mean), [0, 1, 2])
        return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta

    with tf.GradientTape() as outer:
        outer.watch([dy, x, gamma])
        with tf.GradientTape() as inner:
            inner.watch([x, gamma, beta])
            y = batch_norm(x, gamma, beta)
        dx, dgamma, dbeta = inner.gradient(y, [x, gamma, beta], output_gradients=dy)
        projected = tf.reduce_sum(a * dx) + tf.reduce_sum(b * dgamma) + tf.reduce_sum(c * dbeta)
    want = outer.gradient(projected, [dy, x, gamma])
    mean = tf.reduce_mean(x, [0, 1, 2])
    got = fused_batch_norm._second_order(a, b, c, dy, x, gamma, mean,
                                         tf.reduce_mean(tf.square(x - mean), [0, 1, 2]), epsilon)
    for name, w, g in zip(("dy", "x", "gamma"), want, got):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=name)
