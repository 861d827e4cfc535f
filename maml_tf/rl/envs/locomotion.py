"""MuJoCo locomotion task distributions (Section 5.3) on gymnasium's v5 robots.

Half-cheetah and ant, each with a goal velocity or a goal direction, horizon
200. The robots, observations and physics are gymnasium's ``HalfCheetah-v5`` /
``Ant-v5`` (MuJoCo through the ``mujoco`` package, no rendering); the reward is
the paper's, computed here (gymnasium's is ignored) from the forward velocity
v_x = (torso x after - torso x before) / dt and the clipped action a:

- cheetah-vel: -|v_x - goal| - 0.05 |a|^2, goal ~ U[0, 2]
- cheetah-dir: d v_x - 0.05 |a|^2, d = +-1 with probability 1/2
- ant-vel: -|v_x - goal| + 1.0 - 0.005 |a|^2 - 5e-4 |F|^2 + 0.05, goal ~ U[0, 3]
- ant-dir: d v_x - 0.005 |a|^2 - 5e-4 |F|^2 + 0.05

with F the external contact forces on the ant's bodies (``cfrc_ext``) clipped
to [-1, 1]. These are the terms and weights of maml_rl's rllab environments
(``half_cheetah_env_rand[_direc].py``: 0.1 * 0.5 |a|^2; ``ant_env_rand[_direc].py``:
control 0.5e-2 |a / 150|^2 on +-150 torques, contact 0.5e-3 |F|^2, +1.0 for
velocity only, survive 0.05). As rllab's ``normalize`` wrapper did there, the
policy acts in [-1, 1] and actions are clipped to it before simulation and cost.
The ant's episode ends early once its torso height leaves [0.2, 1] (rllab's ant and
gymnasium's Ant-v5 alike); the cheetah always runs the horizon.

How gymnasium's models differ from rllab's (returns will not match one to one):

- Time step. rllab's cheetah: MuJoCo step 0.01, one step per action, dt 0.01;
  gymnasium's: same 0.01 but ``frame_skip`` 5, dt 0.05. rllab's ant: RK4 step
  0.02, dt 0.02; gymnasium's: RK4 step 0.01, ``frame_skip`` 5, dt 0.05. The
  defaults here restore rllab's dt: ``frame_skip=1`` (cheetah), ``2`` (ant);
  the ant's ``physics="rllab"`` takes rllab's step itself, one of 0.02 per action
  (half the RK4 steps: benchmarks/README.md, "MAML-TRPO: one locomotion meta-iteration").
- Contacts. rllab's ant.xml softens every geom's contacts (geom default ``solref=".02 1"
  solimp=".8 .8 .01"``), gymnasium's keeps MuJoCo's defaults (``.02 1``, ``.9 .95
  .001``); ``physics="rllab"`` takes rllab's (``RLLAB_ANT``). MuJoCo >= 2 raises solref's
  time constant to 2 x the time step (its ``refsafe`` flag, on here), 0.04 at rllab's step;
  whether MuJoCo 1.31 did is not known here.
- Gear. The cheetah's gears (120, 90, 60, 120, 60, 30) and control range +-1
  are the same. rllab's ant has gear 1 and control +-150 (normalized to +-1 by
  the wrapper), gymnasium's gear 150 and control +-1: the same torque per action.
- Start pose. rllab's ant starts from its ``init_qpos`` (torso at 0.55, ankles
  at +-1 rad, inside their joint ranges), gymnasium's from the model's rest pose
  (torso at 0.75, ankles at 0, outside their ranges, so the legs snap into range
  in the first steps); ``physics="rllab"`` starts from rllab's. Reset noise: rllab
  qpos + N(0, 0.01^2), gymnasium qpos + U(-0.1, 0.1) (``reset_noise_scale``); both
  qvel + N(0, 0.1^2).
- Contact forces. rllab's MuJoCo 1.31 filled ``cfrc_ext`` on every step; MuJoCo
  >= 2 only in ``mj_rnePostConstraint``, which gymnasium v5 calls after every
  step, so the ant's contact cost is live (non-zero while a foot is down).
- Observations. gymnasium's defaults: cheetah 17 (rllab 20: also the torso
  centre of mass), ant 105 = qpos without x, y, qvel, clipped ``cfrc_ext`` of 13
  bodies (rllab 125: with x, y, the world body, torso rotation and centre of mass).
- Velocity. rllab used the torso subtree's centre-of-mass velocity; here by default
  (as in gymnasium) the torso's displacement over dt, ``velocity="com"``: rllab's.
- Following rllab: ``observation="rllab"`` (cheetah), ``velocity="com"`` and
  ``reset_noise="rllab"`` restore those three of rllab's choices (maml_rl's
  ``half_cheetah_env_rand_direc.py``, ``mujoco_env.py``; the evidence for them:
  docs/research/fig5_authors_setup.md); ``physics="rllab"`` (the ant) its ant.xml's
  time step, contacts and start pose (``vendor/mujoco_models/ant.xml``).
- Termination. The ant's episode ends when the torso height leaves [0.2, 1.0], as
  in both; rllab's sampler then started a new episode within its budget of steps
  (``restart_on_termination=True`` here), by default the rest of the row is padding.
"""
import contextlib

