"""meta_gradient_terms: second- against first-order meta-gradient of one meta-batch, and the
inner loss's Hessian-vector product, checked against closed forms and finite differences."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf import MAML
from maml_tf.core.episodes import EpisodeError, make
from maml_tf.evaluation import meta_gradient_terms, support_curvature

ALPHA = 0.1


def _linear_maml(loss="mse", inner_steps=1, first_order=False, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    maml = MAML(model, inner_lr=ALPHA, inner_steps=inner_steps, first_order=first_order)
    maml.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    return maml


def _episodes(tasks=4, shots=5, dim=3, seed=1):
    rng = np.random.default_rng(seed)
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    return make(f(tasks, shots, dim), f(tasks, shots, 1), f(tasks, shots + 2, dim), f(tasks, shots + 2, 1))


def _augmented(x):
    return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1).astype(np.float64)


def _closed_form(maml, episodes):
    """One inner step of linear regression with MSE: g_FO = grad L_q(theta'),
    g_SO = (I - alpha H_s) g_FO with H_s = 2/n A^T A the support loss's Hessian."""
    kernel, bias = (np.asarray(v, np.float64) for v in maml.model.get_weights())
    theta = np.concatenate([kernel[:, 0], bias])
    so, fo, hvp_norms, ghg = [], [], [], []
    for sx, sy, qx, qy in zip(*(np.asarray(t) for t in (*episodes["support"], *episodes["query"]))):
        a, b = _augmented(sx), _augmented(qx)
        hessian = 2.0 / len(a) * a.T @ a
        g_support = 2.0 / len(a) * a.T @ (a @ theta - sy[:, 0])
        adapted = theta - ALPHA * g_support
        g_query = 2.0 / len(b) * b.T @ (b @ adapted - qy[:, 0])
        fo.append(g_query)
        so.append((np.eye(len(theta)) - ALPHA * hessian) @ g_query)
        hvp_norms.append(np.linalg.norm(hessian @ g_support))
        ghg.append(g_support @ hessian @ g_support)
    return np.mean(so, axis=0), np.mean(fo, axis=0), np.array(hvp_norms), np.array(ghg)


def test_linear_regression_matches_the_closed_form():
    maml, episodes = _linear_maml(), _episodes()
    so, fo, hvp_norms, ghg = _closed_form(maml, episodes)
    terms = meta_gradient_terms(maml, episodes)
    difference = np.linalg.norm(so - fo)
    assert terms["second_order_norm"] == pytest.approx(np.linalg.norm(so), rel=1e-4)
    assert terms["first_order_norm"] == pytest.approx(np.linalg.norm(fo), rel=1e-4)
    assert terms["difference_norm"] == pytest.approx(difference, rel=1e-3)
    assert terms["cosine"] == pytest.approx(so @ fo / np.linalg.norm(so) / np.linalg.norm(fo), abs=1e-5)
    # MSE is quadratic, so the dropped term is not zero even for a linear model.
    assert terms["relative_difference"] > 0.01
    curvature = support_curvature(maml, episodes)
    np.testing.assert_allclose(curvature["hvp_norm"], hvp_norms, rtol=1e-4)
    np.testing.assert_allclose(curvature["gHg"], ghg, rtol=1e-4)
    assert terms["hvp_norm"] == pytest.approx(hvp_norms.mean(), rel=1e-4)
    # A linear model's predictions have no second derivatives: H is all Gauss-Newton.
    np.testing.assert_allclose(curvature["gauss_newton_norm"], hvp_norms, rtol=1e-4)
    np.testing.assert_allclose(curvature["network_curvature_norm"], 0.0, atol=1e-4 * hvp_norms.max())


@pytest.mark.parametrize("case", ["linear_loss", "no_inner_step"])
def test_gap_is_zero_where_the_second_order_term_vanishes(case):
    # A loss linear in the predictions of a linear model has a zero Hessian; with no inner
    # step there is nothing to differentiate through.
    maml = (_linear_maml(loss=lambda y, p: -y * p) if case == "linear_loss" else _linear_maml(inner_steps=0))
    terms = meta_gradient_terms(maml, _episodes())
    assert terms["first_order_norm"] > 0.1
    assert terms["relative_difference"] == pytest.approx(0.0, abs=1e-6)
    assert terms["cosine"] == pytest.approx(1.0, abs=1e-6)
    if case == "linear_loss":
        assert terms["hvp_norm"] == pytest.approx(0.0, abs=1e-6)


def _tanh_maml(loss="mse"):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    maml = MAML(model, inner_lr=ALPHA, first_order=True)
    maml.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    return maml


def test_a_loss_linear_in_the_predictions_leaves_only_the_network_curvature():
    # H_loss = 0, so the Gauss-Newton part vanishes and H g is the network's own curvature.
    curvature = support_curvature(_tanh_maml(loss=lambda y, p: -y * p), _episodes(tasks=3, dim=2, seed=5))
    assert np.all(curvature["hvp_norm"] > 1e-3)
    np.testing.assert_allclose(curvature["gauss_newton_norm"], 0.0, atol=1e-6)
    np.testing.assert_allclose(curvature["network_curvature_norm"], curvature["hvp_norm"], rtol=1e-5)


def test_hessian_vector_product_matches_finite_differences():
    maml, episodes = _tanh_maml(), _episodes(tasks=3, dim=2, seed=5)
    curvature = support_curvature(maml, episodes)
    weights = [np.asarray(w, np.float64) for w in maml.model.get_weights()]

    def support_gradient(values, x, y):
        for v, w in zip(maml.model.trainable_variables, values):
            v.assign(w.astype(np.float32))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(maml.model(x) - y))
        return [np.asarray(g, np.float64) for g in tape.gradient(loss, maml.model.trainable_variables)]

    eps = 1e-2
    for i in range(3):
        x, y = episodes["support"][0][i], episodes["support"][1][i]
        g = support_gradient(weights, x, y)
        plus = support_gradient([w + eps * d for w, d in zip(weights, g)], x, y)
        minus = support_gradient([w - eps * d for w, d in zip(weights, g)], x, y)
        hvp = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
        norm = np.sqrt(sum((h ** 2).sum() for h in hvp))
        assert curvature["hvp_norm"][i] == pytest.approx(norm, rel=2e-2)
        assert curvature["gHg"][i] == pytest.approx(sum((a * b).sum() for a, b in zip(g, hvp)), rel=2e-2)
    for v, w in zip(maml.model.trainable_variables, weights):
        v.assign(w.astype(np.float32))


