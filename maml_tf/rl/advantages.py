"""Discounted returns, generalised advantage estimation and advantage normalisation
for fixed-length paths (Section 5.3; as rllab's ``process_samples``).

Arrays are NumPy, ``[..., T]`` with time last (``[paths, T]`` for one task). Paths
are truncated at the horizon, not terminated, and like rllab we bootstrap with a
value of 0 after the last step.
"""
import numpy as np


def _discount_cumsum(x, discount):
    """``y[..., t] = sum_k discount^k x[..., t + k]`` along the last axis."""
    out = np.zeros_like(x)
    running = np.zeros_like(x[..., 0])
    for t in reversed(range(x.shape[-1])):
        running = x[..., t] + discount * running
        out[..., t] = running
    return out


def discounted_returns(rewards, gamma):
    """Reward-to-go ``R_t = sum_k gamma^k r_{t+k}`` of ``[..., T]`` rewards."""
    return _discount_cumsum(np.asarray(rewards, dtype=np.float64), gamma)


def gae(rewards, values, gamma, lam):
    """Generalised advantage estimation (Schulman et al. 2016).

    ``A_t = sum_k (gamma lam)^k delta_{t+k}`` with ``delta_t = r_t + gamma V_{t+1} - V_t``
    and ``V_T = 0``; ``lam = 1`` gives ``returns - values`` (the paper's setting).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.concatenate([values[..., 1:], np.zeros_like(values[..., :1])], axis=-1)
    deltas = rewards + gamma * next_values - values
    return _discount_cumsum(deltas, gamma * lam)


def normalize(advantages, axis=None):
    """Centre and scale to unit standard deviation over ``axis`` (``None``: all of it,
    i.e. one task's paths, as rllab's ``center_adv``; ``(1, 2)`` for
    ``[tasks, paths, T]``). The 1e-8 guards a constant array, as in rllab."""
    advantages = np.asarray(advantages, dtype=np.float64)
    mean = advantages.mean(axis=axis, keepdims=True)
    std = advantages.std(axis=axis, keepdims=True)
    return (advantages - mean) / (std + 1e-8)
