"""MAML-TRPO (Algorithm 3, Section 5.3): the VPG inner step, the second-order outer
gradient through it (against finite differences, float64), and a short navigation
meta-training run."""
import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import flat, random_directions
from maml_tf.models.policy import gaussian_mlp_policy
from maml_tf.rl.maml_trpo import MAMLTRPO
from maml_tf.rl.trpo import hessian_vector_product
from rl_iteration_reference import trpo_steps_against_float64


def _batch(rng, tasks, n, dim=2, padding=2):
    """Fixed (observations, actions, advantages, valid) per task, float64; the last
    ``padding`` steps of each task are padding (valid 0, advantage 0)."""
    valid = np.ones((tasks, n))
    valid[:, n - padding:] = 0.0
    return (tf.constant(rng.normal(size=(tasks, n, dim))), tf.constant(rng.normal(size=(tasks, n, dim))),
            tf.constant(rng.normal(size=(tasks, n)) * valid), tf.constant(valid))


def _without_padding(data):
    """The same batch with the padding cut off (equal valid counts per task)."""
    keep = int(data[3].numpy().sum(axis=-1)[0])
    return tuple(t[:, :keep] for t in data)


def test_inner_step_is_a_hand_computed_vpg_step(float64, rng):
    """Linear Gaussian policy: d/dmu log pi = (a - mu) / sigma^2, d/dlog_sigma = z^2 - 1;
    the mean is over the valid steps (padding left out)."""
    model = gaussian_mlp_policy(2, 2, hidden=(), init_log_std=0.3)
    algo = MAMLTRPO(model, inner_lr=0.1)
    kernel, bias, log_std = [v.numpy() for v in model.trainable_variables]
    kernel += rng.normal(size=kernel.shape)
    batch = [t[0] for t in _batch(rng, 1, 9)]
    obs, act, adv = (t.numpy()[:7] for t in batch[:3])
    mean, var = obs @ kernel + bias, np.exp(2 * log_std)
    d_mean = (act - mean) / var                       # [n, 2]
    d_log_std = (act - mean) ** 2 / var - 1.0
    n = len(adv)
    grads = [-(obs * adv[:, None]).T @ d_mean / n, -(adv @ d_mean) / n, -(adv @ d_log_std) / n]
    expected = [w - 0.1 * g for w, g in zip([kernel, bias, log_std], grads)]
    got = algo.inner_step([tf.constant(kernel), tf.constant(bias), tf.constant(log_std)], *batch, 0.1)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-10)


def test_padding_changes_neither_the_surrogate_nor_the_kl(float64, rng):
    """Steps after an episode ended (valid 0) carry arbitrary states and actions: the
    MAML surrogate, its gradient and the KL equal those of the batch without them."""
    model = gaussian_mlp_policy(2, 2, hidden=(3,), activation="tanh", init_log_std=-0.2)
    algo = MAMLTRPO(model, inner_lr=0.5)
    pre, post = _batch(rng, 2, 8, padding=3), _batch(rng, 2, 7, padding=2)
    old = tf.constant(rng.normal(scale=0.3, size=(2, 7, 4)))
    short_pre, short_post = _without_padding(pre), _without_padding(post)
    short_old = old[:, :5]
    np.testing.assert_allclose(float(algo._surrogate(pre, post, old)),
                               float(algo._surrogate(short_pre, short_post, short_old)), rtol=1e-12)
    np.testing.assert_allclose(float(algo._kl(pre, post, old)),
                               float(algo._kl(short_pre, short_post, short_old)), rtol=1e-12)
    np.testing.assert_allclose(flat(_outer_gradient(algo, pre, post, old)),
                               flat(_outer_gradient(algo, short_pre, short_post, short_old)), rtol=1e-10)


def _outer_gradient(algo, pre, post, old):
    with tf.GradientTape() as tape:
        loss = algo._surrogate(pre, post, old)
    return tape.gradient(loss, algo.model.trainable_variables)


def test_second_order_outer_gradient_matches_finite_differences(float64, rng):
    model = gaussian_mlp_policy(2, 2, hidden=(3,), activation="tanh", init_log_std=-0.2)
    algo = MAMLTRPO(model, inner_lr=0.5)
    pre, post = _batch(rng, 2, 6), _batch(rng, 2, 5)
    old = tf.constant(rng.normal(scale=0.3, size=(2, 5, 4)))
    variables = model.trainable_variables
    grads = flat(_outer_gradient(algo, pre, post, old))
    start = [v.numpy() for v in variables]
    eps = 1e-5
    for direction in random_directions(variables, 3, rng):
        values = []
        for sign in (1, -1):
            for v, s, d in zip(variables, start, direction):
                v.assign(s + sign * eps * d)
            values.append(float(algo._surrogate(pre, post, old)))
        for v, s in zip(variables, start):
            v.assign(s)
        fd = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(grads @ flat(direction), fd, rtol=1e-6, atol=1e-9)

    first_order = MAMLTRPO(model, inner_lr=0.5, first_order=True)
    fo_grads = flat(_outer_gradient(first_order, pre, post, old))
    assert np.linalg.norm(fo_grads - grads) > 1e-3 * np.linalg.norm(grads)


