"""The pretrained and oracle baselines of Section 5.3: one policy trained with TRPO on
all tasks jointly.

The authors' code trains such policies with rllab's plain TRPO on the randomised
environment (the task redrawn at every reset) or on its oracle version (``maml_rl``'s
example scripts ``trpo_point.py``, ``cluster_trpo_cheetah.py``); the paper does not
give the baselines' budget. Here each iteration draws fresh tasks and trajectories as MAML's pre-update
sampling does (``meta_batch_size`` tasks x ``episodes_per_task``), so a baseline
iteration samples half of a MAML iteration's environment steps.
"""
import numpy as np
import tensorflow as tf

from maml_tf.models.policy import action_distribution
from maml_tf.rl.learner import TRPOLearner, env_steps, masked_mean, mean_returns


class JointTRPO(TRPOLearner):
    """TRPO on the task distribution seen as one environment.

    Every iteration samples ``meta_batch_size`` new tasks, runs ``episodes_per_task``
    trajectories of each with the current policy, fits one linear feature baseline to
    all of them and normalises the advantages over the whole batch (as rllab's TRPO on
    one environment: neither the baseline nor the policy is told a trajectory's task),
    and takes one TRPO step. With ``env_kwargs={"oracle": True}`` the observations
    carry the task parameters: the paper's oracle. At test, fine-tune with the
    inherited :meth:`adapt` / :meth:`meta_test` (MAML's inner rule).

    Args:
        model: the policy, trained in place.
        meta_batch_size: tasks per iteration.
        max_kl: TRPO trust region (0.01).
        hvp: "exact" or "finite_difference" Hessian-vector products (see ``MAMLTRPO``).
        jit_compile: XLA for the exact products (True) or not (False).
        **kwargs: the rest of :class:`~maml_tf.rl.learner.PolicyLearner`'s arguments.
    """

    def _update(self, task_seed, sample_seed, _):
        tasks = self.sample_tasks(self.meta_batch_size, task_seed)
        samples = self.sample(tasks, sample_seed)
        observations, actions, advantages, valid = (t[0] for t in self.process(_pooled(samples)))
        old_outputs = self.model(observations)
        stats = self._trpo_step(observations, actions, advantages, valid, old_outputs)
        return {"return": float(mean_returns(samples).mean()), **stats}, env_steps(samples)

    def _surrogate_loss(self, observations, actions, advantages, valid, old_outputs):
        """``-mean(pi_theta(a|s) / pi_old(a|s) A)`` over the batch's valid steps."""
        log_ratio = (action_distribution(self.model(observations)).log_prob(actions)
                     - action_distribution(old_outputs).log_prob(actions))
        return -masked_mean(tf.exp(log_ratio) * advantages, valid)

    def _policy_outputs(self, observations, actions, advantages, valid, old_outputs):
        """The policy's outputs on the batch's states (the KL compares them with
        ``old_outputs``; ``actions`` and ``advantages`` are the surrogate's)."""
        return self.model(observations)

    def _valid_states(self, observations, actions, advantages, valid, old_outputs):
        return valid


def _pooled(samples):
    """The samples of all tasks as one task's: ``[1, tasks * rows, T, ...]``."""
    return {key: value if key == "tasks" else np.reshape(value, (1, -1) + np.shape(value)[2:])
            for key, value in samples.items()}
