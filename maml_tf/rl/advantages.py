"""Discounted returns, generalised advantage estimation and advantage normalisation
for paths padded to the horizon (Section 5.3; as rllab's ``process_samples``).

Arrays are NumPy, ``[..., T]`` with time last (``[rows, T]`` for one task), in rows of
the horizon: ``valid`` marks the steps of complete episodes (1) and the padding after
an episode that ended early (0, reward 0); ``ends`` marks each episode's last step
(default: the row's last), so a row may hold several episodes. Like rllab we
bootstrap with a value of 0 after an episode's last step, whether it ended at the
horizon or terminated.
"""
import numpy as np


def _discount_cumsum(x, discount, ends=None):
    """``y[..., t] = sum_k discount^k x[..., t + k]`` along the last axis, the sum
    stopping at the first step ``ends`` marks."""
    out = np.zeros_like(x)
    running = np.zeros_like(x[..., 0])
    carry = np.ones_like(x) if ends is None else 1.0 - np.asarray(ends, dtype=x.dtype)
    for t in reversed(range(x.shape[-1])):
        running = x[..., t] + discount * carry[..., t] * running
        out[..., t] = running
    return out


def discounted_returns(rewards, gamma, ends=None):
    """Reward-to-go ``R_t = sum_k gamma^k r_{t+k}`` of ``[..., T]`` rewards, up to the
    end of the step's episode."""
    return _discount_cumsum(np.asarray(rewards, dtype=np.float64), gamma, ends)


def gae(rewards, values, gamma, lam, valid=None, ends=None):
    """Generalised advantage estimation (Schulman et al. 2016).

    ``A_t = sum_k (gamma lam)^k delta_{t+k}`` with ``delta_t = r_t + gamma V_{t+1} - V_t``
    and ``V = 0`` after an episode's last step; ``lam = 1`` gives ``returns - values``
    (the paper's setting). ``valid`` (default: all steps) marks the episodes' steps;
    the padding's advantages are 0.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    valid = np.ones_like(rewards) if valid is None else np.asarray(valid, dtype=np.float64)
    carry = np.ones_like(rewards) if ends is None else 1.0 - np.asarray(ends, dtype=np.float64)
    values = values * valid
    next_values = np.concatenate([values[..., 1:], np.zeros_like(values[..., :1])], axis=-1) * carry
    deltas = (rewards + gamma * next_values - values) * valid
    return _discount_cumsum(deltas, gamma * lam, ends)


def normalize(advantages, axis=None, valid=None):
    """Centre and scale to unit standard deviation over ``axis`` (``None``: all of it,
    i.e. one task's paths, as rllab's ``center_adv``; ``(1, 2)`` for
    ``[tasks, paths, T]``). With ``valid``, the statistics are over the valid steps
    and the padding is set to 0. The 1e-8 guards a constant array, as in rllab."""
    advantages = np.asarray(advantages, dtype=np.float64)
    valid = np.ones_like(advantages) if valid is None else np.asarray(valid, dtype=np.float64)
    count = valid.sum(axis=axis, keepdims=True)
    mean = (advantages * valid).sum(axis=axis, keepdims=True) / count
    std = np.sqrt((((advantages - mean) * valid) ** 2).sum(axis=axis, keepdims=True) / count)
    return (advantages - mean) / (std + 1e-8) * valid