@pytest.mark.parametrize("jvp, jit_compile", [("reverse", True), ("reverse", False),
                                               pytest.param("forward", False, marks=pytest.mark.slow)],
                         ids=["reverse-xla", "reverse", "forward"])
def test_hessian_vector_product_is_the_exact_one_at_the_trust_region_centre(float64, rng, jvp, jit_compile,
                                                                            monkeypatch):
    """The ``hvp_fn`` MAML-TRPO gives ``trpo_step`` (J v and J^T through the inner step,
    compiled, with XLA or without) equals double backprop through the second-order KL where
    TRPO uses it: the sampling policies are the current adapted ones."""
    monkeypatch.setattr(MAMLTRPO, "_jvp", jvp)
    model = gaussian_mlp_policy(2, 2, hidden=(3,), activation="tanh", init_log_std=-0.2)
    algo = MAMLTRPO(model, inner_lr=0.5, jit_compile=jit_compile)
    pre, post = _batch(rng, 2, 6), _batch(rng, 2, 5)
    variables = model.trainable_variables
    for _ in range(2):
        centre = algo._policy_outputs(pre, post, None)
        vector = [tf.constant(rng.normal(size=tuple(v.shape))) for v in variables]
        product = algo._hvp(vector, pre, post, centre)
        exact = hessian_vector_product(lambda: algo._kl(pre, post, centre), variables, vector)
        np.testing.assert_allclose(flat(product), flat(exact), rtol=1e-10, atol=1e-14)
        for v in variables:  # a second point
            v.assign(v + 0.3 * rng.normal(size=tuple(v.shape)))
    first_order = MAMLTRPO(model, inner_lr=0.5, first_order=True, jit_compile=jit_compile)
    centre = first_order._policy_outputs(pre, post, None)
    product = first_order._hvp(vector, pre, post, centre)
    exact = hessian_vector_product(lambda: first_order._kl(pre, post, centre), variables, vector)
    np.testing.assert_allclose(flat(product), flat(exact), rtol=1e-10, atol=1e-14)


@pytest.mark.slow
def test_trpo_step_with_xla_products_is_as_exact_as_without(rng):
    """One MAML-TRPO step in float32 from fixed data, with XLA-compiled products and without,
    against the same step in float64: XLA's step is as close to it as the graph's (conjugate
    gradient amplifies the products' rounding alike: on other seeds both miss it by 9-25%,
    0.2% apart); a wrong product would move it far."""
    make_policy = lambda: gaussian_mlp_policy(2, 2, hidden=(32,), init_log_std=-0.5)  # noqa: E731
    keras.utils.set_random_seed(6)  # a well-conditioned problem: float32 steps within 1e-4 of float64's
    model = make_policy()
    before = [v.numpy() for v in model.trainable_variables]
    pre, post = (tuple(tf.cast(t, tf.float32) for t in _batch(rng, 4, 100)) for _ in range(2))
    centre = MAMLTRPO(model, inner_lr=0.1)._policy_outputs(pre, post, None)
    steps = trpo_steps_against_float64(make_policy, (pre, post, centre), before, {"inner_lr": 0.1},
                                       {"xla": {"jit_compile": True}, "graph": {"jit_compile": False}})
    exact = steps["float64"]
    error = {name: np.linalg.norm(steps[name] - exact) / np.linalg.norm(exact) for name in ("xla", "graph")}
    assert error["xla"] < 1e-3
    assert error["xla"] <= 3 * error["graph"] + 1e-5


def test_xla_product_takes_the_data_and_weights_as_inputs(rng):
    """The XLA-compiled product's program takes every variable and data tensor as a parameter,
    none folded in as a compile-time constant: else it recompiles for every new batch and
    weight (``tf.vectorized_map`` under XLA made them constants before ``trpo`` inlined it)."""
    algo = MAMLTRPO(gaussian_mlp_policy(2, 2, hidden=(4,)), jit_compile=True)
    pre, post = (tuple(tf.cast(t, tf.float32) for t in _batch(rng, 2, 5)) for _ in range(2))
    centre = algo._policy_outputs(pre, post, None)
    vector = [tf.ones_like(v) for v in algo.model.trainable_variables]
    hlo = algo._hvp.experimental_get_compiler_ir(vector, pre, post, centre)(stage="hlo")
    entry = hlo[hlo.index("ENTRY"):]
    entry = entry[:entry.index("\n}")]
    inputs = len(tf.nest.flatten((vector, pre, post, centre))) + len(algo.model.trainable_variables)
    assert len(re.findall(r"parameter\(\d+\)", entry)) == inputs


