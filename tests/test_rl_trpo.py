"""TRPO's pieces (MAML-RL outer step, Section 5.3): conjugate gradient, exact
Hessian-vector products of the KL (against finite differences, float64) and the
line-searched natural-gradient step."""
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from conftest import flat
from maml_tf.rl.trpo import (conjugate_gradient, finite_difference_hessian_vector_product, hessian_vector_product,
                             kl_hessian_vector_product, trpo_step)

tfd = tfp.distributions


def _spd(rng, n):
    m = rng.normal(size=(n, n))
    return m @ m.T + n * np.eye(n)


def _split(vector, like):
    """A flat NumPy vector as a list of tensors shaped like ``like``."""
    out, start = [], 0
    for t in like:
        size = int(np.prod(t.shape))
        out.append(tf.constant(vector[start:start + size].reshape(t.shape), tf.float64))
        start += size
    return out


# ----------------------------------------------------------------------------- CG
def test_cg_solves_a_dense_spd_system(rng):
    a, b = _spd(rng, 8), rng.normal(size=8)
    x = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b),
                           iterations=30, residual_tol=1e-24)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), rtol=1e-10)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_cg_solves_a_matrix_free_system_on_a_list(rng, compiled):
    """A = diag(d) + u u^T on a list [vector (3,), matrix (2, 2)], never materialised."""
    d = [tf.constant(rng.uniform(1, 3, size=s)) for s in [(3,), (2, 2)]]
    u = [tf.constant(rng.normal(size=s)) for s in [(3,), (2, 2)]]
    b = [tf.constant(rng.normal(size=s)) for s in [(3,), (2, 2)]]

    def matvec(v):
        uv = sum(tf.reduce_sum(ui * vi) for ui, vi in zip(u, v))
        return [di * vi + ui * uv for di, ui, vi in zip(d, u, v)]

    solve = lambda: conjugate_gradient(matvec, b, iterations=30, residual_tol=1e-24)  # noqa: E731
    x = tf.function(solve)() if compiled else solve()
    dense = np.diag(flat(d)) + np.outer(flat(u), flat(u))
    assert [t.shape for t in x] == [(3,), (2, 2)]
    np.testing.assert_allclose(flat(x), np.linalg.solve(dense, flat(b)), rtol=1e-10)


def test_cg_of_a_zero_right_hand_side_is_zero():
    x = conjugate_gradient(lambda v: v, [tf.zeros([3], tf.float64)])
    np.testing.assert_array_equal(x[0].numpy(), np.zeros(3))


# ----------------------------------------------------------------------------- HVP
def _quadratic_kl(rng):
    """Params [u (3,), W (2, 2)] and 0.5 d^T H d, d their flattened offset from the start."""
    params = [tf.Variable(rng.normal(size=s)) for s in [(3,), (2, 2)]]
    start = [tf.constant(p.numpy()) for p in params]
    hessian = _spd(rng, 7)

    def kl_fn():
        d = tf.concat([tf.reshape(p - s, [-1]) for p, s in zip(params, start)], axis=0)
        return 0.5 * tf.tensordot(d, tf.linalg.matvec(tf.constant(hessian), d), 1)

    return params, kl_fn, hessian


@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_hvp_of_a_quadratic_is_exact(rng, damping):
    params, kl_fn, hessian = _quadratic_kl(rng)
    for p in params:  # away from the minimum; H is constant anyway
        p.assign_add(rng.normal(size=p.shape))
    v = rng.normal(size=7)
    hv = hessian_vector_product(kl_fn, params, _split(v, params), damping=damping)
    np.testing.assert_allclose(flat(hv), hessian @ v + damping * v, rtol=1e-12)


def _quadratic_kl_gradient(params, kl_fn):
    def grad_fn():
        with tf.GradientTape() as tape:
            kl = kl_fn()
        return tape.gradient(kl, params)
    return grad_fn


