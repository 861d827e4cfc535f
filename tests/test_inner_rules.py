"""Which weights the inner loop adapts and how: adapt=..., Meta-SGD, LSLR, the MAML++
multi-step loss and loss_reduction."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import (classification_episodes, classification_loss, compiled_maml,
                      conv_bn_model, meta_gradient, regression_episodes)
from maml_tf import MetaSGD, PerLayerPerStepLR
from maml_tf.models import mlp
from maml_tf.tasks import SinusoidTasks


def _changed(maml, episodes, steps=1):
    """Paths of the model weights that ``maml.adapt`` changes on task 0."""
    (sx, sy) = episodes["support"]
    adapted = maml.adapt(sx[0], sy[0], steps=steps)
    variables = maml.model.trainable_variables
    assert len(adapted) == len(variables)
    return {v.path for v, a in zip(variables, adapted) if not np.allclose(v.numpy(), np.asarray(a))}


def _bn_mlp():
    inputs = keras.Input((1,))
    h = keras.layers.Dense(8, name="dense_a")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU()(h)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(h))


ALL = {"hidden_0/kernel", "hidden_0/bias", "hidden_1/kernel", "hidden_1/bias",
       "head/kernel", "head/bias"}


@pytest.mark.parametrize("adapt, expected", [
    ("all", ALL),
    ("head", {"head/kernel", "head/bias"}),
    ([r"^hidden_1/"], {"hidden_1/kernel", "hidden_1/bias"}),
    ([r"hidden_0/kernel", r"head/bias$"], {"hidden_0/kernel", "head/bias"}),
    (lambda v: v.path.endswith("bias"), {"hidden_0/bias", "hidden_1/bias", "head/bias"}),
])
def test_adapt_selects_the_adapted_weights(rng, adapt, expected):
    maml = compiled_maml(mlp(hidden=(8, 8)), inner_lr=0.1, adapt=adapt)
    assert _changed(maml, regression_episodes(rng)) == expected


def test_head_only_meta_gradient_still_reaches_the_body(rng):
    """ANIL: the body is not adapted but is still meta-trained (second order)."""
    maml = compiled_maml(mlp(hidden=(8, 8)), inner_lr=0.1, adapt="head")
    _, grads = meta_gradient(maml, regression_episodes(rng))
    assert all(np.abs(g).max() > 0 for g in grads)


def test_no_batch_norm_leaves_gamma_and_beta_unadapted(rng):
    maml = compiled_maml(_bn_mlp(), inner_lr=0.1, adapt="no_batch_norm")
    assert _changed(maml, regression_episodes(rng, support=6)) == {
        "dense_a/kernel", "dense_a/bias", "head/kernel", "head/bias"}
    everything = compiled_maml(_bn_mlp(), inner_lr=0.1, adapt="all")
    assert {"bn/gamma", "bn/beta"} <= _changed(everything, regression_episodes(rng, support=6))


def _learned_rates(maml):
    rule = maml.inner_rule
    return list(rule.rates) if isinstance(rule, MetaSGD) else [rule.rates]


@pytest.mark.slow
@pytest.mark.parametrize("rule, cls", [("meta-sgd", MetaSGD), ("lslr", PerLayerPerStepLR)])
def test_learned_inner_rates_are_meta_parameters(rule, cls):
    maml = compiled_maml(mlp(hidden=(8, 8)), optimizer=keras.optimizers.Adam(1e-2),
                         inner_lr=0.01, inner_steps=2, inner_rule=rule)
    assert isinstance(maml.inner_rule, cls)
    rates = _learned_rates(maml)
    model_vars = maml.model.trainable_variables
    ids = [id(v) for v in maml.trainable_variables]
    assert all(id(r) in ids for r in rates)
    assert len(maml.trainable_variables) == len(model_vars) + len(rates)
    if rule == "meta-sgd":
        assert [tuple(r.shape) for r in rates] == [tuple(v.shape) for v in model_vars]
    else:
        assert tuple(rates[0].shape) == (len(model_vars), 2)
    for r in rates:
        np.testing.assert_allclose(r.numpy(), 0.01)

    episodes, _ = SinusoidTasks(5, 5).sample(4, seed=[0, 1])
    _, grads = meta_gradient(maml, episodes)
    by_id = dict(zip(ids, grads))
    for r in rates:
        assert np.abs(by_id[id(r)]).max() > 0, r.path

    before = [r.numpy().copy() for r in rates]
    maml.fit(tf.data.Dataset.from_tensors(episodes), epochs=1, steps_per_epoch=1, verbose=0)
    assert int(maml.optimizer.iterations.numpy()) == 1
    for b, r in zip(before, rates):
        assert not np.allclose(b, r.numpy()), r.path


def test_meta_sgd_update_uses_per_parameter_rates(rng):
    maml = compiled_maml(mlp(hidden=(4,)), inner_lr=0.01, inner_rule="meta-sgd")
    rates = [rng.uniform(0.0, 0.5, size=r.shape).astype("float32") for r in maml.inner_rule.rates]
    for r, value in zip(maml.inner_rule.rates, rates):
        r.assign(value)
    (sx, sy) = regression_episodes(rng)["support"]
    meta = [v.value for v in maml.model.trainable_variables]
    with tf.GradientTape() as tape:
        tape.watch(meta)
        loss = maml._task_loss(sy[0], maml.predict_with(meta, sx[0]))
    grads = tape.gradient(loss, meta)
    adapted = maml.adapt(sx[0], sy[0], steps=1)
    for a, w, g, r in zip(adapted, meta, grads, rates):
        np.testing.assert_allclose(a, w - r * g, rtol=1e-5, atol=1e-7)


def test_lslr_uses_one_rate_per_step(rng):
    maml = compiled_maml(mlp(hidden=(4,)), inner_lr=0.01, inner_steps=2, inner_rule="lslr")
    rates = np.zeros((len(maml.model.trainable_variables), 2), "float32")
    rates[:, 1] = 0.1  # step 0 does nothing, step 1 moves
    maml.inner_rule.rates.assign(rates)
    (sx, sy) = regression_episodes(rng)["support"]
    meta = [v.numpy() for v in maml.model.trainable_variables]
    for a, w in zip(maml.adapt(sx[0], sy[0], steps=1), meta):
        np.testing.assert_array_equal(a, w)
    assert any(not np.allclose(a, w) for a, w in zip(maml.adapt(sx[0], sy[0], steps=2), meta))
    # Steps past the trained number reuse the last rate (step 3 moves again).
    two, three = maml.adapt(sx[0], sy[0], steps=2), maml.adapt(sx[0], sy[0], steps=3)
    assert any(not np.allclose(a, b) for a, b in zip(two, three))


@pytest.mark.parametrize("steps", [2, 3, 5])
def test_multi_step_loss_weights(steps):
    maml = compiled_maml(mlp(hidden=(4,)), inner_steps=steps, multi_step_loss=True,
                         multi_step_loss_iterations=100)
    maml.optimizer.build(maml.trainable_variables)
    for iteration, check in [(0, "uniform"), (50, None), (100, "final"), (1000, "final")]:
        maml.optimizer.iterations.assign(iteration)
        w = maml.inner_loop.multi_step_weights(steps, tf.float64).numpy()
        assert w.shape == (steps,)
        np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-12)
        assert np.all(w > 0)
        if check == "uniform":
            np.testing.assert_allclose(w, 1.0 / steps)
        if check == "final":  # annealed: earlier steps at their floor, the last step dominates
            np.testing.assert_allclose(w[:-1], 0.03 / steps)
            assert w[-1] > 0.9
    maml.optimizer.iterations.assign(50)
    mid = maml.inner_loop.multi_step_weights(steps, tf.float64).numpy()
    assert mid[-1] > 1.0 / steps and mid[0] < 1.0 / steps


def test_multi_step_loss_weights_every_inner_step(float64, rng):
    steps = 3
    maml = compiled_maml(mlp(hidden=(8, 8), activation="tanh"), inner_lr=0.1,
                         inner_steps=steps, multi_step_loss=True)
    maml.optimizer.build(maml.trainable_variables)  # iterations = 0: uniform weights
    episodes = regression_episodes(rng, tasks=3)
    loss, _ = meta_gradient(maml, episodes)
    per_step = maml.evaluate_tasks(episodes, steps=steps)["loss"].numpy()  # [tasks, 0..steps]
    assert not np.isclose(per_step[:, 1:].mean(), per_step[:, -1].mean())
    np.testing.assert_allclose(loss, per_step[:, 1:].mean(), rtol=1e-8)


def test_single_step_loss_is_the_last_step(float64, rng):
    maml = compiled_maml(mlp(hidden=(8, 8), activation="tanh"), inner_lr=0.1, inner_steps=3)
    episodes = regression_episodes(rng, tasks=3)
    loss, _ = meta_gradient(maml, episodes)
    per_step = maml.evaluate_tasks(episodes, steps=3)["loss"].numpy()
    np.testing.assert_allclose(loss, per_step[:, -1].mean(), rtol=1e-10)


def test_sum_over_shots_is_mean_times_classes(float64, rng):
    ways = 3
    episodes = classification_episodes(rng, tasks=2, ways=ways, shots=2)
    model = conv_bn_model(num_classes=ways)

    def loss_of(reduction, inner_lr, steps):
        maml = compiled_maml(model, loss=classification_loss(), inner_lr=inner_lr,
                             inner_steps=steps, loss_reduction=reduction)
        return meta_gradient(maml, episodes)[0]

    # No adaptation: the query loss itself scales by N.
    np.testing.assert_allclose(loss_of("sum_over_shots", 0.1, 0), ways * loss_of("mean", 0.1, 0),
                               rtol=1e-12)
    # One step: the inner gradient scales by N too, i.e. sum_over_shots with alpha equals
    # N times the mean-reduced objective with alpha * N.
    np.testing.assert_allclose(loss_of("sum_over_shots", 0.05, 1),
                               ways * loss_of("mean", 0.05 * ways, 1), rtol=1e-7)
    assert not np.isclose(loss_of("sum_over_shots", 0.05, 1), ways * loss_of("mean", 0.05, 1))
