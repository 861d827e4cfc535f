"""The MAML-RL environments: rewards, task distributions, horizons, specs, batching."""
import importlib
import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest
from tf_agents.drivers import py_driver
from tf_agents.environments import utils
from tf_agents.policies import random_py_policy
from tf_agents.trajectories import time_step as ts

from maml_tf.rl.envs import ENVIRONMENTS, AntDir, AntVel, HalfCheetahDir, HalfCheetahVel, Navigation2D, make

MUJOCO = ["cheetah-vel", "cheetah-dir", "ant-vel", "ant-dir"]


def with_task(env, index=0, seed=0):
    tasks = env.sample_tasks(max(index + 1, env.batch_size or 1), seed)
    env.reset_task(tasks[index] if not env.batched else tasks[:env.batch_size])
    return env


def step_types(env, steps):
    types = [int(env.reset().step_type)]
    action = np.zeros(env.action_spec().shape, np.float32)
    types += [int(env.step(action).step_type) for _ in range(steps)]
    return np.array(types)


# ----------------------------------------------------------------------------- navigation
def test_navigation_reward_is_minus_distance_after_clipped_move():
    env = Navigation2D(normalize_actions=False)
    goal = np.array([0.3, -0.2])
    env.reset_task({"goal": goal})
    np.testing.assert_array_equal(env.reset().observation, [0.0, 0.0])
    position = np.zeros(2)
    for action in ([0.05, 0.5], [-2.0, 0.07], [0.1, -0.1]):
        position += np.clip(action, -0.1, 0.1)
        step = env.step(np.array(action, np.float32))
        np.testing.assert_allclose(step.observation, position, atol=1e-7)
        np.testing.assert_allclose(step.reward, -np.linalg.norm(position - goal), rtol=1e-6)
    np.testing.assert_allclose(position, [0.05, 0.07], atol=1e-6)


def test_navigation_normalized_actions_scale_by_max_action():
    env = Navigation2D()  # the paper's code: policy acts in [-1, 1], move = 0.1 * clip(a)
    assert (env.action_spec().minimum, env.action_spec().maximum) == (-1.0, 1.0)
    env.reset_task({"goal": np.array([0.0, 0.0])})
    env.reset()
    step = env.step(np.array([0.5, -3.0], np.float32))
    np.testing.assert_allclose(step.observation, [0.05, -0.1], atol=1e-7)
    np.testing.assert_allclose(step.reward, -np.hypot(0.05, 0.1), rtol=1e-6)


def test_navigation_tasks_in_range_and_deterministic():
    env = Navigation2D()
    goals = np.stack([t["goal"] for t in env.sample_tasks(2000, seed=3)])
    assert goals.shape == (2000, 2)
    assert goals.min() >= -0.5 and goals.max() <= 0.5 and goals.min() < -0.45 and goals.max() > 0.45
    again = np.stack([t["goal"] for t in env.sample_tasks(2000, seed=3)])
    other = np.stack([t["goal"] for t in env.sample_tasks(2000, seed=4)])
    np.testing.assert_array_equal(goals, again)
    assert not np.allclose(goals, other)


def test_batched_navigation_equals_independent_envs(rng):
    tasks = Navigation2D().sample_tasks(3, seed=0)
    batched = Navigation2D(batch_size=3, oracle=True)
    batched.reset_task(tasks)
    singles = [Navigation2D(oracle=True) for _ in tasks]
    for env, task in zip(singles, tasks):
        env.reset_task(task)
    first = batched.reset()
    firsts = [env.reset() for env in singles]
    np.testing.assert_array_equal(first.observation, np.stack([f.observation for f in firsts]))
    for _ in range(Navigation2D.horizon + 5):  # crosses the auto-reset after LAST
        actions = rng.normal(scale=1.5, size=(3, 2)).astype(np.float32)
        step = batched.step(actions)
        steps = [env.step(a) for env, a in zip(singles, actions)]
        for field in ("step_type", "reward", "discount", "observation"):
            np.testing.assert_array_equal(getattr(step, field), np.stack([getattr(s, field) for s in steps]))


