"""What every policy of the RL experiments shares (Section 5.3): batched rollouts on a
task distribution, advantages with the linear feature baseline, the paper's inner
rule (vanilla policy-gradient steps, alpha 0.1 then 0.05), the meta-test after 0..k
steps, and a checkpoint of the weights with the training counters.

:class:`PolicyLearner` untrained is the paper's "random initialisation" baseline;
:class:`~maml_tf.rl.maml_trpo.MAMLTRPO` and :class:`~maml_tf.rl.joint_trpo.JointTRPO`
(pretrained, oracle) add a training step. All of them are fine-tuned at test by the
same :meth:`PolicyLearner.adapt`.
"""
import os
import time

import numpy as np
import tensorflow as tf

from maml_tf.core.arguments import one_of
from maml_tf.core.functional import FunctionalModel
from maml_tf.experiments.checkpoints import CheckpointMismatch, Checkpoints  # noqa: F401 (CheckpointMismatch: re-exported)
from maml_tf.models.policy import action_distribution
from maml_tf.rl import envs
from maml_tf.rl.advantages import discounted_returns, gae, normalize
from maml_tf.rl.baseline import LinearFeatureBaseline
from maml_tf.rl.blas import one_blas_thread
from maml_tf.rl.envs.processes import ProcessBatchedEnvironment
from maml_tf.rl.sampler import Sampler, stack_weights
from maml_tf.rl.timings import timed
from maml_tf.rl.trpo import finite_difference_hessian_vector_product, kl_hessian_vector_product, trpo_step

# How TRPO's conjugate gradient gets KL Hessian-vector products: "exact" (the paper's
# TRPO: the Fisher form at the trust-region centre, where it equals the KL's Hessian), or
# "finite_difference" (the authors' code: rllab's FiniteDifferenceHvp in float32).
HVP_METHODS = ("exact", "finite_difference")
# What a task's batch holds: "episodes", a fixed number of episodes (the paper's count of
# trajectories); "steps", a budget of episodes x horizon steps that episodes ending
# early leave to new ones, the one a row's end cuts short dropped (the authors' code:
# rllab's sampler); or "complete", the same budget with every episode started within it
# run to its end (the authors' test: rllab's whole paths, averaged with none dropped); or
# "stream", the authors' training sampler (rllab's VectorizedSampler, one environment per
# task): each task one stream of episodes back to back, all tasks stepping together until
# their complete episodes hold tasks x episodes x horizon steps, each task's unfinished
# last episode dropped.
SAMPLING = ("episodes", "steps", "complete", "stream")


