"""The linear feature baseline, discounted returns, GAE and advantage normalisation
(MAML-RL, Section 5.3)."""
import numpy as np
import pytest

from maml_tf.rl.advantages import discounted_returns, gae, normalize
from maml_tf.rl.baseline import LinearFeatureBaseline


# ----------------------------------------------------------------------------- baseline
def test_features_match_the_formula_on_a_hand_made_path():
    obs = np.array([[[1.0, -2.0], [12.0, 0.5], [-11.0, 3.0]]])  # clipped to +-10
    expected = np.array([[
        # o          o^2          t     t^2     t^3       1
        [1.0, -2.0, 1.0, 4.0, 0.00, 0.0000, 0.000000, 1.0],
        [10.0, 0.5, 100.0, 0.25, 0.01, 0.0001, 0.000001, 1.0],
        [-10.0, 3.0, 100.0, 9.0, 0.02, 0.0004, 0.000008, 1.0],
    ]])
    np.testing.assert_allclose(LinearFeatureBaseline.features(obs), expected, rtol=1e-12, atol=1e-15)


def test_fits_returns_linear_in_the_features_exactly(rng):
    # Ant's horizon, 10 paths: enough rows that the 1e-5 ridge bias is below 1e-6.
    obs = rng.uniform(-5, 5, size=(10, 200, 2))
    coefficients = rng.normal(size=8)
    returns = LinearFeatureBaseline.features(obs) @ coefficients
    baseline = LinearFeatureBaseline()
    baseline.fit(obs, returns)
    assert baseline.predict(obs).shape == (10, 200)
    np.testing.assert_allclose(baseline.predict(obs), returns, atol=1e-6)


def test_fit_leaves_out_the_padding(rng):
    """Padding steps (after a path ended) with arbitrary returns do not move the fit."""
    obs = rng.uniform(-5, 5, size=(10, 200, 2))
    returns = LinearFeatureBaseline.features(obs) @ rng.normal(size=8)
    valid = np.ones((10, 200))
    valid[:, 150:] = 0.0
    garbage = np.where(valid > 0, returns, 1e3 * rng.normal(size=returns.shape))
    baseline = LinearFeatureBaseline()
    baseline.fit(obs, garbage, valid)
    np.testing.assert_allclose(baseline.predict(obs), returns, atol=1e-5)  # the padding would move it by ~1


def test_predicts_zero_before_fitting():
    np.testing.assert_array_equal(LinearFeatureBaseline().predict(np.ones((2, 5, 3))), np.zeros((2, 5)))


def test_singular_problem_gives_finite_coefficients():
    """Constant-zero observations make the o and o^2 columns zero: the ridge keeps the
    normal equations solvable and those coefficients at 0."""
    obs = np.zeros((10, 200, 2))
    returns = np.tile(1.0 - np.arange(200) / 50.0, (10, 1))
    baseline = LinearFeatureBaseline()
    baseline.fit(obs, returns)
    assert np.all(np.isfinite(baseline.coefficients))
    np.testing.assert_array_equal(baseline.coefficients[:4], 0.0)
    np.testing.assert_allclose(baseline.predict(obs), returns, atol=1e-6)


def test_regulariser_escalates_tenfold_until_the_solution_is_finite(rng, monkeypatch):
    obs = rng.uniform(-1, 1, size=(2, 30, 1))
    returns = rng.normal(size=(2, 30))
    real_lstsq, calls = np.linalg.lstsq, []

    def lstsq_failing_twice(a, b, rcond=None):
        calls.append(a)
        solution = real_lstsq(a, b, rcond=rcond)
        return (np.full_like(solution[0], np.nan),) + solution[1:] if len(calls) <= 2 else solution

    monkeypatch.setattr(np.linalg, "lstsq", lstsq_failing_twice)
    baseline = LinearFeatureBaseline(reg_coeff=1e-5)
    baseline.fit(obs, returns)
    features = LinearFeatureBaseline.features(obs).reshape(-1, 6)
    gram = features.T @ features
    assert len(calls) == 3
    for a, reg in zip(calls, (1e-5, 1e-4, 1e-3)):
        np.testing.assert_allclose(a - gram, reg * np.eye(6), atol=1e-12)
    expected = np.linalg.solve(gram + 1e-3 * np.eye(6), features.T @ returns.reshape(-1))
    np.testing.assert_allclose(baseline.coefficients, expected, rtol=1e-8)


def test_non_finite_returns_raise():
    with pytest.raises(FloatingPointError, match="no finite solution"):
        LinearFeatureBaseline().fit(np.zeros((1, 4, 1)), np.array([[0.0, np.nan, 1.0, 2.0]]))


# ----------------------------------------------------------------------------- returns
GAMMA = 0.9
REWARDS = np.array([[1.0, 0.0, 2.0],
                    [0.5, -1.0, 1.0]])
VALUES = np.array([[2.0, 1.0, 1.5],
                   [0.0, 0.5, 1.0]])