def test_navigation_episode_ends_within_the_tolerance_of_the_goal():
    """Section 5.3: the episode terminates once the point is within 0.01 of the goal (in
    both coordinates, as the authors' code); the rest of the horizon is padding."""
    env = Navigation2D(batch_size=2, normalize_actions=False)
    env.reset_task([{"goal": np.array([0.2, -0.1])}, {"goal": np.array([0.5, 0.5])}])
    env.reset()
    toward_first_goal = np.array([[0.1, -0.05], [0.1, -0.05]], np.float32)
    first, second = env.step(toward_first_goal), env.step(toward_first_goal)
    np.testing.assert_array_equal(first.discount, [1.0, 1.0])
    np.testing.assert_array_equal(second.discount, [0.0, 1.0])  # member 0 reached (0.2, -0.1)
    np.testing.assert_allclose(second.reward[0], 0.0, atol=1e-7)  # -distance at the goal
    frozen = second.observation[0].copy()
    for t in range(3, Navigation2D.horizon + 1):
        step = env.step(np.array([[0.1, 0.1], [0.0, 0.0]], np.float32))
        np.testing.assert_array_equal(step.discount, [0.0, 1.0])
        assert step.reward[0] == 0.0 and step.reward[1] < 0.0
        np.testing.assert_array_equal(step.observation[0], frozen)
        expected_type = ts.StepType.LAST if t == Navigation2D.horizon else ts.StepType.MID
        np.testing.assert_array_equal(step.step_type, [expected_type] * 2)
    np.testing.assert_array_equal(env.step(toward_first_goal).discount, [1.0, 1.0])  # a new episode


@pytest.mark.parametrize("offset, ends", [(0.0099, True), (0.0101, False)])
def test_navigation_tolerance_is_per_coordinate(offset, ends):
    env = Navigation2D(normalize_actions=False)
    env.reset_task({"goal": np.array([0.05 + offset, 0.05 - offset])})  # diagonal distance > 0.01
    env.reset()
    assert env.step(np.array([0.05, 0.05], np.float32)).discount == (0.0 if ends else 1.0)


def test_navigation_without_tolerance_never_ends():
    env = Navigation2D(goal_tolerance=None, normalize_actions=False)
    env.reset_task({"goal": np.array([0.05, 0.05])})
    env.reset()
    assert all(env.step(np.array([0.05, 0.05]) if t == 0 else np.zeros(2, np.float32)).discount == 1.0
               for t in range(Navigation2D.horizon))


def test_navigation_oracle_observation_appends_goal():
    env = Navigation2D(oracle=True)
    assert env.observation_spec().shape == (4,)
    goal = np.array([-0.4, 0.25])
    env.reset_task({"goal": goal})
    np.testing.assert_allclose(env.reset().observation, [0, 0, -0.4, 0.25], atol=1e-7)
    np.testing.assert_allclose(env.step(np.ones(2, np.float32)).observation[2:], goal, atol=1e-7)


def test_navigation_specs():
    env = Navigation2D(normalize_actions=False)
    action, observation = env.action_spec(), env.observation_spec()
    assert action.shape == (2,) and action.dtype == np.float32
    np.testing.assert_allclose([action.minimum, action.maximum], [-0.1, 0.1], rtol=1e-6)
    assert observation.shape == (2,) and observation.dtype == np.float32
    assert env.horizon == 100 and not env.batched
    batched = Navigation2D(batch_size=5)
    assert batched.batched and batched.batch_size == 5
    assert batched.observation_spec().shape == (2,)  # specs exclude the batch axis


def test_task_errors():
    with pytest.raises(RuntimeError, match="reset_task"):
        Navigation2D().reset()
    with pytest.raises(ValueError, match="3 tasks"):
        Navigation2D(batch_size=3).reset_task(Navigation2D().sample_tasks(2, 0))
    with pytest.raises(ValueError, match="^env must be one of navigation, cheetah-vel, cheetah-dir, ant-vel, ant-dir, "
                                         "got 'cheetah'\\.$"):
        make("cheetah")


def _without(monkeypatch, *packages):
    """Make ``packages`` unimportable and maml_tf.rl's environments and sampler import
    afresh; monkeypatch puts everything back."""
    import maml_tf.rl
    monkeypatch.setattr(maml_tf.rl, "envs", maml_tf.rl.envs)  # a fresh import rebinds it
    for name in list(sys.modules):
        if name.split(".")[0] in packages or name.startswith(("maml_tf.rl.envs", "maml_tf.rl.sampler")):
            monkeypatch.delitem(sys.modules, name)
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)