def test_finite_difference_hvp_of_a_quadratic_in_float64_is_exact(rng):
    """Central differences are exact on a quadratic when theta + eps v is representable."""
    params, kl_fn, hessian = _quadratic_kl(rng)
    for p in params:
        p.assign_add(rng.normal(size=p.shape))
    before = flat(params)
    v = rng.normal(size=7)
    hv = finite_difference_hessian_vector_product(_quadratic_kl_gradient(params, kl_fn), params,
                                                  _split(v, params), base_eps=1e-4, damping=0.1)
    np.testing.assert_allclose(flat(hv), hessian @ v + 0.1 * v, rtol=1e-7)
    np.testing.assert_array_equal(flat(params), before)  # restored


def test_finite_difference_hvp_in_float32_is_mostly_the_damping(rng):
    """The authors' setting (rllab's base_eps 1e-8, float32 parameters of size ~1): theta +
    eps v rounds back to theta, both gradients are equal and only ``damping * v`` is left,
    although the true product is large."""
    params, kl_fn, hessian = _quadratic_kl(rng)
    params32 = [tf.Variable(tf.cast(p + rng.normal(size=p.shape), tf.float32)) for p in params]
    start32 = [tf.cast(p, tf.float32) for p in params]  # the KL's centre

    def kl32():
        d = tf.concat([tf.reshape(p - s, [-1]) for p, s in zip(params32, start32)], axis=0) + 1.0
        return 0.5 * tf.tensordot(d, tf.linalg.matvec(tf.constant(hessian, tf.float32), d), 1)

    v = rng.normal(size=7).astype(np.float32)
    vector = [tf.cast(x, tf.float32) for x in _split(v, params)]
    hv = finite_difference_hessian_vector_product(_quadratic_kl_gradient(params32, kl32), params32, vector)
    np.testing.assert_allclose(flat(hv), 1e-5 * v, rtol=1e-6)
    assert np.linalg.norm(hessian @ v) > 1e4 * np.linalg.norm(flat(hv))


def _gaussian_policy_params(rng, make_variable=tf.Variable, obs_dim=3, hidden=5, act_dim=2):
    shapes = [(obs_dim, hidden), (hidden,), (hidden, act_dim), (act_dim,), (act_dim,)]
    return [make_variable(rng.normal(scale=0.5, size=s)) for s in shapes]


def _policy(weights, obs):
    """Gaussian MLP policy: tanh hidden layer -> mean; the last weight is the log-std."""
    w1, b1, w2, b2, log_std = weights
    return tfd.MultivariateNormalDiag(tf.tanh(obs @ w1 + b1) @ w2 + b2, tf.exp(log_std))


def _adapt(weights, obs, actions, advantages, lr=0.1):
    """One REINFORCE step, differentiable w.r.t. ``weights`` (MAML's inner step)."""
    weights = [tf.convert_to_tensor(w) for w in weights]  # a read the outer tapes record
    with tf.GradientTape() as tape:
        tape.watch(weights)
        loss = -tf.reduce_mean(_policy(weights, obs).log_prob(actions) * advantages)
    grads = tape.gradient(loss, weights)
    return [w - lr * g for w, g in zip(weights, grads)]


def _policy_problem(rng, params, inner_step):
    """Data, the frozen sampling policy's weights and ``effective(weights)``: the
    policy's weights themselves, or after MAML's inner step."""
    obs = tf.constant(rng.normal(size=(32, 3)), params[0].dtype)
    actions = tf.constant(rng.normal(size=(32, 2)), params[0].dtype)
    advantages = tf.constant(rng.normal(size=32), params[0].dtype)
    effective = (lambda w: _adapt(w, obs, actions, advantages)) if inner_step else (lambda w: w)
    old = [tf.constant(w) for w in effective([tf.constant(np.asarray(p)) for p in params])]
    return obs, actions, advantages, old, effective


