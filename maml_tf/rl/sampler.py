"""Batched trajectory sampling with per-task policy weights (Section 5.3).

All trajectories of a meta-batch are collected at once: one batched tf-agents
environment of ``tasks * episodes_per_task`` members (member ``i`` runs task
``i // episodes_per_task``), stepped by a ``PyDriver`` for one horizon. The
policy is evaluated once per time step for every member, each task with its own
weights (after MAML's inner step the policies differ by task): the weights are
stacked on a leading task axis and ``FunctionalModel`` runs under
``tf.vectorized_map`` over that axis inside one ``tf.function``.
"""
import numpy as np
import tensorflow as tf

from maml_tf.core.functional import FunctionalModel
from maml_tf.models.policy import action_distribution
from maml_tf.rl import tf_agents_missing

try:
    from tf_agents.drivers import py_driver
    from tf_agents.policies import py_policy
    from tf_agents.trajectories import policy_step
except ModuleNotFoundError as error:
    raise tf_agents_missing(error) from error


def stack_weights(weights, num_tasks):
    """One weight list shared by all tasks -> the same list stacked on a task axis."""
    return [tf.repeat(tf.convert_to_tensor(w)[None], num_tasks, axis=0) for w in weights]


class PerTaskGaussianPolicy(py_policy.PyPolicy):
    """A tf-agents ``PyPolicy`` sampling ``a ~ pi_{theta_task}(.|s)`` for a batch of members.

    ``set_weights`` takes the weights stacked ``[tasks, *shape]`` (model variable
    order) and a seed; members are grouped task-major, ``episodes`` per task. The
    noise is stateless (seed, step counter), so a rollout is a function of the seed.
    """

    def __init__(self, model, time_step_spec, action_spec):
        super().__init__(time_step_spec, action_spec)
        self.functional = FunctionalModel(model)
        self._weights = None
        self._seed = 0
        self._counter = 0
        self._act = tf.function(self._sample, reduce_retracing=True)

    def set_weights(self, stacked_weights, seed):
        self._weights = [tf.convert_to_tensor(w) for w in stacked_weights]
        self._seed = int(seed)
        self._counter = 0

    def _sample(self, weights, observations, seed):
        tasks = tf.shape(weights[0])[0]
        per_task = tf.reshape(observations, tf.concat([[tasks, -1], tf.shape(observations)[1:]], 0))
        outputs = tf.vectorized_map(lambda args: self.functional(args[0], args[1])[0],
                                    (weights, per_task))
        outputs = tf.reshape(outputs, [tf.shape(observations)[0], -1])
        distribution = action_distribution(outputs)
        mean, std = distribution.mean(), distribution.stddev()
        return mean + std * tf.random.stateless_normal(tf.shape(mean), seed, dtype=mean.dtype)

    def _action(self, time_step, policy_state):
        observations = tf.convert_to_tensor(time_step.observation, self._weights[0].dtype)
        seed = tf.constant([self._seed, self._counter], tf.int64)
        self._counter += 1
        actions = self._act(self._weights, observations, seed).numpy()
        return policy_step.PolicyStep(actions.astype(self.action_spec.dtype), policy_state, ())