# R_t = r_t + 0.9 R_{t+1}, R_3 = 0, by hand:
RETURNS = np.array([[1.0 + 0.9 * 1.8, 0.0 + 0.9 * 2.0, 2.0],   # [2.62, 1.8, 2.0]
                    [0.5 + 0.9 * -0.1, -1.0 + 0.9 * 1.0, 1.0]])  # [0.41, -0.1, 1.0]


def test_discounted_returns_by_hand():
    np.testing.assert_allclose(discounted_returns(REWARDS, GAMMA), RETURNS, rtol=1e-12)


def test_gae_with_lambda_one_is_returns_minus_values():
    np.testing.assert_allclose(gae(REWARDS, VALUES, GAMMA, 1.0), RETURNS - VALUES, rtol=1e-12)


def test_gae_by_hand():
    lam = 0.95
    # delta_t = r_t + 0.9 V_{t+1} - V_t with V_3 = 0
    deltas = np.array([[1.0 + 0.9 * 1.0 - 2.0, 0.0 + 0.9 * 1.5 - 1.0, 2.0 - 1.5],   # [-0.1, 0.35, 0.5]
                       [0.5 + 0.9 * 0.5 - 0.0, -1.0 + 0.9 * 1.0 - 0.5, 1.0 - 1.0]])  # [0.95, -0.6, 0.0]
    k = GAMMA * lam  # 0.855
    expected = np.stack([deltas[:, 0] + k * deltas[:, 1] + k ** 2 * deltas[:, 2],
                         deltas[:, 1] + k * deltas[:, 2],
                         deltas[:, 2]], axis=1)
    np.testing.assert_allclose(expected, [[-0.1 + 0.29925 + 0.36551250, 0.35 + 0.4275, 0.5],
                                          [0.95 - 0.513, -0.6, 0.0]], rtol=1e-12)
    np.testing.assert_allclose(gae(REWARDS, VALUES, GAMMA, lam), expected, rtol=1e-12)


def test_normalize_gives_mean_zero_std_one(rng):
    advantages = rng.normal(3.0, 5.0, size=(4, 7))
    out = normalize(advantages)
    assert abs(out.mean()) < 1e-12
    assert abs(out.std() - 1.0) < 1e-6
    per_task = normalize(rng.normal(3.0, 5.0, size=(2, 4, 7)), axis=(1, 2))
    np.testing.assert_allclose(per_task.mean(axis=(1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(per_task.std(axis=(1, 2)), 1.0, rtol=1e-6)


def test_padding_after_a_terminated_path_is_left_out():
    """A path that ended at step 2 of 3: its advantages and their normalisation equal
    those of the path cut there (value 0 after the end), the padding's are 0."""
    rewards = np.array([[1.0, 0.5, 0.0], [0.2, -1.0, 0.7]])
    values = np.array([[0.3, 0.8, 5.0], [0.1, 0.4, -0.2]])  # 5.0: a prediction on padding
    valid = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    for lam in (1.0, 0.95):
        padded = gae(rewards, values, GAMMA, lam, valid)
        np.testing.assert_allclose(padded[0, :2], gae(rewards[:1, :2], values[:1, :2], GAMMA, lam)[0], rtol=1e-12)
        np.testing.assert_allclose(padded[1], gae(rewards[1:], values[1:], GAMMA, lam)[0], rtol=1e-12)
        assert padded[0, 2] == 0.0
    advantages = np.array([[1.0, -2.0, 99.0], [0.5, 3.0, -1.0]])
    out = normalize(advantages, valid=valid)
    np.testing.assert_allclose(out[valid > 0], normalize(advantages[valid > 0]), rtol=1e-12)
    assert out[0, 2] == 0.0


def test_a_row_of_several_episodes_is_processed_as_the_episodes_apart():
    """rllab's step-budget sampler restarts an episode that ends early within the row:
    returns, advantages (lambda 1 and 0.95) and the baseline's time features of a row
    holding episodes of 2 and 3 steps equal those of the two episodes on their own."""
    rewards = np.array([[1.0, -0.5, 0.3, 2.0, -1.0]])
    values = np.array([[0.4, 0.1, -0.2, 0.9, 0.5]])
    ends = np.array([[0.0, 1.0, 0.0, 0.0, 1.0]])
    first, second = slice(0, 2), slice(2, 5)
    np.testing.assert_allclose(discounted_returns(rewards, GAMMA, ends),
                               np.concatenate([discounted_returns(rewards[:, first], GAMMA),
                                               discounted_returns(rewards[:, second], GAMMA)], axis=1),
                               rtol=1e-12)
    for lam in (1.0, 0.95):
        apart = [gae(rewards[:, part], values[:, part], GAMMA, lam) for part in (first, second)]
        np.testing.assert_allclose(gae(rewards, values, GAMMA, lam, ends=ends), np.concatenate(apart, axis=1),
                                   rtol=1e-12)
    observations = np.arange(10.0).reshape(1, 5, 2) / 10
    features = LinearFeatureBaseline.features(observations, timesteps=np.array([[0, 1, 0, 1, 2]]))
    np.testing.assert_allclose(features, np.concatenate(
        [LinearFeatureBaseline.features(observations[:, part]) for part in (first, second)], axis=1))