import numpy as np
from tf_agents.specs import array_spec

try:  # the optional ``rl`` extra (setup.py)
    import mujoco
    from gymnasium.envs.mujoco.ant_v5 import AntEnv
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
except ModuleNotFoundError as error:
    raise ImportError(f"The locomotion environments need MuJoCo and gymnasium ({str(error.name).partition('.')[0]} "
                      "is missing): pip install 'maml-tf[rl]' (in a checkout: pip install -e '.[rl]'), or make install."
                      ) from error

from maml_tf.core.arguments import one_of
from maml_tf.rl.envs.base import TaskEnvironment

# What a robot observes: gymnasium's v5 observation, or rllab's (the cheetah: also the
# whole robot's centre of mass, maml_rl's get_body_com("torso")).
OBSERVATIONS = ("gymnasium", "rllab")
# The forward velocity the reward uses: "root", the torso root's displacement over dt
# (gymnasium's), or "com", the torso subtree's centre-of-mass velocity after the step
# (rllab's get_body_comvel("torso")).
VELOCITIES = ("root", "com")
# The start state's noise: gymnasium's qpos + U(-s, s), qvel + s N(0, 1) (s its
# reset_noise_scale), or rllab's qpos + 0.01 N(0, 1), qvel + 0.1 N(0, 1).
RESET_NOISES = ("gymnasium", "rllab")
# The ant's physics: gymnasium's Ant-v5 model, or rllab's ant.xml on the same robot
# (RLLAB_ANT): one RK4 step of 0.02 per action, softer contacts, rllab's start pose.
PHYSICS = ("gymnasium", "rllab")
# maml_rl's vendor/mujoco_models/ant.xml where its physics differs from gymnasium's ant.xml
# (bodies, joints, masses and torque per action are the same): <option timestep="0.02"
# integrator="RK4"/> (gymnasium's 0.01), one step per action (no frame_skip numeric: rllab's
# mujoco_env takes 1), the geom default's solref=".02 1" solimp=".8 .8 .01" (gymnasium's
# none: MuJoCo's .02 1 and .9 .95 .001), and the custom numeric init_qpos that rllab's
# mujoco_env resets to (gymnasium's asset keeps it, unused; it starts from the rest pose).
RLLAB_ANT = dict(timestep=0.02, frame_skip=1, solref=(0.02, 1.0), solimp=(0.8, 0.8, 0.01),
                 init_qpos=(0.0, 0.0, 0.55, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0))