def _assert_products_match_finite_differences(hvp, grad, params, rng, eps=1e-5):
    """``hvp(v)`` against central differences of ``grad()`` (flat) along 2 random ``v``."""
    base = [p.numpy() for p in params]
    for _ in range(2):
        v = rng.normal(size=sum(int(np.prod(p.shape)) for p in params))
        hv = flat(hvp(_split(v, params)))
        diffs = []
        for sign in (1, -1):
            for p, b, vi in zip(params, base, _split(v, params)):
                p.assign(b + sign * eps * vi)
            diffs.append(grad())
        for p, b in zip(params, base):
            p.assign(b)
        fd = (diffs[0] - diffs[1]) / (2 * eps)
        assert np.linalg.norm(hv - fd) < 1e-7 * np.linalg.norm(hv)


@pytest.mark.parametrize("inner_step", [False, True], ids=["policy", "maml"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_hvp_of_a_gaussian_policy_kl_matches_finite_differences(rng, inner_step, compiled):
    """H v against central differences of the KL's gradient, at weights moved away
    from the sampling policy's (where the KL's Hessian is not just the Fisher)."""
    params = _gaussian_policy_params(rng)
    obs, _, _, old, effective = _policy_problem(rng, params, inner_step)
    for p in params:
        p.assign_add(0.3 * rng.normal(size=p.shape))

    def kl_fn():
        return tf.reduce_mean(tfd.kl_divergence(_policy(old, obs), _policy(effective(params), obs)))

    def grad():
        with tf.GradientTape() as tape:
            kl = kl_fn()
        return flat(tape.gradient(kl, params))

    hvp = lambda v: hessian_vector_product(kl_fn, params, v, damping=0.0)  # noqa: E731
    if compiled:
        hvp = tf.function(hvp)
    _assert_products_match_finite_differences(hvp, grad, params, rng)


@pytest.mark.parametrize("jvp, jit_compile", [("reverse", False), ("reverse", True), ("forward", False)],
                         ids=["reverse", "reverse-xla", "forward"])
@pytest.mark.parametrize("inner_step", [False, True], ids=["policy", "maml"])
def test_fisher_form_product_matches_finite_differences_at_the_centre(rng, inner_step, jvp, jit_compile):
    """kl_hessian_vector_product (J^T M J v, compiled, with XLA too) against central differences
    of the KL's gradient where TRPO evaluates it: the sampling policy is the current one."""
    params = _gaussian_policy_params(rng)
    obs, _, _, old, effective = _policy_problem(rng, params, inner_step)
    old_outputs = tf.concat([_policy(old, obs).mean(), tf.math.log(_policy(old, obs).stddev())], -1)

    def outputs_fn():
        policy = _policy(effective(params), obs)
        return tf.concat([policy.mean(), tf.math.log(policy.stddev())], -1)

    def kl_of_outputs(outputs):
        mean, log_std = tf.split(outputs, 2, axis=-1)
        old_mean, old_log_std = tf.split(old_outputs, 2, axis=-1)
        return tf.reduce_mean(tfd.kl_divergence(tfd.MultivariateNormalDiag(old_mean, tf.exp(old_log_std)),
                                                tfd.MultivariateNormalDiag(mean, tf.exp(log_std))))

    def grad():
        with tf.GradientTape() as tape:
            kl = kl_of_outputs(outputs_fn())
        return flat(tape.gradient(kl, params))

    hvp = tf.function(lambda v: kl_hessian_vector_product(outputs_fn, kl_of_outputs, params, v, damping=0.0, jvp=jvp),
                      jit_compile=jit_compile)
    _assert_products_match_finite_differences(hvp, grad, params, rng)


def test_forward_mode_product_refuses_xla_and_a_bad_jvp_is_named(rng):
    """Under XLA the forward-mode tangents come out zero (the product would be the damping
    alone): refused with a message; an unknown ``jvp`` names the allowed ones."""
    params = _gaussian_policy_params(rng)
    obs = tf.constant(rng.normal(size=(4, 3)))
    outputs_fn = lambda: _policy(params, obs).mean()  # noqa: E731
    vector = [tf.ones_like(p) for p in params]
    product = tf.function(lambda v: kl_hessian_vector_product(outputs_fn, tf.reduce_sum, params, v, jvp="forward"),
                          jit_compile=True)
    with pytest.raises(ValueError, match="jvp='reverse'"):
        product(vector)
    with pytest.raises(ValueError, match="jvp must be one of reverse, forward, got 'backward'"):
        kl_hessian_vector_product(outputs_fn, tf.reduce_sum, params, vector, jvp="backward")


def test_xla_dynamic_update_slice_has_its_gradient(rng):
    """The gradient registered for XLA's dynamic update slice (Slice's gradient under XLA,
    differentiated by the reverse-over-reverse product): ``grad`` outside the window for the
    input, the window for the update."""
    from tensorflow.compiler.tf2xla.ops import gen_xla_ops

    base, update, weights = (tf.constant(rng.normal(size=s)) for s in [(4, 5), (2, 3), (4, 5)])
    begin = tf.constant([1, 2])

    @tf.function(jit_compile=True)
    def gradients(base, update):
        with tf.GradientTape() as tape:
            tape.watch([base, update])
            loss = tf.reduce_sum(weights * gen_xla_ops.xla_dynamic_update_slice(base, update, begin))
        return tape.gradient(loss, [base, update])

    d_base, d_update = gradients(base, update)
    window = np.zeros((4, 5), bool)
    window[1:3, 2:5] = True
    np.testing.assert_array_equal(d_base.numpy(), np.where(window, 0.0, weights.numpy()))
    np.testing.assert_array_equal(d_update.numpy(), weights.numpy()[1:3, 2:5])


# ----------------------------------------------------------------------------- TRPO step
def _linear_loss(g, params):
    """``loss_fn`` returning g . (flattened params)."""
    g = tf.constant(g)
    return lambda: tf.tensordot(g, tf.concat([tf.reshape(p, [-1]) for p in params], 0), 1)


def test_trpo_step_is_the_natural_gradient_scaled_to_the_trust_region(rng):
    params, kl_fn, hessian = _quadratic_kl(rng)
    g = rng.normal(size=7)
    before = flat(params)
    info = trpo_step(_linear_loss(g, params), kl_fn, params, max_kl=0.01, damping=1e-5)
    step = flat(params) - before

    assert info["accepted"] and info["backtracks"] == 0  # linear loss: the full step
    assert info["loss_after"] < info["loss_before"]
    assert info["kl"] == pytest.approx(float(kl_fn()), rel=1e-12)
    assert 0.999 * 0.01 < info["kl"] <= 0.01 * (1 + 1e-6)
    natural = np.linalg.solve(hessian, g)
    cosine = -step @ natural / (np.linalg.norm(step) * np.linalg.norm(natural))
    assert cosine > 1 - 1e-9
    s = np.linalg.solve(hessian + 1e-5 * np.eye(7), g)  # rllab's exact step, damping included
    beta = np.sqrt(2 * 0.01 / (s @ (hessian + 1e-5 * np.eye(7)) @ s + 1e-8))
    np.testing.assert_allclose(step, -beta * s, rtol=1e-8)


@pytest.mark.parametrize("compiled, inner_step", [(False, False), (True, True)],
                         ids=["eager-policy", "tf.function-maml"])
def test_trpo_step_on_a_gaussian_policy_surrogate(rng, inner_step, compiled):
    """The importance-sampled surrogate of rllab's TRPO, on Keras variables; with
    ``inner_step`` both callables see the weights only through MAML's inner step."""
    params = _gaussian_policy_params(rng, lambda value: keras.Variable(value, dtype="float64"))
    obs, actions, advantages, old, effective = _policy_problem(rng, params, inner_step)
    old_log_prob = _policy(old, obs).log_prob(actions)

    def loss_fn():
        ratio = tf.exp(_policy(effective(params), obs).log_prob(actions) - old_log_prob)
        return -tf.reduce_mean(ratio * advantages)

    def kl_fn():
        return tf.reduce_mean(tfd.kl_divergence(_policy(old, obs), _policy(effective(params), obs)))

    if compiled:
        loss_fn, kl_fn = tf.function(loss_fn), tf.function(kl_fn)
    assert float(kl_fn()) == pytest.approx(0.0, abs=1e-12)
    info = trpo_step(loss_fn, kl_fn, params, max_kl=0.01)
    assert info["accepted"]
    assert info["loss_after"] < info["loss_before"]
    assert info["loss_after"] == pytest.approx(float(loss_fn()), rel=1e-12)
    assert 0.0 < float(kl_fn()) <= 0.01 * (1 + 1e-6)


def test_trpo_step_takes_its_products_from_hvp_fn():
    """``hvp_fn`` replaces the default product: the compiled default gives the same step,
    and every product (CG and curvature) goes through it."""
    steps, calls = [], []
    for hook in (False, True):
        params, kl_fn, _ = _quadratic_kl(np.random.default_rng(7))  # the same problem twice
        compiled = tf.function(lambda v: hessian_vector_product(kl_fn, params, v))  # noqa: B023

        def hvp_fn(v):
            calls.append(1)
            return compiled(v)

        before = flat(params)
        trpo_step(_linear_loss(np.arange(7.0), params), kl_fn, params, max_kl=0.01,
                  hvp_fn=hvp_fn if hook else None)
        steps.append(flat(params) - before)
    assert len(calls) >= 2
    np.testing.assert_allclose(steps[1], steps[0], rtol=1e-10)


def test_trpo_step_takes_the_curvature_from_the_residual_without_another_product(rng):
    """``curvature="residual"``: ``s^T (g - r)`` from conjugate gradient's residual instead of
    ``s^T H s`` from one more product: the same step (float64), one product fewer."""
    steps, products = {}, {}
    for curvature in ("product", "residual"):
        params, kl_fn, hessian = _quadratic_kl(np.random.default_rng(3))  # the same problem twice
        calls = []

        def hvp_fn(v):
            calls.append(1)
            return hessian_vector_product(kl_fn, params, v)  # noqa: B023

        before = flat(params)
        info = trpo_step(_linear_loss(np.arange(7.0), params), kl_fn, params, max_kl=0.01, cg_iterations=5,
                         hvp_fn=hvp_fn, curvature=curvature)
        assert info["accepted"]
        steps[curvature], products[curvature] = flat(params) - before, len(calls)
    np.testing.assert_allclose(steps["residual"], steps["product"], rtol=1e-10)
    assert products == {"product": 6, "residual": 5}
    with pytest.raises(ValueError, match="curvature must be one of product, residual, got 'hessian'"):
        trpo_step(_linear_loss(np.arange(7.0), params), kl_fn, params, curvature="hessian")


def test_cg_returns_the_residual_it_carries(rng):
    a, b = _spd(rng, 8), rng.normal(size=8)
    x, r = conjugate_gradient(lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b), iterations=3,
                              return_residual=True)
    assert np.linalg.norm(r.numpy()) > 1e-3  # 3 of 8 iterations: not converged
    np.testing.assert_allclose(r.numpy(), b - a @ x.numpy(), rtol=1e-10, atol=1e-12)


def test_trpo_step_restores_the_params_when_every_step_breaks_the_trust_region(rng):
    """The KL is quadratic at the start (so CG and the step size see a harmless H) but
    has a steep quartic term that even the smallest backtracked step violates."""
    params, quadratic_kl, _ = _quadratic_kl(rng)
    start = [tf.constant(p.numpy()) for p in params]

    def kl_fn():
        squared = sum(tf.reduce_sum((p - s) ** 2) for p, s in zip(params, start))
        return quadratic_kl() + 1e12 * squared ** 2

    before = [p.numpy() for p in params]
    info = trpo_step(_linear_loss(rng.normal(size=7), params), kl_fn, params, max_kl=0.01, max_backtracks=15)
    assert not info["accepted"] and info["backtracks"] == 15
    assert info["loss_after"] == info["loss_before"] and info["kl"] == 0.0
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_trpo_step_refuses_to_run_inside_tf_function(rng):
    params, kl_fn, _ = _quadratic_kl(rng)
    loss_fn = lambda: tf.reduce_sum(params[0])  # noqa: E731
    with pytest.raises(RuntimeError, match="runs eagerly"):
        tf.function(lambda: trpo_step(loss_fn, kl_fn, params))()
