"""The task interface every MAML-RL environment offers the sampler.

A task is a dict of the parameters that set the reward (a goal position, a goal
velocity, a direction). ``sample_tasks`` draws them, ``reset_task`` sets them
for the following episodes, and episodes last at most ``horizon`` steps.
"""
import numpy as np

from maml_tf.rl import tf_agents_missing

try:
    from tf_agents.environments import py_environment
    from tf_agents.trajectories import time_step as ts
except ModuleNotFoundError as error:
    raise tf_agents_missing(error) from error


class TaskEnvironment(py_environment.PyEnvironment):
    """A tf-agents ``PyEnvironment`` whose reward depends on a task.

    Every trajectory of a batch has the same length: step ``horizon`` after a reset
    is ``LAST`` and no step before it is. ``LAST`` at the horizon is a truncation
    (discount 1): the horizon is a time limit, not a terminal state. Stepping after
    ``LAST`` starts a new episode (tf-agents' auto-reset).

    An episode that ends before the horizon (the navigation goal reached,
    ``_terminal()``) reports discount 0 from its terminating step on; the steps after
    it are padding (reward 0, observation frozen) until the batch reaches the horizon.
    ``discount`` is thus 1 exactly while the member's episode is still running, and
    the sampler masks the padding with it.

    With ``restart_on_termination=True`` a member whose episode terminates starts a
    new one at once instead (``_restart``): discount 0 marks only the terminating
    step, whose observation is already the new episode's first. A member's row of
    ``horizon`` steps then holds one or more episodes, as rllab's sampler filled a
    budget of steps with episodes (the authors' code).

    ``row_steps`` (restarting only) makes a row longer than the horizon: an episode then
    also ends once it has run ``horizon`` steps of its own (a time limit, discount 0 at
    its last step like a termination) and the next one starts. The sampler's "complete"
    rows use this to finish every episode started within a budget of ``horizon`` steps
    (the authors' test sampler: whole episodes, none cut short), its "stream" rows to
    hold a task's whole budget of steps (the authors' training sampler).

    Every environment is natively batched: with ``batch_size=B`` it steps B
    members as one call and returns [B, ...] arrays (tf-agents' batched
    convention), so a driver runs all trajectories of a meta-batch at once.

    Subclasses set ``horizon`` and define the specs, ``sample_tasks``, ``seed``,
    ``_start()`` -> observation and ``_advance(action)`` -> (observation, reward), and
    optionally ``_terminal()`` -> which members' episodes end at the current state and
    ``_restart(members)`` -> observation after starting those members afresh.
    """

    horizon = None

    def __init__(self, batch_size=None, restart_on_termination=False, row_steps=None):
        super().__init__(handle_auto_reset=True)
        self._batch_size = batch_size
        self.restart_on_termination = bool(restart_on_termination)
        self.row_steps = self.horizon if row_steps is None else int(row_steps)
        if self.row_steps < self.horizon or (self.row_steps > self.horizon and not self.restart_on_termination):
            raise ValueError(f"row_steps must be at least the horizon ({self.horizon}), and more only with "
                             f"restart_on_termination=True; got {row_steps!r}.")
        self._task = None
        self._steps = 0

    @property
    def batched(self):
        return self._batch_size is not None

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def task(self):
        """The current task (a sequence of ``batch_size`` tasks when batched)."""
        return self._task

    def sample_tasks(self, n, seed):
        """``n`` task dicts from the paper's distribution, deterministic in ``seed``."""
        raise NotImplementedError

    def authors_test_tasks(self, n):
        """The first ``n`` test tasks of the authors' test script (maml_rl), where it fixes them."""
        raise NotImplementedError(f"{type(self).__name__} has no test tasks of the authors' here "
                                  "(navigation and cheetah-dir have).")

    def reset_task(self, task):
        """Set the task of the episodes from the next ``reset()`` on.

        A batched environment takes a sequence of ``batch_size`` tasks, one per
        member (repeat a task to run several trajectories of it).
        """
        if self.batched and len(task) != self._batch_size:
            raise ValueError(f"Expected {self._batch_size} tasks (one per batch member), got {len(task)}.")
        self._task = task

    def _reset(self):
        if self._task is None:
            raise RuntimeError(f"{type(self).__name__} has no task: call reset_task(task) first, "
                               "with a task from sample_tasks(n, seed).")
        self._steps = 0
        self._ended = np.zeros(self._shape, bool)
        self._episode_steps = np.zeros(self._shape, int)
        self._observation = np.asarray(self._start(), np.float32)
        return self._time_step(ts.StepType.FIRST, 0.0)

    def _step(self, action):
        observation, reward = self._advance(action)
        self._steps += 1
        if self.restart_on_termination:
            self._episode_steps = self._episode_steps + 1
            self._ended = np.asarray(self._terminal(), bool)  # at this step only
            if self._steps < self.row_steps:  # an episode's own time limit (the row's end ends them all)
                self._ended = self._ended | (self._episode_steps >= self.horizon)
            self._episode_steps = np.where(self._ended, 0, self._episode_steps)
            if self._ended.any():
                observation = self._restart(np.atleast_1d(self._ended))
            self._observation = np.asarray(observation, np.float32)
        else:
            running = ~self._ended
            # Padding after the episode ended: no reward, the last observation repeated.
            reward = np.where(running, reward, 0.0)
            observation = np.asarray(observation, np.float32)
            self._observation = np.where(running[..., None], observation, self._observation)
            self._ended = self._ended | np.asarray(self._terminal(), bool)
        step_type = ts.StepType.LAST if self._steps >= self.row_steps else ts.StepType.MID
        return self._time_step(step_type, reward)

    @property
    def _shape(self):
        return () if self._batch_size is None else (self._batch_size,)

    def _time_step(self, step_type, reward):
        return ts.TimeStep(
            step_type=np.full(self._shape, step_type, np.int32),
            reward=np.broadcast_to(np.asarray(reward, np.float32), self._shape).copy(),
            discount=(~self._ended).astype(np.float32),
            observation=self._observation.copy())

    def _start(self):
        raise NotImplementedError

    def _advance(self, action):
        raise NotImplementedError

    def _terminal(self):
        """Which members' episodes end at the current state (after ``_advance``):
        a bool per member; never, by default."""
        return np.zeros(self._shape, bool)

    def _restart(self, members):
        """Start new episodes for the ``members`` (a bool per member) at the current step;
        the observation of every member afterwards."""
        raise NotImplementedError(f"{type(self).__name__} cannot restart single members' episodes.")