class Locomotion(TaskEnvironment):
    """A gymnasium MuJoCo robot rewarded for the task's forward motion, natively batched.

    One gymnasium robot supplies the model, the start state and the reset noise;
    with ``batch_size=B`` the environment keeps B ``MjData`` of that model and
    steps them with ``mujoco.mj_step`` in one loop, computing observations and
    rewards as [B, ...] arrays. Stepping gymnasium's ``env.step`` per member
    through tf-agents' ``BatchedPyEnvironment`` instead cost 10x as much per
    environment step (``benchmarks/bench_sampling.py``); the physics and the
    observations are gymnasium's, to the bit (tests/test_rl_envs.py).

    Subclasses set the robot (``robot_class``, ``default_frame_skip``), the task
    parameter (``task_key``), ``sample_tasks`` and ``_reward(x_velocity, action)``
    on [B] / [B, actions] arrays.

    Args:
        batch_size: None for one robot, B for B robots stepped together.
        oracle: append the task parameter to the observation (the paper's oracle).
        frame_skip: MuJoCo steps per action; the default gives rllab's dt.
        seed: seeds the reset noise (later resets continue the stream; ``seed()``
            restarts it). Member by member, the draws are gymnasium's
            ``reset(seed=seed)``: one robot seeded s starts where gymnasium's does.
        restart_on_termination: a member whose episode ends early (the ant) starts a
            new one within its row (see :class:`~maml_tf.rl.envs.base.TaskEnvironment`).
        row_steps: steps per batch row (default the horizon; see ``TaskEnvironment``).
        observation: one of ``OBSERVATIONS`` the robot offers (``observations``).
        velocity: one of ``VELOCITIES``, the velocity the reward uses.
        reset_noise: one of ``RESET_NOISES``.
        physics: one of ``PHYSICS`` the robot offers (``physics_models``); the ant's
            ``"rllab"`` also sets the default ``frame_skip`` (1) and the start pose.
        **robot_kwargs: passed on to the gymnasium environment, e.g.
            ``reset_noise_scale`` or ``exclude_current_positions_from_observation``.
    """

    horizon = 200
    robot_class = None
    default_frame_skip = None
    task_key = None
    uses_contact_forces = False
    observations = ("gymnasium",)
    physics_models = ("gymnasium",)

    def __init__(self, batch_size=None, oracle=False, frame_skip=None, seed=None, restart_on_termination=False,
                 row_steps=None, observation="gymnasium", velocity="root", reset_noise="gymnasium",
                 physics="gymnasium", **robot_kwargs):
        for name, value, allowed in (("observation", observation, self.observations),
                                     ("velocity", velocity, VELOCITIES), ("reset_noise", reset_noise, RESET_NOISES),
                                     ("physics", physics, self.physics_models)):
            one_of(name, value, allowed, f" for {type(self).__name__}")
        super().__init__(batch_size, restart_on_termination, row_steps)
        self.oracle = oracle
        self.observation, self.velocity, self.reset_noise, self.physics = observation, velocity, reset_noise, physics
        if frame_skip is None:
            frame_skip = RLLAB_ANT["frame_skip"] if physics == "rllab" else self.default_frame_skip
        with _quiet_mujoco_log():
            self.robot = self.robot_class(frame_skip=frame_skip, **robot_kwargs)
        if physics == "rllab":
            _use_rllab_ant_physics(self.robot)
        self.model = self.robot.model
        self._rows = 1 if batch_size is None else batch_size
        # Member 0 is the gymnasium robot's own data, so robot.set_state(...) acts on it.
        self._data = [self.robot.data] + [mujoco.MjData(self.model) for _ in range(self._rows - 1)]
        self._rng = np.random.default_rng(seed)
        self._params = None
        # Each member's forward (x) displacement in its last step: the sampler sums it over an
        # episode (x at its end minus x at its start), which the observation leaves out.
        self.displacement = np.zeros(self._rows)
        self._torso = self.model.body("torso").id
        space = self.robot.action_space
        self._action_spec = array_spec.BoundedArraySpec(
            space.shape, np.float32, space.low, space.high, name="action")
        size = self._robot_observation_size() + int(oracle)
        self._observation_spec = array_spec.ArraySpec((size,), np.float32, name="observation")

    @property
    def dt(self):
        """Seconds of simulation per step (``frame_skip`` x the MuJoCo time step)."""
        return self.robot.dt

    def action_spec(self):
        return self._action_spec

    def observation_spec(self):
        return self._observation_spec

    def seed(self, seed):
        """Restart the reset noise from ``seed`` (rollouts are then a function of it)."""
        self._rng = np.random.default_rng(seed)

    def close(self):
        self.robot.close()

    def reset_task(self, task):
        super().reset_task(task)
        tasks = task if self.batched else [task]
        self._params = np.array([t[self.task_key] for t in tasks], np.float64)

    def _start(self):
        self.displacement = np.zeros(self._rows)
        return self._restart(np.ones(self._rows, bool))

    def _restart(self, members):
        robot = self.robot
        restarting = [data for data, restart in zip(self._data, members) if restart]
        for data, (qpos_noise, qvel_noise) in zip(restarting, self.reset_noise_source(len(restarting))):
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = robot.init_qpos + qpos_noise
            data.qvel[:] = robot.init_qvel + qvel_noise
            mujoco.mj_forward(self.model, data)
        return self._observe()

    def reset_noise_source(self, count):
        """The start-state noise of ``count`` members restarting together, ``[(qpos noise, qvel
        noise), ...]`` in member order, from the seeded stream (:meth:`draw_reset_noise`). A
        sampling worker's environment replaces it with its parent's draws, so that members split
        over processes start as in one environment."""
        return self.draw_reset_noise(count)

    def draw_reset_noise(self, count):
        """``count`` members' start-state noise, drawn member by member from the seeded stream."""
        scale, nq, nv = self.robot._reset_noise_scale, self.model.nq, self.model.nv
        noise = []
        for _ in range(count):
            if self.reset_noise == "rllab":  # maml_rl's mujoco_env.reset_mujoco
                noise.append((0.01 * self._rng.standard_normal(nq), 0.1 * self._rng.standard_normal(nv)))
            else:  # gymnasium's reset_model: qpos + U(-s, s), qvel + s N(0, 1)
                noise.append((self._rng.uniform(-scale, scale, nq), scale * self._rng.standard_normal(nv)))
        return noise

    def _advance(self, action):
        spec = self._action_spec
        action = np.clip(np.asarray(action, np.float64).reshape(self._rows, -1), spec.minimum, spec.maximum)
        # qpos[0] is the torso's x in both robots (the cheetah's root slider, the ant's
        # free joint at the torso origin); body xpos would lag, being computed before
        # MuJoCo's last integration.
        x_before = np.array([data.qpos[0] for data in self._data])
        skip = self.robot.frame_skip
        after_step = self.velocity == "com" or self.observation == "rllab"
        for data, member_action in zip(self._data, action):
            data.ctrl[:] = member_action
            mujoco.mj_step(self.model, data, nstep=skip)
            if self.uses_contact_forces:  # cfrc_ext is only computed on request (MuJoCo >= 2)
                mujoco.mj_rnePostConstraint(self.model, data)
            if after_step:
                _centre_of_mass_after_step(self.model, data)
        self.displacement = np.array([data.qpos[0] for data in self._data]) - x_before
        if self.velocity == "com":
            x_velocity = self._state("subtree_linvel")[:, self._torso, 0]
        else:
            x_velocity = self.displacement / self.dt
        reward = self._reward(x_velocity, action)
        return self._observe(), reward if self.batched else reward[0]

    def _state(self, field):
        """``data.<field>`` of every member, stacked [B, ...]."""
        return np.stack([getattr(data, field) for data in self._data])

    def _observe(self):
        observation = self._robot_observation()
        if self.oracle:
            observation = np.concatenate([observation, self._params[:, None]], axis=1)
        observation = observation.astype(np.float32)
        return observation if self.batched else observation[0]

    def _robot_observation(self):
        """The robot's observation of every member (gymnasium's ``_get_obs``, or rllab's), [B, size]."""
        raise NotImplementedError

    def _robot_observation_size(self):
        return self.robot.observation_space.shape[0]

    def _reward(self, x_velocity, action):
        raise NotImplementedError


