"""The meta-gradient is exact: second-order MAML against central finite differences
(float64), first-order MAML against its definition, the batch-norm fix against stock
Keras BN, and every task_parallelism mode against the others."""
import contextlib
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import (classification_episodes, classification_loss, compiled_maml,
                      conv_bn_model, fd_errors, flat, meta_gradient, meta_objective, mlp_model,
                      regression_episodes)
from maml_tf.core import functional
from maml_tf.core.functional import FunctionalModel

RTOL = 1e-6  # |FD - analytic| relative to the gradient norm


def _mlp_maml(steps, **kwargs):
    return compiled_maml(mlp_model(hidden=(16, 16), activation="tanh"), loss="mse",
                         inner_lr=0.1, inner_steps=steps, batch_norm="transductive", **kwargs)


def _conv_maml(steps, **kwargs):
    return compiled_maml(conv_bn_model(), loss=classification_loss(), inner_lr=0.2,
                         inner_steps=steps, batch_norm="transductive", **kwargs)


@pytest.mark.parametrize("steps", [1, 3])
def test_mlp_second_order_matches_finite_differences(float64, rng, steps):
    maml = _mlp_maml(steps)
    episodes = regression_episodes(rng, tasks=3, support=5, query=6)
    errors, analytic, norm, _ = fd_errors(maml, episodes, rng, directions=3)
    assert norm > 1e-3
    assert np.all(np.abs(analytic) > 1e-4 * norm)  # directions actually probe the gradient
    assert errors.max() < RTOL, errors


@pytest.mark.parametrize("steps", [1, 3])
def test_conv_batch_norm_second_order_matches_finite_differences(float64, rng, steps):
    maml = _conv_maml(steps)
    assert maml.functional.has_batch_norm
    episodes = classification_episodes(rng, tasks=2, ways=3, shots=2)
    errors, analytic, norm, _ = fd_errors(maml, episodes, rng, directions=3)
    assert norm > 1e-3
    assert np.all(np.abs(analytic) > 1e-4 * norm)
    assert errors.max() < RTOL, errors


@contextlib.contextmanager
def _stock_batch_norm(self):
    """FunctionalModel._patched_batch_norm without the exact-moments fix: transductive
    statistics are still forced, but BN's variance comes from stock Keras/TF."""
    for layer in self._batch_norm_layers:
        layer.__dict__["call"] = types.MethodType(functional._always_batch_statistics, layer)
    try:
        yield
    finally:
        for layer in self._batch_norm_layers:
            layer.__dict__.pop("call", None)


def test_batch_norm_fix_is_needed_for_exact_second_order(float64, rng, monkeypatch):
    episodes = classification_episodes(rng, tasks=2, ways=3, shots=2)
    maml = _conv_maml(1)
    directions_rng = np.random.default_rng(7)
    ours, _, _, exact = fd_errors(maml, episodes, directions_rng, directions=3)

    monkeypatch.setattr(FunctionalModel, "_patched_batch_norm", _stock_batch_norm)
    directions_rng = np.random.default_rng(7)
    stock, _, _, stock_grads = fd_errors(maml, episodes, directions_rng, directions=3)

    assert ours.max() < RTOL
    # Stock BN drops second-order terms: its meta-gradient disagrees with finite
    # differences (observed ~2e-4 of the gradient norm against ~1e-12 for ours).
    assert stock.max() > 10 * RTOL, stock
    diff = np.linalg.norm(flat(stock_grads) - flat(exact)) / np.linalg.norm(flat(exact))
    assert diff > 1e-4, diff


def test_batch_norm_patch_is_removed_after_the_call(float64, rng):
    maml = _conv_maml(1)
    meta_gradient(maml, classification_episodes(rng))
    bn = maml.model.get_layer("bn")
    assert "_moments" not in bn.__dict__ and "call" not in bn.__dict__
    # Outside MAML the layer behaves like stock Keras again (moving statistics at inference).
    x = tf.constant(rng.normal(size=(4, 8, 8, 1)))
    conv = maml.model.get_layer("conv")(x)
    np.testing.assert_allclose(bn(conv, training=False), conv / np.sqrt(1 + bn.epsilon), rtol=1e-6)


@pytest.mark.parametrize("steps", [1, 2])
def test_first_order_equals_query_gradient_at_adapted_weights(float64, rng, steps):
    episodes = regression_episodes(rng, tasks=3, support=5, query=6)
    maml = _mlp_maml(steps, first_order=True)
    _, fo_grads = meta_gradient(maml, episodes)

    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    num_tasks = int(sx.shape[0])

    @tf.function
    def manual_first_order():
        total = None
        for i in range(num_tasks):
            adapted = [tf.convert_to_tensor(w)
                       for w in maml.adapt(sx[i], sy[i], steps=steps, training=True)]
            with tf.GradientTape() as tape:
                tape.watch(adapted)
                loss = maml._task_loss(qy[i], maml.predict_with(adapted, qx[i], training=True))
            g = [t / num_tasks for t in tape.gradient(loss, adapted)]
            total = g if total is None else [a + b for a, b in zip(total, g)]
        return total

    expected = [np.asarray(g) for g in manual_first_order()]
    for got, want in zip(fo_grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

    second = _mlp_maml(steps)
    second.model.set_weights(maml.model.get_weights())
    _, so_grads = meta_gradient(second, episodes)
    rel = np.linalg.norm(flat(so_grads) - flat(fo_grads)) / np.linalg.norm(flat(so_grads))
    assert rel > 1e-3, rel


@pytest.mark.parametrize("kind", ["mlp", "conv_bn"])
def test_task_parallelism_modes_agree(float64, rng, kind):
    if kind == "mlp":
        episodes = regression_episodes(rng, tasks=3, support=5, query=6)
        build = lambda mode: _mlp_maml(2, task_parallelism=mode)  # noqa: E731
    else:
        episodes = classification_episodes(rng, tasks=2, ways=3, shots=2)
        build = lambda mode: _conv_maml(2, task_parallelism=mode)  # noqa: E731
    results, evaluations = {}, {}
    weights = None
    for mode in ("vectorized", "loop", "unrolled"):
        maml = build(mode)
        if weights is None:
            weights = maml.model.get_weights()
        else:
            maml.model.set_weights(weights)
        loss, acc, preds, grads = meta_objective(maml, episodes)
        results[mode] = (float(loss), None if acc is None else float(acc),
                         np.asarray(preds), [np.asarray(g) for g in grads])
        # Evaluation (adapt, then score after every step) too; "unrolled" evaluates with a loop.
        evaluations[mode] = {k: np.asarray(v) for k, v in maml.evaluate_tasks(episodes, steps=2).items()}
    ref = results["vectorized"]
    for mode in ("loop", "unrolled"):
        assert evaluations[mode].keys() == evaluations["vectorized"].keys()
        for key, value in evaluations[mode].items():
            np.testing.assert_allclose(value, evaluations["vectorized"][key], rtol=1e-9, atol=1e-12)
    assert ref[2].shape[0] == int(episodes["query"][0].shape[0])
    for mode in ("loop", "unrolled"):
        loss, acc, preds, grads = results[mode]
        np.testing.assert_allclose(loss, ref[0], rtol=1e-10)
        if kind == "conv_bn":
            np.testing.assert_allclose(acc, ref[1], rtol=1e-10)
        np.testing.assert_allclose(preds, ref[2], rtol=1e-9, atol=1e-12)
        for g, r in zip(grads, ref[3]):
            np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-12)