class Sampler:
    """Collects trajectories of many tasks with per-task weights, in rows of the horizon.

    Args:
        env: a batched :class:`~maml_tf.rl.envs.TaskEnvironment` of
            ``tasks * episodes_per_task`` members. Restarting with rows longer than the
            horizon (``row_steps``): every episode that starts within the first
            ``horizon`` steps of a row runs to its end (done, or ``horizon`` steps of its
            own), and the row stops once all have (the authors' test sampler, rllab's
            whole paths until a budget of steps: none cut short, none dropped).
        model: the policy (``gaussian_mlp_policy``), run functionally.
        stream_steps: None, or the authors' training sampler (rllab's ``VectorizedSampler``,
            one environment per task): ``env`` has one restarting member per task, its row
            one stream of episodes (each ending at done or after ``horizon`` steps of its
            own; ``row_steps`` at least ``stream_steps + horizon``); all step together
            until the complete episodes of all tasks hold ``tasks * stream_steps`` steps,
            and each task's unfinished last episode is dropped.
    """

    def __init__(self, env, model, stream_steps=None):
        if not env.batched:
            raise ValueError("Sampler needs a batched environment, e.g. make(name, batch_size=B).")
        self.env = env
        self.model = model
        self.horizon = env.horizon
        self.stream_steps = None if stream_steps is None else int(stream_steps)
        if self.stream_steps is not None and (self.stream_steps < 1 or not env.restart_on_termination
                                              or env.row_steps < self.stream_steps + self.horizon):
            raise ValueError(f"stream_steps={stream_steps!r} needs a positive budget and an environment restarting "
                             f"on termination with row_steps >= stream_steps + horizon ({self.horizon}); got "
                             f"restart_on_termination={env.restart_on_termination}, row_steps={env.row_steps}.")
        self.complete = self.stream_steps is None and env.restart_on_termination and env.row_steps > env.horizon
        self.policy = PerTaskGaussianPolicy(model, env.time_step_spec(), env.action_spec())
        self._steps, self._displacements = [], []
        observers = [self._steps.append]
        if hasattr(env, "displacement"):  # a robot: its x displacement per step (not observed)
            observers.append(lambda _: self._displacements.append(np.array(env.displacement, np.float64)))
        self.driver = py_driver.PyDriver(env, self.policy, observers=observers,
                                         max_steps=(self.stream_steps or self.horizon) * env.batch_size)
        self._one_step = py_driver.PyDriver(env, self.policy, observers=observers, max_steps=env.batch_size)

    def sample(self, tasks, seed, weights=None):
        """Run ``episodes_per_task = batch_size / len(tasks)`` trajectories per task.

        ``weights``: ``[tasks, *shape]`` per-task weights in model variable order, or
        None for the model's current weights on every task.

        Returns a dict of NumPy arrays ``[tasks, rows, T, ...]``: ``observations``
        (the state each action was taken in), ``actions`` (the unclipped Gaussian
        samples), ``rewards``, ``valid`` (1 for the steps of complete episodes, 0 for
        the padding after an episode ended before the horizon: rewards there are 0),
        ``ends`` (1 at the last step of each complete episode), ``timesteps`` (a step's
        index within its episode); ``final_observations`` ``[tasks, rows, ...]``, the
        state after each row's last action (a new episode's first if that action ended
        one and the environment restarts); and ``tasks``. A row is one episode, or, with
        an environment that restarts on termination, as many as end within the horizon
        (the steps of the one the horizon cuts short are not valid, as rllab's sampler
        discarded unfinished paths), or, with rows longer than the horizon, the episodes
        that start within it, each complete (T is then the row length ``row_steps``, the
        steps after all of them ended not valid: reward 0, the last observation repeated),
        or, with ``stream_steps``, one row per task holding its stream (T is ``row_steps``:
        the complete episodes valid, the unfinished last one and the padding not).
        A robot's environment (one with ``displacement``) adds ``displacements``, its forward
        (x) displacement in each step, which the policy does not observe (see :func:`maml_tf.rl.learner.movement`).
        """
        num_tasks = len(tasks)
        members = self.env.batch_size
        if members % num_tasks:
            raise ValueError(f"{members} environment members do not split into {num_tasks} tasks.")
        episodes = members // num_tasks
        if weights is None:
            weights = stack_weights([v.value for v in self.model.trainable_variables], num_tasks)
        self.env.reset_task([task for task in tasks for _ in range(episodes)])
        self.env.seed(seed)  # the start states' noise, like the actions', follows the seed
        self.policy.set_weights(weights, seed)
        self._steps.clear()
        self._displacements.clear()
        final, _ = self.driver.run(self.env.reset())
        if self.complete:  # run on until every episode started within the budget has ended
            while (len(self._steps) < self.env.row_steps
                   and _running_since(np.stack([s.discount for s in self._steps], axis=1)).min() < self.horizon):
                final, _ = self._one_step.run(final)
        if self.stream_steps:  # rllab's loop: on until the complete episodes hold the whole budget
            completed = _completed_steps(np.stack([s.discount for s in self._steps], axis=1))
            while completed.sum() < members * self.stream_steps:  # ends within stream_steps + horizon - 1
                final, _ = self._one_step.run(final)
                completed = np.where(self._steps[-1].discount == 0, len(self._steps), completed)

        def per_task(values):  # [B, ...] -> [tasks, rows, ...]
            return values.reshape((num_tasks, episodes) + values.shape[1:])

        def gather(field):
            return per_task(np.stack([getattr(step, field) for step in self._steps], axis=1))  # [B, T, ...]

        if self.complete:
            episode = _complete_episodes(gather("discount"), self.horizon)
        else:
            episode = (_restarting_episodes if self.env.restart_on_termination else _padded_episodes)(
                gather("discount"))
        samples = {"observations": gather("observation"), "actions": gather("action"),
                   "rewards": gather("reward"), **episode}
        if self._displacements:
            samples["displacements"] = per_task(np.stack(self._displacements, axis=1))
        if self.complete or self.stream_steps:  # one shape for every call (compiled functions are traced once)
            samples = {k: _pad_steps(v, self.env.row_steps, edge=k == "observations") for k, v in samples.items()}
        return {**samples, "final_observations": per_task(final.observation), "tasks": list(tasks)}