def _use_rllab_ant_physics(robot):
    """Give gymnasium's ant rllab's ant.xml physics (``RLLAB_ANT``), in place: every geom takes
    the default class (none sets solref / solimp), so this is the model compiled from the
    edited XML, to the bit (tests/test_rl_envs.py)."""
    model = robot.model
    model.opt.timestep = RLLAB_ANT["timestep"]
    model.geom_solref[:] = RLLAB_ANT["solref"]
    model.geom_solimp[:, :3] = RLLAB_ANT["solimp"]
    robot.init_qpos = np.array(RLLAB_ANT["init_qpos"])
    robot.metadata["render_fps"] = int(np.round(1.0 / robot.dt))


def _centre_of_mass_after_step(model, data):
    """Bring ``data.subtree_com`` and ``data.subtree_linvel`` to the state ``mj_step`` reached
    (it computes them before integrating): rllab called ``model.forward()`` after its steps.
    Only the position and velocity stages they need, which leave the next step unchanged."""
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_comVel(model, data)
    mujoco.mj_subtreeVel(model, data)


@contextlib.contextmanager
def _quiet_mujoco_log():
    """Silence MuJoCo's log while gymnasium compiles a model: MuJoCo 4 warns that
    half_cheetah.xml's ``settotalmass`` is deprecated, on the console and in a
    MUJOCO_LOG.TXT it would leave in the working directory, once per instance."""
    previous, quiet = mujoco.MjLogConfig.get(), mujoco.MjLogConfig.get()
    quiet.logto_console = quiet.logto_file = False
    quiet.set()
    try:
        yield
    finally:
        previous.set()