def test_jit_compile_must_be_a_bool():
    with pytest.raises(ValueError, match="jit_compile must be True .* or False, got 'yes'"):
        MAMLTRPO(gaussian_mlp_policy(2, 2, hidden=(3,)), jit_compile="yes")


@pytest.mark.slow
def test_iteration_meta_test_and_checkpoint(tmp_path):
    model = gaussian_mlp_policy(2, 2, hidden=(8,))
    algo = MAMLTRPO(model, meta_batch_size=2, episodes_per_task=2, seed=1)
    stats = algo.train_iteration()
    assert set(stats) >= {"pre_update_return", "post_update_return", "loss_before", "kl",
                          "accepted", "seconds"}
    assert stats["kl"] <= 0.01 + 1e-6
    algo.checkpoint(tmp_path / "ckpt")
    tasks = algo.sample_tasks(3, seed=7)
    returns = algo.meta_test(tasks, steps=2, episodes_per_task=2)
    assert returns.shape == (3, 3)

    other = MAMLTRPO(gaussian_mlp_policy(2, 2, hidden=(8,)), meta_batch_size=2, episodes_per_task=2, seed=1)
    other.restore(tmp_path / "ckpt")
    assert other.iteration == 1
    assert other.env_steps == algo.env_steps == 2 * 2 * 2 * 100  # pre + post, 2 tasks x 2 paths
    assert other.seconds == pytest.approx(algo.seconds) and algo.seconds > 0
    for a, b in zip(model.trainable_variables, other.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(other.meta_test(tasks, steps=2, episodes_per_task=2), returns)


@pytest.mark.slow
def test_the_inner_step_is_traced_once_for_training_and_every_test_step_size():
    """The step size goes in as a tensor, so the compiled inner step is not retraced."""
    algo = MAMLTRPO(gaussian_mlp_policy(2, 2, hidden=(8,)), meta_batch_size=2, episodes_per_task=2, seed=1)
    algo.train_iteration()
    algo.adapt(algo.sample_tasks(2, seed=7), 3, step_sizes=(0.3, 0.1), episodes_per_task=2)
    assert algo._adapt_tasks.experimental_get_tracing_count() == 1



@pytest.mark.slow
def test_finite_difference_hvp_steps_inside_the_trust_region():
    """The authors' TRPO (hvp="finite_difference"): a step is still line-searched into the
    KL bound, and its direction differs from the exact natural gradient's."""
    steps = {}
    for hvp in ("exact", "finite_difference"):
        model = gaussian_mlp_policy(2, 2, hidden=(8,))
        model.set_weights([np.full(w.shape, 0.1, np.float32) for w in model.get_weights()])
        start = flat(model.trainable_variables)
        algo = MAMLTRPO(model, meta_batch_size=2, episodes_per_task=2, seed=1, hvp=hvp)
        stats = algo.train_iteration()
        assert stats["accepted"] and 0.0 < stats["kl"] <= 0.01 + 1e-6
        steps[hvp] = flat(model.trainable_variables) - start
    cosine = steps["exact"] @ steps["finite_difference"] / (
        np.linalg.norm(steps["exact"]) * np.linalg.norm(steps["finite_difference"]) + 1e-12)
    assert cosine < 0.99
    with pytest.raises(ValueError, match="hvp must be one of"):
        MAMLTRPO(gaussian_mlp_policy(2, 2, hidden=(8,)), hvp="approximate")


@pytest.mark.slow
def test_navigation_meta_training_improves_post_update_return():
    model = gaussian_mlp_policy(2, 2, hidden=(32, 32))
    algo = MAMLTRPO(model, meta_batch_size=8, episodes_per_task=10, seed=0)
    start = time.time()
    history = algo.train(12)
    post = [h["post_update_return"] for h in history]
    print(f"{time.time() - start:.1f} s; post-update returns {np.round(post, 1)}")
    assert np.mean(post[-3:]) > np.mean(post[:3]) + 5.0


@pytest.mark.slow
def test_navigation_meta_training_on_streams_improves_post_update_return():
    """The authors' training sampler (sampling="stream": one stream of episodes per task)
    feeds the same learner: the post-update return rises within a few iterations."""
    model = gaussian_mlp_policy(2, 2, hidden=(32, 32))
    algo = MAMLTRPO(model, meta_batch_size=8, episodes_per_task=10, seed=0, sampling="stream")
    start = time.time()
    history = algo.train(6)
    post = [h["post_update_return"] for h in history]
    print(f"{time.time() - start:.1f} s; post-update returns {np.round(post, 1)}")
    assert np.mean(post[-2:]) > np.mean(post[:2]) + 5.0
    assert algo.env_steps >= 6 * 2 * 8 * 10 * 100  # complete episodes fill the budget, pre and post

