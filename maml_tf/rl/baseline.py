"""rllab's linear feature baseline, as the MAML authors used it (Section 5.3).

A ridge regression of the returns on ``[o, o^2, t, t^2, t^3, 1]``, with
``o = clip(obs, -10, 10)`` and ``t = step / 100`` (the step's index within its
episode); refit on every task's own paths (the caller's loop). NumPy, float64, rows of
the horizon ``[rows, T, obs_dim]``.
"""
import numpy as np


class LinearFeatureBaseline:
    """State-value estimate linear in hand-made features of observation and time.

    Args:
        reg_coeff: ridge regulariser; ``fit`` multiplies it by 10 (up to 4 times, 5
            attempts, as rllab) while the solution is not finite.
    """

    def __init__(self, reg_coeff=1e-5):
        self.reg_coeff = float(reg_coeff)
        self.coefficients = None

    @staticmethod
    def features(observations, timesteps=None):
        """``[rows, T, obs_dim]`` -> ``[rows, T, 2 obs_dim + 4]`` features; ``timesteps``
        ``[rows, T]`` (default: the index in the row) count from each episode's start."""
        o = np.clip(np.asarray(observations, dtype=np.float64), -10.0, 10.0)
        if timesteps is None:
            timesteps = np.broadcast_to(np.arange(o.shape[1]), o.shape[:2])
        t = np.asarray(timesteps, dtype=np.float64)[..., None] / 100.0
        return np.concatenate([o, o ** 2, t, t ** 2, t ** 3, np.ones_like(t)], axis=-1)

    def fit(self, observations, returns, valid=None, timesteps=None):
        """Fit to ``[rows, T]`` returns of the ``[rows, T, obs_dim]`` observations, on the
        steps ``valid`` marks (default: all; the padding after a path ended is left out)."""
        features = self.features(observations, timesteps).reshape(-1, 2 * np.shape(observations)[-1] + 4)
        targets = np.asarray(returns, dtype=np.float64).reshape(-1)
        if valid is not None:
            keep = np.asarray(valid).reshape(-1) > 0
            features, targets = features[keep], targets[keep]
        gram, moment = features.T @ features, features.T @ targets
        reg = self.reg_coeff
        for _ in range(5):
            coefficients = np.linalg.lstsq(gram + reg * np.eye(len(gram)), moment, rcond=None)[0]
            if np.all(np.isfinite(coefficients)):
                self.coefficients = coefficients
                return
            reg *= 10
        raise FloatingPointError(
            f"LinearFeatureBaseline.fit found no finite solution (regulariser up to {reg / 10:g}); "
            "check the returns and observations for NaN or Inf.")

    def predict(self, observations, timesteps=None):
        """``[rows, T]`` value estimates; zeros before the first ``fit`` (as rllab)."""
        features = self.features(observations, timesteps)
        if self.coefficients is None:
            return np.zeros(features.shape[:2])
        return features @ self.coefficients