def test_changes_nothing_and_ignores_the_maml_own_order():
    maml, episodes = _tanh_maml(), _episodes(tasks=3, dim=2, seed=5)
    maml.optimizer.build(maml.trainable_variables)
    before = [w.copy() for w in maml.model.get_weights()]
    terms = meta_gradient_terms(maml, episodes)
    for a, b in zip(before, maml.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(maml.optimizer.iterations.numpy()) == 0 and maml.first_order is True
    # The same numbers from a second-order MAML with the same weights.
    keras.utils.set_random_seed(3)
    twin = MAML(keras.models.clone_model(maml.model), inner_lr=ALPHA, first_order=False)
    twin.model.set_weights(before)
    twin.compile(optimizer="adam", loss="mse")
    again = meta_gradient_terms(twin, episodes)
    for key in ("second_order_norm", "first_order_norm", "cosine", "hvp_norm"):
        assert again[key] == pytest.approx(terms[key], rel=1e-5)
    # And the pieces are MAML.meta_gradients of either order.
    _, fo = twin.meta_gradients(episodes, first_order=True)
    _, own = maml.meta_gradients(episodes)
    for a, b in zip(fo, own):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_bad_input_says_what_to_do():
    with pytest.raises(TypeError, match="needs a maml_tf.MAML"):
        meta_gradient_terms(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]), _episodes())
    uncompiled = MAML(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]))
    with pytest.raises(RuntimeError, match="compile"):
        meta_gradient_terms(uncompiled, _episodes())
    with pytest.raises(EpisodeError, match="support"):
        meta_gradient_terms(_linear_maml(), {"support": _episodes()["support"]})
    with pytest.raises(EpisodeError, match="model expects inputs"):
        meta_gradient_terms(_linear_maml(), _episodes(dim=2))