class PolicyLearner:
    """A Gaussian policy on an RL task distribution, adapted per task by policy gradient.

    Args:
        model: the policy (``gaussian_mlp_policy``); its trainable variables are the
            parameters that training updates and adaptation starts from.
        env: a name from ``maml_tf.rl.envs.ENVIRONMENTS``; ``env_kwargs`` go to ``make``
            (e.g. ``{"oracle": True}``: the task parameters appended to the observation).
        episodes_per_task: trajectories per task in training (20 in the paper); with
            ``sampling="steps"`` or ``"stream"`` a budget of ``episodes_per_task x horizon`` steps.
        inner_lr: step size alpha of the inner policy-gradient step in training (0.1);
            :meth:`adapt` takes it first, then half of it, unless told other step sizes.
        first_order: treat the inner gradient as a constant where it is differentiated.
        gamma, gae_lambda: discount (0.99) and GAE lambda (1: returns minus baseline).
        seed: tasks and action noise of training iteration k are a function of (seed, k).
        sampling: one of ``SAMPLING``: in training and at test (unless told another),
            "steps", "complete" and "stream" restart an episode that ends early (the
            navigation goal reached, the ant fallen) in the same batch row, so a task gets
            more, shorter episodes.
        sampling_workers: processes that step the environments' physics in parallel
            (:class:`~maml_tf.rl.envs.processes.ProcessBatchedEnvironment`; the same
            trajectories for any number); 1 steps them in this process.

    Training counters, saved by :meth:`checkpoint`: ``iteration``, ``env_steps``
    (environment steps of the complete episodes training sampled, see :func:`env_steps`)
    and ``seconds`` (spent in training iterations, summed over resumed runs).
    ``timings``: None, or a :class:`~maml_tf.rl.timings.Timings` that training adds the
    seconds of its phases to (benchmarks/bench_rl_iteration.py).
    """

    def __init__(self, model, env="navigation", episodes_per_task=20, inner_lr=0.1, first_order=False,
                 gamma=0.99, gae_lambda=1.0, seed=0, env_kwargs=None, sampling="episodes", sampling_workers=1):
        _check_sampling(sampling)
        if not isinstance(sampling_workers, (int, np.integer)) or isinstance(sampling_workers, bool) \
                or sampling_workers < 1:
            raise ValueError(f"sampling_workers must be a positive integer (processes stepping the environments), "
                             f"got {sampling_workers!r}.")
        self.sampling_workers = int(sampling_workers)
        self.model = model
        self.functional = FunctionalModel(model)
        self.env_name = env
        self.env_kwargs = dict(env_kwargs or {})
        self.episodes_per_task = int(episodes_per_task)
        self.inner_lr = float(inner_lr)
        self.first_order = bool(first_order)
        self.gamma = float(gamma)
        self.gae_lambda = float(gae_lambda)
        self.seed = int(seed)
        self.sampling = sampling
        self.iteration = 0
        self.env_steps = 0
        self.seconds = 0.0
        self.timings = None
        with self._make_env() as probe:
            _check_policy(model, probe, env, self.env_kwargs)
            self.horizon = probe.horizon
        self._samplers = {}
        self._checkpoint_stores = {}
        # Batches of whole episodes (sampling="complete") differ in length from one call to the
        # next: traced once with an unknown length instead of once per length.
        self._adapt_tasks = tf.function(self._adapt_stacked, reduce_retracing=True)

    # ------------------------------------------------------------------ training
    def train_iteration(self):
        """One update of the parameters; returns a dict of diagnostics (Python numbers)
        with ``iteration`` (after the update) and ``seconds`` (of this iteration)."""
        start = time.time()
        seeds = np.random.SeedSequence([self.seed, self.iteration]).generate_state(3)
        stats, env_steps = self._update(*(int(s) for s in seeds))
        seconds = time.time() - start
        self.iteration += 1
        self.env_steps += int(env_steps)
        self.seconds += seconds
        return {"iteration": self.iteration, **stats, "seconds": seconds}

    def train(self, iterations, callback=None):
        """Run ``iterations`` updates; ``callback(diagnostics)`` after each."""
        history = []
        for _ in range(int(iterations)):
            history.append(self.train_iteration())
            if callback is not None:
                callback(history[-1])
        return history

    def _update(self, task_seed, first_seed, second_seed):
        """One update from three seeds; returns ``(diagnostics, environment steps sampled)``."""
        raise NotImplementedError(f"{type(self).__name__} has no training step (the random-"
                                  "initialisation baseline is only fine-tuned).")

    # ------------------------------------------------------------------ tasks and rollouts
    def sample_tasks(self, n, seed):
        """``n`` tasks of the environment's distribution, deterministic in ``seed``."""
        with self._make_env() as env:
            return env.sample_tasks(n, seed)

    def sample(self, tasks, seed, weights=None, episodes_per_task=None, sampling=None):
        """Trajectories of every task (see :meth:`Sampler.sample`): ``weights`` stacked
        ``[tasks, *shape]``, or None for the current parameters on every task;
        ``sampling``: one of ``SAMPLING``, None for the learner's."""
        episodes = episodes_per_task or self.episodes_per_task
        return self._sampler(len(tasks), episodes, sampling or self.sampling).sample(tasks, seed, weights=weights)

    def process(self, samples):
        """Per-task baseline fit and normalised GAE advantages (rllab's ``center_adv``).

        Returns ``(observations, actions, advantages, valid)`` tensors flattened per task
        to ``[tasks, episodes * T, ...]`` in the policy's dtype; ``valid`` is 0 on the
        padding after an episode ended early, which every loss and KL leaves out.
        """
        dtype = self.model.trainable_variables[0].dtype
        advantages = []
        with one_blas_thread():  # small matrices: OpenBLAS's threads only wait on shared cores
            for obs, rewards, valid, ends, timesteps in zip(*(samples[key] for key in (
                    "observations", "rewards", "valid", "ends", "timesteps"))):
                baseline = LinearFeatureBaseline()
                baseline.fit(obs, discounted_returns(rewards, self.gamma, ends), valid, timesteps)
                adv = gae(rewards, baseline.predict(obs, timesteps), self.gamma, self.gae_lambda, valid, ends)
                advantages.append(normalize(adv, valid=valid))
        tasks = len(advantages)
        flatten = lambda x: tf.constant(np.reshape(x, (tasks, -1) + np.shape(x)[3:]), dtype)  # noqa: E731
        return (flatten(samples["observations"]), flatten(samples["actions"]),
                flatten(np.stack(advantages)), flatten(samples["valid"]))

    # ------------------------------------------------------------------ adaptation and meta-test
    def adapt(self, tasks, steps, step_sizes=None, episodes_per_task=None, seed=0, start=None, sampling=None):
        """Adapt to each task by ``steps`` policy-gradient steps from the current parameters
        (or from ``start``: weights stacked ``[tasks, *shape]``, e.g. adapted to other tasks).

        Step ``k`` uses ``step_sizes[k]`` (the last one repeated); None: ``inner_lr``, then
        half of it (the paper's alpha 0.1, then 0.05); ``sampling``: how the steps' trajectories
        are sampled (``SAMPLING``; None: as in training). Returns ``(weights, returns)``: the
        adapted weights stacked ``[tasks, *shape]`` and the mean return per task of the
        trajectories each step was computed from, ``[tasks, steps]``.
        """
        weights, returns = self._adapt(tasks, steps, step_sizes, episodes_per_task, seed, start, sampling,
                                       mean_returns)
        return weights, np.stack(returns, axis=1) if returns else np.zeros((len(tasks), 0))

    def _adapt(self, tasks, steps, step_sizes, episodes_per_task, seed, start, sampling, summarize):
        """:meth:`adapt`, returning ``[summarize(samples) for each step's samples]``."""
        if step_sizes is None:
            step_sizes = (self.inner_lr, self.inner_lr / 2)
        elif len(step_sizes) == 0:
            raise ValueError("step_sizes is empty: give at least the first step's size (the last one "
                             "is repeated), or None for inner_lr, then half of it.")
        weights = self._meta_weights(len(tasks)) if start is None else self._stacked(start, len(tasks))
        seeds = np.random.SeedSequence([self.seed, seed, 1]).generate_state(max(int(steps), 1))
        summaries = []
        for k in range(int(steps)):
            samples = self.sample(tasks, int(seeds[k]), weights, episodes_per_task, sampling)
            summaries.append(summarize(samples))
            # A tensor, so that the compiled step is traced once for every step size.
            lr = tf.constant(step_sizes[min(k, len(step_sizes) - 1)], weights[0].dtype)
            weights = self._adapt_tasks(weights, *self.process(samples), lr)
        return weights, summaries

    def meta_test(self, tasks, steps=3, episodes_per_task=20, step_sizes=None, seed=0, sampling=None,
                  with_movement=False):
        """Mean return per task after 0, 1, .., ``steps`` adaptation steps of ``step_sizes``
        (see :meth:`adapt`; ``sampling`` too): ``[tasks, steps + 1]``.

        ``with_movement``: also return the robot's movement in the same episodes,
        ``{"displacement", "distance", "forward"}`` each ``[tasks, steps + 1]`` (see
        :func:`movement`), or None for an environment without a position (navigation)."""
        summarize = (lambda samples: (mean_returns(samples), movement(samples))) if with_movement else mean_returns
        weights, summaries = self._adapt(tasks, steps, step_sizes, episodes_per_task, seed, None, sampling,
                                         summarize)
        final_seed = np.random.SeedSequence([self.seed, seed, 2]).generate_state(1)[0]
        summaries.append(summarize(self.sample(tasks, int(final_seed), weights, episodes_per_task, sampling)))
        if not with_movement:
            return np.stack(summaries, axis=1)
        returns, moves = zip(*summaries)
        moved = None if moves[0] is None else {k: np.stack([m[k] for m in moves], axis=1) for k in moves[0]}
        return np.stack(returns, axis=1), moved

    def inner_loss(self, weights, observations, actions, advantages, valid):
        """Vanilla policy gradient (REINFORCE) loss ``-mean(log pi(a|s) A)`` over the
        ``valid`` steps."""
        return -masked_mean(self._log_prob(weights, observations, actions) * advantages, valid)

    def inner_step(self, weights, observations, actions, advantages, valid, lr):
        """One task's adapted weights ``theta - lr grad``, differentiable in ``weights``."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(weights)
            loss = self.inner_loss(weights, observations, actions, advantages, valid)
        grads = tape.gradient(loss, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        if self.first_order:
            grads = [tf.stop_gradient(g) for g in grads]
        return [w - lr * g for w, g in zip(weights, grads)]

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, directory, last=False):
        """Save the parameters and the training counters as a ``tf.train`` checkpoint in
        ``directory`` (see :class:`~maml_tf.experiments.checkpoints.Checkpoints`: an
        interruption leaves the checkpoints before intact); ``last``: keep only this one."""
        self._checkpoints(directory).save(self.iteration, env_steps=self.env_steps, seconds=self.seconds,
                                          last=last)

    def restore(self, directory):
        """Load the latest checkpoint in ``directory`` (the same policy architecture, else
        ``CheckpointMismatch``); a directory without one leaves the learner as it is."""
        checkpoints = self._checkpoints(directory)
        if checkpoints.saved():
            self.iteration = checkpoints.restore()
            self.env_steps = int(checkpoints.env_steps.numpy())
            self.seconds = float(checkpoints.seconds.numpy())

    def _checkpoints(self, directory):
        directory = os.fspath(directory)
        if directory not in self._checkpoint_stores:
            self._checkpoint_stores[directory] = Checkpoints(directory, model=self.model)
        return self._checkpoint_stores[directory]

    # ------------------------------------------------------------------ internals
    def _make_env(self, **kwargs):
        return envs.make(self.env_name, **self.env_kwargs, **kwargs)

    def _sampler(self, num_tasks, episodes, sampling):
        _check_sampling(sampling)
        if sampling == "stream":  # one member per task, its row the budget of steps per task
            budget = episodes * self.horizon
            members, key = num_tasks, (num_tasks, episodes, sampling)
            rows = {"row_steps": budget + self.horizon}  # the stream stops within budget + horizon - 1 steps
        else:
            budget, members, key = None, num_tasks * episodes, (num_tasks * episodes, sampling)
            rows = {"row_steps": 2 * self.horizon} if sampling == "complete" else {}
        if key in self._samplers and getattr(self._samplers[key].env, "closed", False):
            del self._samplers[key]  # its workers were stopped by an error or Ctrl-C: start new ones
        if key not in self._samplers:
            options = dict(self.env_kwargs, restart_on_termination=sampling != "episodes", **rows)
            if self.sampling_workers > 1:
                env = ProcessBatchedEnvironment(self.env_name, members, min(self.sampling_workers, members), **options)
            else:
                env = envs.make(self.env_name, batch_size=members, **options)
            self._samplers[key] = Sampler(env, self.model, stream_steps=budget)
        return self._samplers[key]

    def close(self):
        """Close the samplers' environments (and stop their worker processes, if any)."""
        for sampler in self._samplers.values():
            sampler.env.close()
        self._samplers.clear()

    def _meta_weights(self, num_tasks):
        return stack_weights([v.value for v in self.model.trainable_variables], num_tasks)

    def _stacked(self, weights, num_tasks):
        """``weights`` checked to be one ``[tasks, *shape]`` tensor per policy variable."""
        variables, weights = self.model.trainable_variables, list(weights)
        if len(weights) == len(variables):
            weights = [tf.convert_to_tensor(w, v.dtype) for v, w in zip(variables, weights)]
        if len(weights) != len(variables) or any(
                tuple(w.shape) != (num_tasks, *v.shape) for v, w in zip(variables, weights)):
            raise ValueError(f"start must hold {len(variables)} tensors shaped [tasks={num_tasks}, *variable "
                             "shape] (as adapt returns them); got "
                             f"{[tuple(w.shape) for w in weights]}.")
        return weights

    def _log_prob(self, weights, observations, actions):
        return action_distribution(self.functional(weights, observations)[0]).log_prob(actions)

    def _adapt_stacked(self, weights, observations, actions, advantages, valid, lr):
        """Per-task inner steps from weights stacked ``[tasks, *shape]``."""
        return tf.vectorized_map(lambda args: self.inner_step(*args, lr),
                                 (weights, observations, actions, advantages, valid))