def _velocity_tasks(n, seed, high):
    return [{"velocity": float(v)} for v in np.random.default_rng(seed).uniform(0.0, high, n)]


def _direction_tasks(n, seed):
    return [{"direction": float(d)} for d in np.random.default_rng(seed).choice([-1.0, 1.0], n)]


class HalfCheetah(Locomotion):
    """gymnasium's HalfCheetah-v5 at rllab's dt 0.01; control cost 0.05 |a|^2.

    ``observation="rllab"``: maml_rl's half-cheetah observation, qpos[1:], qvel and the
    torso subtree's (the whole robot's) centre of mass (x, y, z), 20 numbers; its x is
    the robot's position, which gymnasium's observation leaves out.
    """

    robot_class = HalfCheetahEnv
    default_frame_skip = 1
    observations = OBSERVATIONS

    def _robot_observation(self):
        if self.observation == "rllab":
            return np.concatenate([self._state("qpos")[:, 1:], self._state("qvel"),
                                   self._state("subtree_com")[:, self._torso]], axis=1)
        skip = int(self.robot._exclude_current_positions_from_observation)
        return np.concatenate([self._state("qpos")[:, skip:], self._state("qvel")], axis=1)

    def _robot_observation_size(self):
        return self.model.nq - 1 + self.model.nv + 3 if self.observation == "rllab" else super()._robot_observation_size()

    def _costs(self, action):
        return 0.05 * np.sum(np.square(action), axis=-1)


class HalfCheetahVel(HalfCheetah):
    """Run at a goal velocity ~ U[0, 2]: reward -|v_x - goal| - 0.05 |a|^2."""

    task_key = "velocity"

    def sample_tasks(self, n, seed):
        return _velocity_tasks(n, seed, 2.0)

    def _reward(self, x_velocity, action):
        return -np.abs(x_velocity - self._params) - self._costs(action)


