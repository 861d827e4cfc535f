"""2D point navigation (Section 5.3): move a point from the origin to a goal."""
import numpy as np
from tf_agents.specs import array_spec

from maml_tf.rl.envs.base import TaskEnvironment


class Navigation2D(TaskEnvironment):
    """A point that starts at (0, 0) and moves by a clipped displacement each step.

    Goal ~ U[-0.5, 0.5]^2, displacement clipped to +-0.1 per coordinate, reward
    -||position - goal|| after the move, observation the position; the episode ends
    once the point is within 0.01 of the goal in both coordinates, or at the horizon
    of 100 steps (Section 5.3; the condition of the authors' ``point_env_randgoal.py``).

    Pure NumPy and natively batched: with ``batch_size=B`` the state is [B, 2]
    and ``reset_task`` takes B tasks, so many tasks x trajectories step as one
    array operation.

    The reward is the negative distance, as in the authors' code; the paper's text says
    squared distance. By default a batch row holds one episode (20 rows per task, 40 at
    test, as the paper counts trajectories); the authors' rllab sampler filled a budget
    of ``episodes x horizon`` steps instead, so it ran more, shorter episodes once its
    policies reached the goal early: ``restart_on_termination=True`` does that.

    Args:
        batch_size: None for one point, B for B points stepped together.
        oracle: append the goal to the observation (the paper's oracle baseline).
        goal_tolerance: the episode ends once both coordinates are within this of the
            goal; None: every episode lasts the horizon.
        normalize_actions: the policy acts in [-1, 1]^2 and the displacement is
            ``max_action`` times the clipped action, as in the paper's code
            (rllab's ``normalize`` wrapper). False: the action is the
            displacement itself, clipped to +-``max_action``.
        goal_range: bounds of the uniform goal coordinates.
        max_action: the largest displacement per coordinate and step.
        restart_on_termination: a member that reaches the goal starts again from the
            origin within its row (see :class:`TaskEnvironment`).
        row_steps: steps per batch row, restarting only (see :class:`TaskEnvironment`).
    """

    horizon = 100

    def __init__(self, batch_size=None, oracle=False, goal_tolerance=0.01, normalize_actions=True,
                 goal_range=(-0.5, 0.5), max_action=0.1, restart_on_termination=False, row_steps=None):
        super().__init__(batch_size, restart_on_termination, row_steps)
        self.oracle = oracle
        self.goal_tolerance = None if goal_tolerance is None else float(goal_tolerance)
        self.normalize_actions = normalize_actions
        self.goal_range = tuple(goal_range)
        self.max_action = float(max_action)
        bound = 1.0 if normalize_actions else self.max_action
        self._action_spec = array_spec.BoundedArraySpec((2,), np.float32, -bound, bound, name="action")
        self._observation_spec = array_spec.ArraySpec((4 if oracle else 2,), np.float32, name="observation")
        self._rows = 1 if batch_size is None else batch_size
        self._goals = None
        self._position = np.zeros((self._rows, 2))

    def action_spec(self):
        return self._action_spec

    def observation_spec(self):
        return self._observation_spec

    def seed(self, seed):
        """Nothing to seed: every episode starts at the origin and moves deterministically."""

    def sample_tasks(self, n, seed):
        goals = np.random.default_rng(seed).uniform(*self.goal_range, size=(n, 2))
        return [{"goal": goal} for goal in goals]

    def authors_test_tasks(self, n):
        """maml_rl's test goals (test_maml_point.py: ``np.random.seed(1)``, then
        ``np.random.uniform(-0.5, 0.5, (40, 2))``), the first ``n``."""
        goals = np.random.RandomState(1).uniform(*self.goal_range, size=(n, 2))
        return [{"goal": goal} for goal in goals]

    def reset_task(self, task):
        super().reset_task(task)
        tasks = task if self.batched else [task]
        self._goals = np.stack([np.asarray(t["goal"], np.float64).reshape(2) for t in tasks])

    def _start(self):
        self._position = np.zeros((self._rows, 2))
        return self._observe()

    def _restart(self, members):
        self._position[members] = 0.0
        return self._observe()

    def _advance(self, action):
        action = np.asarray(action, np.float64).reshape(self._rows, 2)
        if self.normalize_actions:
            move = self.max_action * np.clip(action, -1.0, 1.0)
        else:
            move = np.clip(action, -self.max_action, self.max_action)
        self._position = self._position + move
        reward = -np.linalg.norm(self._position - self._goals, axis=-1)
        return self._observe(), reward if self.batched else reward[0]

    def _terminal(self):
        if self.goal_tolerance is None:
            return super()._terminal()
        reached = np.all(np.abs(self._position - self._goals) < self.goal_tolerance, axis=-1)
        return reached if self.batched else reached[0]

    def _observe(self):
        observation = self._position
        if self.oracle:
            observation = np.concatenate([observation, self._goals], axis=-1)
        return observation if self.batched else observation[0]