class TRPOLearner(PolicyLearner):
    """A :class:`PolicyLearner` trained by TRPO steps (max KL ``max_kl``) on
    ``meta_batch_size`` tasks per iteration.

    Subclasses define ``_surrogate_loss(*data)``, ``_policy_outputs(*data)`` (the
    policy's outputs on the batch's states, a function of the current parameters) and
    ``_valid_states(*data)`` (1 for those states, 0 for padding) over the same
    arguments, the last of which is the sampling policy's outputs on those states. The
    mean KL from the sampling policy and its Hessian-vector product follow, all three
    compiled ``tf.function`` s: ``hvp="exact"`` takes the Fisher form ``J^T M J`` at the
    trust-region centre (:func:`~maml_tf.rl.trpo.kl_hessian_vector_product`, the KL's
    Hessian there), ``hvp="finite_difference"`` the authors' code's float32 differences
    of the KL gradient (:func:`~maml_tf.rl.trpo.finite_difference_hessian_vector_product`).

    ``jit_compile``: compile the exact product with XLA (default; somewhat faster at the
    locomotion batch, benchmarks/README.md), False for TensorFlow's graph alone. XLA compiles
    once per batch shape, about as long as tracing takes: the training batch keeps its shape
    unless ``sampling="complete"``.
    """

    # How the exact product takes J v (maml_tf.rl.trpo.JVP_MODES); "forward" is the product
    # before XLA (benchmarks compare it), refused under XLA.
    _jvp = "reverse"
    # The TRPO step's curvature (maml_tf.rl.trpo.CURVATURES) with exact products: from conjugate
    # gradient's residual, which saves a product (equal to rounding); finite differences (mostly
    # rounding themselves) keep rllab's extra product.
    _curvature = "residual"

    def __init__(self, model, env="navigation", meta_batch_size=20, max_kl=0.01, hvp="exact", jit_compile=True,
                 **kwargs):
        super().__init__(model, env, **kwargs)
        one_of("hvp", hvp, HVP_METHODS)
        if not isinstance(jit_compile, bool):
            raise ValueError(f"jit_compile must be True (XLA for the KL Hessian-vector products) or False, "
                             f"got {jit_compile!r}.")
        self.meta_batch_size = int(meta_batch_size)
        self.max_kl = float(max_kl)
        self.hvp = hvp
        self.jit_compile = jit_compile
        self._surrogate = tf.function(self._surrogate_loss)
        self._kl = tf.function(self._mean_kl)
        self._hvp = tf.function(self._kl_hessian_vector_product, jit_compile=jit_compile)
        self._kl_gradient = tf.function(self._mean_kl_gradient)

    def _trpo_step(self, *data):
        """One TRPO step of the policy on ``data``; the step's diagnostics."""
        if self.hvp == "exact":
            hvp_fn = lambda vector: self._hvp(vector, *data)  # noqa: E731
        else:
            hvp_fn = lambda vector: finite_difference_hessian_vector_product(  # noqa: E731
                lambda: self._kl_gradient(*data), self.model.trainable_variables, vector)
        def timed_hvp(vector):
            with timed(self.timings, "KL Hessian-vector products"):
                return hvp_fn(vector)

        stats = trpo_step(lambda: self._surrogate(*data), lambda: self._kl(*data),
                          self.model.trainable_variables, max_kl=self.max_kl,
                          hvp_fn=hvp_fn if self.timings is None else timed_hvp, timings=self.timings,
                          curvature=self._curvature if self.hvp == "exact" else "product")
        return {key: stats[key] for key in ("loss_before", "loss_after", "kl", "accepted", "backtracks")}

    def _mean_kl_gradient(self, *data):
        """The gradient of :meth:`_mean_kl` in the policy's variables (for ``hvp="finite_difference"``)."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            kl = self._mean_kl(*data)
        return tape.gradient(kl, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    def _mean_kl(self, *data):
        """Mean over the batch's valid states of ``KL(pi_old(.|s) || pi_theta(.|s))``."""
        return _mean_kl_from(data[-1], self._policy_outputs(*data), self._valid_states(*data))

    def _kl_hessian_vector_product(self, vector, *data):
        """TRPO's damped KL Hessian-vector product, compiled whole (``hvp_fn`` of ``trpo_step``)."""
        valid = self._valid_states(*data)
        return kl_hessian_vector_product(lambda: self._policy_outputs(*data),
                                         lambda outputs: _mean_kl_from(data[-1], outputs, valid),
                                         self.model.trainable_variables, vector, jvp=self._jvp)