def _padded_episodes(discounts):
    """``valid``, ``ends``, ``timesteps`` of rows holding one episode each, whose discount
    is 0 from its terminating step on."""
    # A step is part of the episode if the episode was still running before it.
    valid = np.concatenate([np.ones_like(discounts[..., :1]), discounts[..., :-1]], axis=-1)
    horizon = np.arange(discounts.shape[-1])
    ends = valid * ((discounts == 0) | (horizon == horizon[-1]))
    return {"valid": valid, "ends": ends.astype(valid.dtype),
            "timesteps": np.broadcast_to(horizon, discounts.shape).astype(valid.dtype)}


def _restarting_episodes(discounts):
    """``valid``, ``ends``, ``timesteps`` of rows whose episodes restart on termination
    (discount 0 at each terminating step only)."""
    terminal = discounts == 0
    steps = np.arange(discounts.shape[-1])
    # A row without termination is one episode of the horizon; otherwise the steps after
    # its last termination belong to an unfinished episode.
    last = np.where(terminal.any(axis=-1), steps[-1] - np.argmax(terminal[..., ::-1], axis=-1), steps[-1])
    valid = steps <= last[..., None]
    ends = terminal | ((steps == steps[-1]) & ~terminal.any(axis=-1, keepdims=True))
    starts = np.concatenate([np.ones_like(terminal[..., :1]), terminal[..., :-1]], axis=-1)
    timesteps = steps - np.maximum.accumulate(np.where(starts, steps, 0), axis=-1)
    dtype = discounts.dtype
    return {"valid": valid.astype(dtype), "ends": ends.astype(dtype), "timesteps": timesteps.astype(dtype)}


def _episode_starts(discounts):
    """The step index each step's episode started at (discount 0 ends an episode; the
    next step starts one)."""
    terminal = discounts == 0
    steps = np.arange(discounts.shape[-1])
    starts = np.concatenate([np.ones_like(terminal[..., :1]), terminal[..., :-1]], axis=-1)
    return np.maximum.accumulate(np.where(starts, steps, 0), axis=-1)


def _running_since(discounts):
    """The step each member's running episode (the one its next step belongs to) started at, [B]."""
    return np.where(discounts[:, -1] == 0, discounts.shape[-1], _episode_starts(discounts)[:, -1])


def _completed_steps(discounts):
    """Each member's steps up to the end of its last complete episode (discount 0), [B]."""
    terminal = discounts == 0
    return np.where(terminal.any(axis=-1), discounts.shape[-1] - np.argmax(terminal[:, ::-1], axis=-1), 0)


def _pad_steps(values, length, edge=False):
    """``values`` [tasks, rows, T, ...] padded on the step axis to ``length``: with zeros, or
    (``edge``) the last step repeated."""
    widths = [(0, 0), (0, 0), (0, length - values.shape[2])] + [(0, 0)] * (values.ndim - 3)
    return np.pad(values, widths, mode="edge" if edge else "constant")


def _complete_episodes(discounts, budget):
    """``valid``, ``ends``, ``timesteps`` of restarting rows run until every episode that
    started before step ``budget`` ended: those episodes, whole; the later ones are not valid."""
    started = _episode_starts(discounts)
    steps = np.arange(discounts.shape[-1])
    valid = started < budget
    ends = valid & ((discounts == 0) | (steps == steps[-1]))
    dtype = discounts.dtype
    return {"valid": valid.astype(dtype), "ends": ends.astype(dtype), "timesteps": (steps - started).astype(dtype)}