class HalfCheetahDir(HalfCheetah):
    """Run forward (d = 1) or backward (d = -1): reward d v_x - 0.05 |a|^2."""

    task_key = "direction"

    def sample_tasks(self, n, seed):
        return _direction_tasks(n, seed)

    def authors_test_tasks(self, n):
        """maml_rl's test directions (test_maml_cheetah_direc.py: ``np.random.seed(1)``,
        ``uniform(0, 2, 40)``, backward below 1, as its half_cheetah_env_rand_direc), the first ``n``."""
        draws = np.random.RandomState(1).uniform(0.0, 2.0, n)
        return [{"direction": -1.0 if u < 1.0 else 1.0} for u in draws]

    def _reward(self, x_velocity, action):
        return self._params * x_velocity - self._costs(action)


class Ant(Locomotion):
    """gymnasium's Ant-v5 at rllab's dt 0.02; costs 0.005 |a|^2 + 5e-4 |F|^2; an episode
    ends early once the ant falls or jumps out of the healthy height range.

    ``physics="rllab"``: rllab's ant.xml physics on the same robot (``RLLAB_ANT``): one RK4
    step of 0.02 per action (gymnasium's physics: two of 0.01), softer contacts, rllab's
    start pose.
    """

    robot_class = AntEnv
    default_frame_skip = 2
    physics_models = PHYSICS
    survive_bonus = 0.05
    uses_contact_forces = True

    def _contact_forces(self):
        """The external contact forces of every body, clipped as gymnasium does, [B, bodies, 6]."""
        return np.clip(self._state("cfrc_ext"), *self.robot._contact_force_range)

    def _robot_observation(self):
        robot = self.robot
        skip = 2 if robot._exclude_current_positions_from_observation else 0
        parts = [self._state("qpos")[:, skip:], self._state("qvel")]
        if robot._include_cfrc_ext_in_observation:
            parts.append(self._contact_forces()[:, 1:].reshape(self._rows, -1))  # without the world body
        return np.concatenate(parts, axis=1)

    def _terminal(self):
        """The episode ends once the torso height leaves [0.2, 1] or the state is not
        finite: rllab's ``ant_env_rand[_direc].py`` (``state[2]`` of qpos, qvel), which is
        gymnasium's unhealthy check with its defaults (``healthy_z_range``,
        ``terminate_when_unhealthy``; both respected here)."""
        robot = self.robot
        if not robot._terminate_when_unhealthy:
            return super()._terminal()
        qpos, qvel = self._state("qpos"), self._state("qvel")
        low, high = robot._healthy_z_range
        healthy = (np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
                   & (qpos[:, 2] >= low) & (qpos[:, 2] <= high))
        return ~healthy if self.batched else ~healthy[0]

    def _costs(self, action):
        contact = np.clip(self._state("cfrc_ext"), -1.0, 1.0)
        return 0.005 * np.sum(np.square(action), axis=-1) + 5e-4 * np.sum(np.square(contact), axis=(1, 2))


class AntVel(Ant):
    """Walk at a goal velocity ~ U[0, 3]: reward -|v_x - goal| + 1.0 - costs + 0.05."""

    task_key = "velocity"

    def sample_tasks(self, n, seed):
        return _velocity_tasks(n, seed, 3.0)

    def _reward(self, x_velocity, action):
        return -np.abs(x_velocity - self._params) + 1.0 - self._costs(action) + self.survive_bonus


class AntDir(Ant):
    """Walk forward (d = 1) or backward (d = -1): reward d v_x - costs + 0.05."""

    task_key = "direction"

    def sample_tasks(self, n, seed):
        return _direction_tasks(n, seed)

    def _reward(self, x_velocity, action):
        return self._params * x_velocity - self._costs(action) + self.survive_bonus