def _check_sampling(sampling):
    one_of("sampling", sampling, SAMPLING)


def _check_policy(model, env, env_name, env_kwargs):
    """Raise ValueError unless ``model`` maps ``env``'s observations to a mean and a log-std
    per action dimension (else the sampler or MuJoCo would fail deep inside)."""
    observation_dim, action_dim = env.observation_spec().shape[0], env.action_spec().shape[0]
    inputs, outputs = model.input_shape[-1], model.output_shape[-1]
    if (inputs, outputs) == (observation_dim, 2 * action_dim):
        return
    oracle = (" (the oracle's observations hold the task too: env_kwargs={'oracle': True})"
              if inputs > observation_dim and not env_kwargs.get("oracle") else "")
    raise ValueError(
        f"The policy maps {inputs} inputs to {outputs} outputs; environment {env_name!r}"
        f"{f' with {env_kwargs}' if env_kwargs else ''} needs {observation_dim} (its observation) to "
        f"{2 * action_dim} (a mean and a log-std per action dimension){oracle}. Build the policy with "
        f"gaussian_mlp_policy({observation_dim}, {action_dim}), or the learner with "
        "maml_tf.experiments.rl.build(preset, method).")


def masked_mean(values, valid):
    """Mean of ``values`` over the entries where ``valid`` is 1 (as rllab, which
    concatenates the paths' own steps)."""
    return tf.reduce_sum(values * valid) / tf.reduce_sum(valid)


