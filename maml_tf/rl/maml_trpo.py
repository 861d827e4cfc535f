"""MAML-TRPO: meta-training a Gaussian policy (Finn et al. 2017, Algorithm 3, Section 5.3).

Per meta-iteration: sample tasks; roll out the meta-policy on each; fit the linear
feature baseline per task and take one vanilla policy-gradient step per task
(functionally, so the adapted weights theta'_i are a differentiable function of the
meta-parameters theta); roll out the adapted policies; then one TRPO step on theta
for the post-update surrogate, with theta'_i recomputed from theta inside the
loss and KL (second order unless ``first_order``).
"""
import tensorflow as tf

from maml_tf.models.policy import action_distribution
from maml_tf.rl.learner import TRPOLearner, env_steps, masked_mean, mean_returns
from maml_tf.rl.timings import timed


class MAMLTRPO(TRPOLearner):
    """Meta-trains ``model`` (a ``gaussian_mlp_policy``) on an RL task distribution.

    Args:
        model: the policy; its trainable variables are the meta-parameters.
        meta_batch_size: tasks per meta-iteration (20 for navigation, 40 for
            locomotion in the paper).
        max_kl: TRPO trust region (0.01).
        hvp: TRPO's KL Hessian-vector products: "exact" (the paper's TRPO: the Fisher
            form at the trust-region centre, differentiating through the inner step) or
            "finite_difference" (the authors' code, whose float32 differences leave
            mostly the damping: a KL-limited gradient step).
        jit_compile: compile the exact products with XLA (True) or not (False).
        **kwargs: the rest of :class:`~maml_tf.rl.learner.PolicyLearner`'s arguments
            (``env``, ``episodes_per_task``, ``inner_lr``, ``first_order``, ``gamma``,
            ``gae_lambda``, ``seed``, ``env_kwargs``, ``sampling``).
    """

    def _update(self, task_seed, pre_seed, post_seed):
        tasks = self.sample_tasks(self.meta_batch_size, task_seed)
        with timed(self.timings, "sample pre-update"):
            pre = self.sample(tasks, pre_seed)
        with timed(self.timings, "baseline and advantages"):
            pre_data = self.process(pre)
        with timed(self.timings, "inner step"):
            weights = self._meta_weights(len(tasks))
            # A tensor, as in adapt(): one trace of the compiled step for every step size.
            adapted = self._adapt_tasks(weights, *pre_data, tf.constant(self.inner_lr, weights[0].dtype))
        with timed(self.timings, "sample post-update"):
            post = self.sample(tasks, post_seed, weights=adapted)
        with timed(self.timings, "baseline and advantages"):
            post_data = self.process(post)
        with timed(self.timings, "sampling policy's outputs"):
            old_outputs = tf.stack([self.functional([w[i] for w in adapted], post_data[0][i])[0]
                                    for i in range(len(tasks))])
        with timed(self.timings, "TRPO step"):
            stats = self._trpo_step(pre_data, post_data, old_outputs)
        return ({"pre_update_return": float(mean_returns(pre).mean()),
                 "post_update_return": float(mean_returns(post).mean()), **stats},
                env_steps(pre) + env_steps(post))

    def _map_adapted(self, fn, pre_data, *task_args):
        """``fn(theta'_i, *task_args[i])`` for every task, with ``theta'_i`` recomputed
        from the current meta-parameters (differentiably) on task i's pre-update data.

        ``tf.vectorized_map`` over tasks: as fast as a loop unrolled over the tasks,
        and its graph traces about ten times faster under TRPO's third-order derivatives.
        """
        meta = [v.value for v in self.model.trainable_variables]

        def task(args):
            return fn(self.inner_step(meta, *args[0], self.inner_lr), *args[1:])

        return tf.vectorized_map(task, (pre_data,) + task_args)

    def _surrogate_loss(self, pre_data, post_data, old_outputs):
        """Mean over tasks of ``-mean(pi_theta'(a|s) / pi_old'(a|s) A)`` (post-update,
        over each task's valid steps)."""
        def task_loss(weights, observations, actions, advantages, valid, old):
            ratio = tf.exp(self._log_prob(weights, observations, actions)
                           - action_distribution(old).log_prob(actions))
            return -masked_mean(ratio * advantages, valid)

        return tf.reduce_mean(self._map_adapted(task_loss, pre_data, *post_data, old_outputs))

    def _policy_outputs(self, pre_data, post_data, old_outputs):
        """The adapted policies' outputs on their post-update states, ``[tasks, N, 2A]``
        (the KL and its Hessian compare them with ``old_outputs``)."""
        return self._map_adapted(lambda weights, observations: self.functional(weights, observations)[0],
                                 pre_data, post_data[0])

    def _valid_states(self, pre_data, post_data, old_outputs):
        """Which post-update states the KL averages over, ``[tasks, N]``."""
        return post_data[3]