def test_navigation_needs_neither_mujoco_nor_gymnasium(monkeypatch):
    """They are the optional ``rl`` extra: only a locomotion environment imports them."""
    _without(monkeypatch, "mujoco", "gymnasium")
    fresh = importlib.import_module("maml_tf.rl.envs")
    assert type(fresh.make("navigation")).__name__ == "Navigation2D"
    with pytest.raises(ImportError, match=r"\(mujoco is missing\): pip install 'maml-tf\[rl\]'.*make install"):
        fresh.make("cheetah-vel")
    with pytest.raises(ImportError, match="mujoco is missing"):
        fresh.AntDir


def test_missing_tf_agents_says_how_to_install_it(monkeypatch):
    _without(monkeypatch, "tf_agents")
    for module in ("maml_tf.rl.envs", "maml_tf.rl.sampler"):
        with pytest.raises(ImportError, match=r"tf-agents \(tf_agents is missing\).*make install, or pip "
                                              r"install --no-deps -r requirements/nodeps.txt"):
            importlib.import_module(module)



# ----------------------------------------------------------------------------- MuJoCo
def test_cheetah_velocity_reward_matches_formula(rng):
    env = with_task(HalfCheetahVel(seed=0))
    goal = env.task["velocity"]
    env.reset()
    assert env.dt == pytest.approx(0.01)
    for _ in range(20):
        action = rng.uniform(-1.5, 1.5, 6).astype(np.float32)  # partly out of range: clipped
        x_before = env.robot.data.qpos[0]
        reward = env.step(action).reward
        v = (env.robot.data.qpos[0] - x_before) / 0.01
        expected = -abs(v - goal) - 0.05 * np.sum(np.clip(action, -1, 1) ** 2)
        assert reward == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_cheetah_velocity_from_hand_set_state():
    env = HalfCheetahDir(seed=0)
    env.reset_task({"direction": -1.0})
    env.reset()
    qpos, qvel = env.robot.data.qpos.copy(), np.zeros(env.robot.model.nv)
    qvel[0] = 1.5  # sliding forward at 1.5 m/s; friction changes that by < 0.1 in 0.01 s
    env.robot.set_state(qpos, qvel)
    reward = env.step(np.zeros(6, np.float32)).reward
    assert reward == pytest.approx(-1.5, abs=0.1)