def _mean_kl_from(old_outputs, outputs, valid):
    """Mean KL over all valid states of the batch, pooled across tasks (as rllab's MAML-TRPO)."""
    kl = action_distribution(old_outputs).kl_divergence(action_distribution(outputs))
    return masked_mean(kl, valid)


def mean_returns(samples):
    """Undiscounted return per task, averaged over its complete episodes: ``[tasks]``."""
    total = (samples["rewards"] * samples["valid"]).sum(axis=(1, 2))
    return total / samples["ends"].sum(axis=(1, 2))


def episode_totals(values, valid, ends):
    """The sum of ``values`` ``[tasks, rows, T]`` over each complete episode (``valid``,
    ``ends`` as the sampler gives them; a row may hold several): per task, an array of its
    episodes' totals in row order."""
    tasks, rows, steps = values.shape
    episode = np.cumsum(ends, axis=-1) - ends  # the step's episode number within its row
    ids = (np.arange(rows)[:, None] * steps + episode).astype(int)  # [tasks, rows, T], unique per task
    totals = []
    for task_values, task_ids, task_valid, task_ends in zip(values, ids, valid > 0, ends > 0):
        sums = np.bincount(task_ids[task_valid], weights=task_values[task_valid], minlength=rows * steps)
        totals.append(sums[task_ids[task_ends]])
    return totals


def movement(samples):
    """Per task, over its complete episodes, the robot's signed forward displacement (x at
    the episode's end minus x at its start): the mean ``displacement``, the mean
    ``distance`` (its absolute value) and the fraction moving ``forward`` (displacement > 0),
    ``[tasks]`` each; None for samples without ``displacements`` (navigation)."""
    if "displacements" not in samples:
        return None
    totals = episode_totals(samples["displacements"], samples["valid"], samples["ends"])
    return {"displacement": np.array([t.mean() for t in totals]),
            "distance": np.array([np.abs(t).mean() for t in totals]),
            "forward": np.array([(t > 0).mean() for t in totals])}


def env_steps(samples):
    """Environment steps in a batch of samples: those of complete episodes (neither the
    padding after an episode ended nor the unfinished episode a row may end with)."""
    return int(np.sum(samples["valid"]))
