"""Model-agnostic: Sequential, functional and subclassed Keras models give the same
MAML; layers with state (Dropout, BatchNormalization) work."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import compiled_maml, meta_gradient, regression_episodes
from maml_tf.tasks import SinusoidTasks

IN, HIDDEN = 2, 12


def _sequential():
    return keras.Sequential([
        keras.Input((IN,)),
        keras.layers.Dense(HIDDEN, activation="tanh"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(HIDDEN, activation="tanh"),
        keras.layers.Dense(1),
    ])


def _functional():
    inputs = keras.Input((IN,))
    h = keras.layers.Dense(HIDDEN, activation="tanh")(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.Dense(HIDDEN, activation="tanh")(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = keras.layers.Dense(HIDDEN, activation="tanh")
        self.bn = keras.layers.BatchNormalization()
        self.d2 = keras.layers.Dense(HIDDEN, activation="tanh")
        self.out = keras.layers.Dense(1)

    def call(self, x, training=False):
        return self.out(self.d2(self.bn(self.d1(x), training=training)))


def _subclassed():
    model = _Subclassed()
    model(np.zeros((1, IN), keras.config.floatx()))
    return model


BUILDERS = {"sequential": _sequential, "functional": _functional, "subclassed": _subclassed}


def test_sequential_functional_subclassed_agree(float64, rng):
    episodes = regression_episodes(rng, tasks=3, support=6, query=5, dim=IN)
    reference = _sequential()
    weights = reference.get_weights()
    # Move the BN moving statistics away from (0, 1) so the copy is a real copy.
    weights = [w + rng.normal(scale=0.1, size=w.shape) for w in weights]
    results = {}
    for kind, build in BUILDERS.items():
        model = build()
        assert [tuple(w.shape) for w in model.get_weights()] == [w.shape for w in weights]
        model.set_weights(weights)
        maml = compiled_maml(model, inner_lr=0.1, inner_steps=2, eval_inner_steps=2)
        assert maml.functional.has_batch_norm, kind
        loss, grads = meta_gradient(maml, episodes)
        (sx, sy), (qx, _) = episodes["support"], episodes["query"]
        adapt_and_predict = tf.function(
            lambda m=maml: m.predict_with(m.adapt(sx[0], sy[0], steps=2), qx[0]))
        predictions = np.asarray(adapt_and_predict())
        per_step = maml.evaluate_tasks(episodes, steps=2)["loss"].numpy()
        results[kind] = (loss, grads, predictions, per_step)

    ref = results["sequential"]
    assert not np.allclose(ref[2], np.asarray(maml.model(qx[0])))  # adaptation did something
    for kind in ("functional", "subclassed"):
        loss, grads, predictions, per_step = results[kind]
        np.testing.assert_allclose(loss, ref[0], rtol=1e-12)
        assert len(grads) == len(ref[1])
        for g, r in zip(grads, ref[1]):
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(predictions, ref[2], rtol=1e-12)
        np.testing.assert_allclose(per_step, ref[3], rtol=1e-12)


def _dropout_model():
    return keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1),
    ])


@pytest.mark.slow
def test_model_with_dropout_trains():
    model = _dropout_model()
    maml = compiled_maml(model, optimizer=keras.optimizers.Adam(1e-2), inner_lr=0.01)
    before = [w.copy() for w in model.get_weights()]
    data = SinusoidTasks(5, 5).dataset(meta_batch_size=4, seed=3)
    history = maml.fit(data, epochs=2, steps_per_epoch=5, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and np.all(np.isfinite(losses))
    assert all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    # Dropout is active inside the inner loop (training=True) and off at inference.
    x = tf.linspace(-3.0, 3.0, 16)[:, None]
    w = [v.value for v in model.trainable_variables]
    train_out = maml.predict_with(w, x, training=True)
    np.testing.assert_allclose(maml.predict_with(w, x, training=False), model(x), rtol=1e-6)
    assert not np.allclose(train_out, model(x))


# Regression test: at commit 18ccbe8 the non-trainable values returned by stateless_call
# were discarded, so the dropout seed never advanced (one fixed mask for all training).
@pytest.mark.slow
def test_dropout_masks_change_during_meta_training():
    model = _dropout_model()
    maml = compiled_maml(model, inner_lr=0.01)
    x = tf.linspace(-3.0, 3.0, 64)[:, None]
    w0 = [tf.identity(v.value) for v in model.trainable_variables]
    out_before = maml.predict_with(w0, x, training=True)
    state_before = [v.numpy().copy() for v in model.non_trainable_variables]
    maml.fit(SinusoidTasks(5, 5).dataset(meta_batch_size=4), epochs=1, steps_per_epoch=5, verbose=0)
    # Plain Keras training advances the seed state (new masks every step); so should MAML.
    assert any(not np.array_equal(a, v.numpy())
               for a, v in zip(state_before, model.non_trainable_variables))
    # Same weights, later in training: the mask should be a different one.
    assert not np.allclose(out_before, maml.predict_with(w0, x, training=True))


# Regression test: at commit 18ccbe8 batch_norm="inductive" never updated the moving
# statistics, so evaluation normalised with mean 0 / variance 1.
@pytest.mark.slow
def test_inductive_batch_norm_updates_moving_statistics():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(momentum=0.5),
                              keras.layers.ReLU(), keras.layers.Dense(1)])
    maml = compiled_maml(model, inner_lr=0.01, batch_norm="inductive")
    maml.fit(SinusoidTasks(5, 5).dataset(meta_batch_size=4), epochs=1, steps_per_epoch=5, verbose=0)
    bn = model.layers[1]
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)
    assert not np.allclose(bn.moving_variance.numpy(), 1.0)