def test_cheetah_direction_reward_matches_formula(rng):
    env = HalfCheetahDir(seed=1)
    for direction in (-1.0, 1.0):
        env.reset_task({"direction": direction})
        env.reset()
        for _ in range(10):
            action = rng.uniform(-1, 1, 6).astype(np.float32)
            x_before = env.robot.data.qpos[0]
            reward = env.step(action).reward
            v = (env.robot.data.qpos[0] - x_before) / env.dt
            assert reward == pytest.approx(direction * v - 0.05 * np.sum(action ** 2), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("cls", [AntVel, AntDir])
def test_ant_reward_matches_formula_including_contact_cost(cls, rng):
    env = with_task(cls(seed=0), index=1)
    param = env.task[env.task_key]
    env.reset()
    assert env.dt == pytest.approx(0.02)
    contact_steps = 0
    for _ in range(60):
        action = rng.uniform(-1.2, 1.2, 8).astype(np.float32)
        x_before = env.robot.data.qpos[0]
        reward = env.step(action).reward
        v = (env.robot.data.qpos[0] - x_before) / 0.02
        contact = 5e-4 * np.sum(np.clip(env.robot.data.cfrc_ext, -1, 1) ** 2)
        contact_steps += contact > 0
        costs = 0.005 * np.sum(np.clip(action, -1, 1) ** 2) + contact
        forward = -abs(v - param) + 1.0 if cls is AntVel else param * v
        assert reward == pytest.approx(forward - costs + 0.05, rel=1e-5, abs=1e-5)
    assert contact_steps > 0  # the contact term was exercised


def test_frame_skip_sets_dt():
    assert HalfCheetahVel().dt == pytest.approx(0.01)
    assert HalfCheetahVel(frame_skip=5).dt == pytest.approx(0.05)  # gymnasium's default
    assert AntVel().dt == pytest.approx(0.02)
    assert AntVel(frame_skip=5).dt == pytest.approx(0.05)


@pytest.mark.parametrize("name, key, high", [("cheetah-vel", "velocity", 2.0), ("ant-vel", "velocity", 3.0)])
def test_velocity_tasks_in_range_and_deterministic(name, key, high):
    env = make(name)
    values = np.array([t[key] for t in env.sample_tasks(1000, seed=5)])
    assert values.min() >= 0.0 and values.max() <= high
    assert values.min() < 0.05 * high and values.max() > 0.95 * high
    np.testing.assert_array_equal(values, [t[key] for t in env.sample_tasks(1000, seed=5)])
    assert not np.array_equal(values, [t[key] for t in env.sample_tasks(1000, seed=6)])


@pytest.mark.parametrize("name", ["cheetah-dir", "ant-dir"])
def test_direction_tasks_are_plus_minus_one(name):
    env = make(name)
    values = np.array([t["direction"] for t in env.sample_tasks(200, seed=0)])
    assert set(values) == {-1.0, 1.0}
    assert 60 < np.sum(values > 0) < 140
    np.testing.assert_array_equal(values, [t["direction"] for t in env.sample_tasks(200, seed=0)])


@pytest.mark.parametrize("name, action_dim, obs_dim", [
    ("cheetah-vel", 6, 17), ("cheetah-dir", 6, 17), ("ant-vel", 8, 105), ("ant-dir", 8, 105)])
def test_mujoco_specs_and_oracle(name, action_dim, obs_dim):
    env = with_task(make(name, seed=0))
    action, observation = env.action_spec(), env.observation_spec()
    assert action.shape == (action_dim,) and action.dtype == np.float32
    np.testing.assert_array_equal(action.minimum, -1.0)
    np.testing.assert_array_equal(action.maximum, 1.0)
    assert observation.shape == (obs_dim,) and observation.dtype == np.float32
    assert env.reset().observation.dtype == np.float32
    oracle = with_task(make(name, oracle=True, seed=0), index=2)
    assert oracle.observation_spec().shape == (obs_dim + 1,)
    value = oracle.task[oracle.task_key]
    assert oracle.reset().observation[-1] == np.float32(value)
    assert oracle.step(np.zeros(action_dim, np.float32)).observation[-1] == np.float32(value)


# ----------------------------------------------------------------------------- episodes
@pytest.mark.parametrize("name", ["navigation"] + MUJOCO)
def test_episodes_last_exactly_horizon(name):
    env = with_task(make(name))
    horizon = env.horizon
    assert horizon == (100 if name == "navigation" else 200)
    types = step_types(env, 2 * horizon + 1)
    expected = np.full(2 * horizon + 2, int(ts.StepType.MID))
    expected[[0, horizon + 1]] = ts.StepType.FIRST  # the step after LAST starts a new episode
    expected[[horizon, 2 * horizon + 1]] = ts.StepType.LAST
    np.testing.assert_array_equal(types, expected)
    env.reset()
    assert env.reset().step_type == ts.StepType.FIRST


@pytest.mark.parametrize("name, batch_size", [(name, None) for name in ENVIRONMENTS]
                         + [("navigation", 4), ("cheetah-vel", 2)])
def test_validate_py_environment(name, batch_size):
    env = with_task(make(name, batch_size=batch_size))
    utils.validate_py_environment(env, episodes=2)


@pytest.mark.parametrize("name", MUJOCO)
def test_batched_mujoco_steps_as_gymnasium(name, rng):
    """Every member of a batch is gymnasium's own robot: same start draws, and from the same
    state ``env.step`` gives the same observation, to the bit."""
    batched = with_task(make(name, batch_size=3, seed=7))
    first = batched.reset()
    assert first.observation.shape == (3,) + batched.observation_spec().shape
    robots = [type(batched.robot)(frame_skip=batched.robot.frame_skip) for _ in range(3)]
    # Member 0's start is gymnasium's reset(seed=7); the others continue the same stream.
    np.testing.assert_array_equal(first.observation[0], robots[0].reset(seed=7)[0].astype(np.float32))
    assert not np.array_equal(first.observation[1], first.observation[2])
    for robot, data in zip(robots, batched._data):
        robot.set_state(data.qpos.copy(), data.qvel.copy())
    running = np.ones(3, bool)
    for _ in range(30):
        actions = rng.uniform(-1.3, 1.3, (3,) + batched.action_spec().shape).astype(np.float32)
        step = batched.step(actions)
        assert step.reward.shape == (3,) and step.step_type.shape == (3,)
        for i, robot in enumerate(robots):
            expected, _, terminated, _, _ = robot.step(np.clip(actions[i], -1, 1).astype(np.float64))
            if running[i]:  # after termination ours is padding, gymnasium's robot runs on
                np.testing.assert_array_equal(step.observation[i], expected.astype(np.float32))
                running[i] = not terminated
        np.testing.assert_array_equal(step.discount, running.astype(np.float32))


@pytest.mark.parametrize("name", ["ant-vel", "ant-dir"])
def test_ant_episode_ends_outside_the_healthy_height(name):
    """rllab's ant (and gymnasium's Ant-v5) ends the episode once the torso height leaves
    [0.2, 1]: a torso put at 1.5 m ends it at the first step, one at the start height not;
    ``terminate_when_unhealthy=False`` never ends it. The cheetah never ends early."""
    env = with_task(make(name, batch_size=2, seed=0))
    env.reset()
    qpos = env._data[1].qpos.copy()
    qpos[2] = 1.5
    env._data[1].qpos[:] = qpos
    step = env.step(np.zeros((2,) + env.action_spec().shape, np.float32))
    np.testing.assert_array_equal(step.discount, [1.0, 0.0])
    lenient = with_task(make(name, batch_size=2, seed=0, terminate_when_unhealthy=False))
    lenient.reset()
    lenient._data[1].qpos[:] = qpos
    np.testing.assert_array_equal(lenient.step(np.zeros((2, 8), np.float32)).discount, [1.0, 1.0])
    cheetah = with_task(make("cheetah-vel", batch_size=2, seed=0))
    cheetah.reset()
    for _ in range(cheetah.horizon):
        assert np.all(cheetah.step(np.ones((2, 6), np.float32)).discount == 1.0)


@pytest.mark.parametrize("name", MUJOCO)
def test_batched_rewards_equal_single_members(name, rng):
    """Member i of a batch earns what a lone robot with its task earns from the same state."""
    batched = with_task(make(name, batch_size=2, seed=3))
    batched.reset()
    singles = []
    for task, data in zip(batched.task, batched._data):
        single = make(name)
        single.reset_task(task)
        single.reset()
        single.robot.set_state(data.qpos.copy(), data.qvel.copy())
        singles.append(single)
    for _ in range(20):
        actions = rng.uniform(-1, 1, (2,) + batched.action_spec().shape).astype(np.float32)
        step = batched.step(actions)
        np.testing.assert_array_equal(step.reward, [s.step(a).reward for s, a in zip(singles, actions)])


def test_seed_restarts_the_reset_noise():
    env = with_task(make("cheetah-dir", batch_size=2, seed=0))
    first = env.reset().observation
    assert not np.array_equal(env.reset().observation, first)  # the stream continues
    env.seed(0)
    np.testing.assert_array_equal(env.reset().observation, first)


def test_py_driver_collects_fixed_length_batches():
    env = with_task(make("navigation", batch_size=6))
    policy = random_py_policy.RandomPyPolicy(env.time_step_spec(), env.action_spec(), outer_dims=(6,))
    trajectories = []
    driver = py_driver.PyDriver(env, policy, [trajectories.append], max_steps=6 * Navigation2D.horizon)
    driver.run(env.reset())
    assert len(trajectories) == Navigation2D.horizon
    np.testing.assert_array_equal(trajectories[0].step_type, ts.StepType.FIRST)
    assert all(t.observation.shape == (6, 2) for t in trajectories)
    np.testing.assert_array_equal(trajectories[-1].next_step_type, ts.StepType.LAST)


@pytest.mark.slow  # a fresh process imports TensorFlow: about 15 s on the loaded machine
def test_import_and_step_without_display():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL", "WAYLAND_DISPLAY")}
    code = ("from maml_tf.rl.envs import make\n"
            "for name in ('cheetah-vel', 'ant-dir'):\n"
            "    e = make(name); e.reset_task(e.sample_tasks(1, 0)[0]); e.reset(); e.step(e.action_spec().minimum)\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_building_a_cheetah_leaves_no_mujoco_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    HalfCheetahVel()  # MuJoCo 4 warns about half_cheetah.xml's deprecated settotalmass
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert mujoco.MjLogConfig.get().logto_file  # the log configuration is restored


def test_navigation_restarting_on_termination_starts_again_from_the_origin():
    """rllab's sampler: a member that reaches the goal starts a new episode at once, in
    the same row. Discount 0 marks only the terminating step, whose observation is
    already the origin; the row still ends at the horizon."""
    env = Navigation2D(batch_size=2, normalize_actions=False, restart_on_termination=True)
    env.reset_task([{"goal": np.array([0.2, -0.1])}, {"goal": np.array([0.5, 0.5])}])
    env.reset()
    toward_first_goal = np.array([[0.1, -0.05], [0.1, -0.05]], np.float32)
    for t in range(1, Navigation2D.horizon + 1):
        step = env.step(toward_first_goal)
        reached = t % 2 == 0
        np.testing.assert_array_equal(step.discount, [0.0 if reached else 1.0, 1.0])
        np.testing.assert_allclose(step.observation[0], [0.0, 0.0] if reached else [0.1, -0.05], atol=1e-7)
        np.testing.assert_allclose(step.reward[0], 0.0 if reached else -np.hypot(0.1, 0.05), atol=1e-6)
        np.testing.assert_allclose(step.observation[1], [0.1 * t, -0.05 * t], atol=1e-5)
        expected_type = ts.StepType.LAST if t == Navigation2D.horizon else ts.StepType.MID
        np.testing.assert_array_equal(step.step_type, [expected_type] * 2)


@pytest.mark.parametrize("name", ["ant-vel", "ant-dir"])
def test_a_fallen_ant_restarts_and_the_others_run_on(name):
    """With ``restart_on_termination`` the unhealthy member is reset to a noisy start
    pose; the healthy member steps exactly as without restarts."""
    restarting, padded = (with_task(make(name, batch_size=2, seed=0, restart_on_termination=restart))
                          for restart in (True, False))
    for env in (restarting, padded):
        env.reset()
        env._data[1].qpos[2] = 1.5
    action = np.zeros((2, 8), np.float32)
    step, reference = restarting.step(action), padded.step(action)
    np.testing.assert_array_equal(step.discount, [1.0, 0.0])
    np.testing.assert_array_equal(step.observation[0], reference.observation[0])
    start = restarting.robot.init_qpos
    scale = restarting.robot._reset_noise_scale
    assert np.all(np.abs(restarting._data[1].qpos - start) <= scale)
    np.testing.assert_array_equal(restarting.step(action).discount, [1.0, 1.0])


# ----------------------------------------------------------------------------- rllab's cheetah (issue 32)
RLLAB = dict(observation="rllab", velocity="com", reset_noise="rllab")


def _fresh_centre_of_mass(env, member=0):
    """The torso subtree's centre of mass and its velocity, recomputed from scratch on a
    copy of the member's state (mj_forward, then mj_subtreeVel)."""
    data = mujoco.MjData(env.model)
    data.qpos[:], data.qvel[:] = env._data[member].qpos, env._data[member].qvel
    mujoco.mj_forward(env.model, data)
    mujoco.mj_subtreeVel(env.model, data)
    torso = env.model.body("torso").id
    return data.subtree_com[torso].copy(), data.subtree_linvel[torso].copy()


def test_rllab_cheetah_observes_qpos_qvel_and_the_current_centre_of_mass(rng):
    env = with_task(HalfCheetahDir(seed=0, **RLLAB))
    assert env.observation_spec().shape == (20,)
    assert with_task(HalfCheetahDir(oracle=True, **RLLAB)).observation_spec().shape == (21,)
    observation = env.reset().observation
    for _ in range(5):
        observation = env.step(rng.uniform(-1, 1, 6).astype(np.float32)).observation
    data = env._data[0]
    np.testing.assert_allclose(observation[:8], data.qpos[1:], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(observation[8:17], data.qvel, rtol=1e-6, atol=1e-6)
    # the centre of mass of the state the step reached, not the one mj_step computed before integrating
    np.testing.assert_allclose(observation[17:], _fresh_centre_of_mass(env)[0], rtol=1e-6, atol=1e-6)


def test_rllab_cheetah_centre_of_mass_x_tracks_the_robots_displacement():
    """Moving the robot along x moves the observed centre of mass by as much, and a
    running start carries both as far (within the gait's sway of the body)."""
    env = with_task(HalfCheetahDir(seed=0, **RLLAB))
    env.reset()
    qpos, qvel = env._data[0].qpos.copy(), np.zeros(9)
    env.robot.set_state(qpos, qvel)
    offset = env._observe()[17] - qpos[0]
    qpos[0] += 2.5
    env.robot.set_state(qpos, qvel)
    np.testing.assert_allclose(env._observe()[17] - qpos[0], offset, atol=1e-6)  # float32
    qvel[0] = 3.0
    env.robot.set_state(qpos, qvel)
    com_before, root_before = env._observe()[17], env._data[0].qpos[0]
    for _ in range(50):
        observation = env.step(np.zeros(6, np.float32)).observation
    root_moved, com_moved = env._data[0].qpos[0] - root_before, observation[17] - com_before
    assert root_moved > 0.5
    assert abs(com_moved - root_moved) < 0.1 * root_moved


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_com_velocity_reward_is_direction_times_the_centre_of_mass_velocity(direction, rng):
    """reward + control cost = d v, v the torso subtree's centre-of-mass x velocity after
    the step (rllab's get_body_comvel): equal to MuJoCo's from scratch, and within a loose
    tolerance of the centre of mass's displacement over the step / dt."""
    env = HalfCheetahDir(seed=1, **RLLAB)
    env.reset_task({"direction": direction})
    env.reset()
    for _ in range(30):  # get the robot moving
        env.step(rng.uniform(-1, 1, 6).astype(np.float32))
    for _ in range(20):
        action = rng.uniform(-1, 1, 6)
        before = _fresh_centre_of_mass(env)[0][0]
        reward = float(env.step(action.astype(np.float32)).reward)
        com, velocity = _fresh_centre_of_mass(env)
        speed = (reward + 0.05 * np.sum(action ** 2)) / direction
        np.testing.assert_allclose(speed, velocity[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(speed, (com[0] - before) / env.dt, rtol=0.2, atol=0.1)


def test_rllab_reset_noise_is_gaussian_with_rllabs_scales():
    """qpos + 0.01 N(0, 1), qvel + 0.1 N(0, 1) (rllab); gymnasium's qpos noise is U(-0.1, 0.1)."""
    members = 400
    rllab = with_task(HalfCheetahDir(batch_size=members, seed=0, reset_noise="rllab"))
    rllab.reset()
    init = rllab.robot.init_qpos
    qpos, qvel = rllab._state("qpos") - init, rllab._state("qvel")
    n = qpos.size
    assert abs(qpos.mean()) < 4 * 0.01 / np.sqrt(n) and abs(qvel.mean()) < 4 * 0.1 / np.sqrt(qvel.size)
    np.testing.assert_allclose([qpos.std(), qvel.std()], [0.01, 0.1], rtol=0.05)
    kurtosis = np.mean(qpos ** 4) / np.mean(qpos ** 2) ** 2
    assert 2.6 < kurtosis < 3.4  # a normal's 3 (a uniform's would be 1.8)
    gymnasium = with_task(HalfCheetahDir(batch_size=members, seed=0))
    gymnasium.reset()
    noise = gymnasium._state("qpos") - init
    assert np.abs(noise).max() <= 0.1 and noise.std() > 0.05


def test_rllab_options_are_checked_by_name():
    with pytest.raises(ValueError, match="observation must be one of gymnasium for AntDir, got 'rllab'"):
        AntDir(observation="rllab")
    with pytest.raises(ValueError, match="velocity must be one of root, com for HalfCheetahVel, got 'torso'"):
        HalfCheetahVel(velocity="torso")
    with pytest.raises(ValueError, match="reset_noise must be one of gymnasium, rllab"):
        make("cheetah-dir", reset_noise="uniform")
    with pytest.raises(ValueError, match="row_steps must be at least the horizon"):
        Navigation2D(batch_size=2, row_steps=50, restart_on_termination=True)


def test_authors_test_tasks_are_their_scripts():
    """test_maml_point.py / test_maml_cheetah_direc.py: np.random.seed(1), then the draw."""
    np.random.seed(1)
    goals = np.random.uniform(-0.5, 0.5, (40, 2))
    np.testing.assert_array_equal(np.stack([t["goal"] for t in Navigation2D().authors_test_tasks(40)]), goals)
    directions = [t["direction"] for t in HalfCheetahDir().authors_test_tasks(40)]
    np.random.seed(1)
    assert directions == [-1.0 if u < 1 else 1.0 for u in np.random.uniform(0, 2, 40)]
    assert directions.count(1.0) == 18
    with pytest.raises(NotImplementedError, match="HalfCheetahVel has no test tasks of the authors"):
        HalfCheetahVel().authors_test_tasks(3)


# ----------------------------------------------------------------------------- rllab's ant physics (issue 32)
RLLAB_INIT_QPOS = [0.0, 0.0, 0.55, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0]


def _rllab_ant_model():
    """gymnasium's installed ant.xml with rllab's ant.xml lines that set its physics (maml_rl's
    vendor/mujoco_models/ant.xml): the option line and the geom default's contact softness."""
    import gymnasium.envs.mujoco
    path = os.path.join(os.path.dirname(gymnasium.envs.mujoco.__file__), "assets", "ant.xml")
    with open(path) as f:
        xml = f.read()
    for old, new in (('<option integrator="RK4" timestep="0.01"/>', '<option timestep="0.02" integrator="RK4"/>'),
                     ('friction="1 0.5 0.5" margin="0.01"', 'friction="1 0.5 0.5" margin="0.01" solref=".02 1" '
                                                           'solimp=".8 .8 .01"')):
        assert xml.count(old) == 1, old  # gymnasium's asset as this test knows it
        xml = xml.replace(old, new)
    return mujoco.MjModel.from_xml_string(xml)


@pytest.mark.parametrize("cls", [AntVel, AntDir])
def test_rllab_ant_physics_steps_as_rllabs_model(cls, rng):
    """physics="rllab": one step of 0.02 per action (dt 0.02) on the model compiled from the
    edited XML, from the same state with the same actions, to the bit; gymnasium's physics
    (two steps of 0.01) departs from it."""
    env, gymnasium = (with_task(cls(seed=3, physics=p)) for p in ("rllab", "gymnasium"))
    assert env.dt == pytest.approx(0.02) and env.robot.frame_skip == 1 and env.model.opt.timestep == 0.02
    model = _rllab_ant_model()
    np.testing.assert_array_equal(env.model.geom_solref, model.geom_solref)
    np.testing.assert_array_equal(env.model.geom_solimp, model.geom_solimp)
    env.reset()
    gymnasium.reset()
    data, state = mujoco.MjData(model), env._data[0]
    data.qpos[:], data.qvel[:] = state.qpos, state.qvel
    gymnasium.robot.set_state(state.qpos.copy(), state.qvel.copy())
    mujoco.mj_forward(model, data)
    for _ in range(100):
        action = rng.uniform(-1, 1, 8)
        observation = env.step(action.astype(np.float32)).observation
        gymnasium.step(action.astype(np.float32))
        data.ctrl[:] = action.astype(np.float32)
        mujoco.mj_step(model, data)
        mujoco.mj_rnePostConstraint(model, data)
        for field in ("qpos", "qvel", "cfrc_ext"):
            np.testing.assert_array_equal(getattr(state, field), getattr(data, field), err_msg=field)
    np.testing.assert_array_equal(observation[:13], data.qpos[2:].astype(np.float32))
    assert np.all(np.isfinite(data.qpos)) and not np.allclose(gymnasium._data[0].qpos, data.qpos, atol=1e-3)


def test_rllab_ant_starts_from_rllabs_init_qpos():
    """rllab's mujoco_env resets to the model's init_qpos (torso at 0.55, ankles at +-1 rad)
    plus its noise; gymnasium's physics keeps gymnasium's rest pose."""
    members = 200
    env = with_task(AntVel(batch_size=members, seed=0, physics="rllab", reset_noise="rllab"))
    env.reset()
    noise = env._state("qpos") - RLLAB_INIT_QPOS
    assert np.abs(noise.mean(axis=0)).max() < 4 * 0.01 / np.sqrt(members)
    np.testing.assert_allclose(noise.std(), 0.01, rtol=0.05)
    rest = AntVel().robot.init_qpos
    assert rest[2] == 0.75 and np.all(rest[7:] == 0)
    np.testing.assert_array_equal(AntVel(physics="rllab").robot.init_qpos, RLLAB_INIT_QPOS)


def test_physics_is_checked_by_name():
    with pytest.raises(ValueError, match="physics must be one of gymnasium for HalfCheetahDir, got 'rllab'"):
        make("cheetah-dir", physics="rllab")
    with pytest.raises(ValueError, match="physics must be one of gymnasium, rllab for AntVel, got 'mujoco'"):
        make("ant-vel", physics="mujoco")
