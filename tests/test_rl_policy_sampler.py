"""The Gaussian MLP policy and the batched per-task sampler (Section 5.3)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf.models.policy import action_distribution, gaussian_mlp_policy
from maml_tf.rl import envs
from maml_tf.rl.sampler import Sampler, stack_weights


def _constant_policy_weights(model, means, log_std=-100.0):
    """Per-task weights whose policy outputs ``means[i]`` everywhere with ~zero std."""
    stacked = []
    for v in model.trainable_variables:
        if v.path.endswith("mean/bias"):
            stacked.append(tf.constant(np.asarray(means, np.float32)))
        elif v.path.endswith("log_std"):
            stacked.append(tf.fill([len(means), v.shape[0]], log_std))
        else:
            stacked.append(tf.zeros([len(means), *v.shape]))
    return stacked


# ----------------------------------------------------------------------------- policy
def test_policy_output_is_mean_and_state_independent_log_std():
    model = gaussian_mlp_policy(3, 2, hidden=(8, 8), init_log_std=-0.5)
    out = model(np.random.default_rng(0).normal(size=(5, 3)).astype("float32")).numpy()
    assert out.shape == (5, 4)
    np.testing.assert_allclose(out[:, 2:], -0.5)
    log_std = [v for v in model.trainable_variables if "log_std" in v.path]
    assert len(log_std) == 1 and tuple(log_std[0].shape) == (2,)
    assert len(model.trainable_variables) == 7


def test_log_prob_matches_hand_computed_gaussian(rng):
    output = rng.normal(size=(4, 6))
    actions = rng.normal(size=(4, 3))
    mean, log_std = output[:, :3], output[:, 3:]
    expected = np.sum(-0.5 * ((actions - mean) / np.exp(log_std)) ** 2 - log_std
                      - 0.5 * np.log(2 * np.pi), axis=-1)
    got = action_distribution(tf.constant(output)).log_prob(actions).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_policy_serialises():
    model = gaussian_mlp_policy(2, 2, hidden=(4,))
    clone = keras.models.model_from_json(model.to_json())
    assert [tuple(v.shape) for v in clone.trainable_variables] == \
        [tuple(v.shape) for v in model.trainable_variables]


# ----------------------------------------------------------------------------- sampler
@pytest.fixture
def sampler():
    env = envs.make("navigation", batch_size=6)
    return Sampler(env, gaussian_mlp_policy(2, 2, hidden=(8,)))


def test_sampler_shapes_and_seed_determinism(sampler):
    tasks = sampler.env.sample_tasks(3, seed=0)
    a, b, c = (sampler.sample(tasks, seed=s) for s in (1, 1, 2))
    assert a["observations"].shape == (3, 2, 100, 2)
    assert a["actions"].shape == (3, 2, 100, 2)
    assert a["rewards"].shape == (3, 2, 100)
    assert a["tasks"] == tasks
    for key in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["actions"], c["actions"])
    np.testing.assert_array_equal(a["observations"][:, :, 0], 0.0)  # every episode starts at the origin


def test_mujoco_rollouts_are_a_function_of_the_seed():
    env = envs.make("cheetah-vel", batch_size=2)
    sampler = Sampler(env, gaussian_mlp_policy(17, 6, hidden=(8,)))
    tasks = env.sample_tasks(2, seed=0)
    a, b, c = (sampler.sample(tasks, seed=s) for s in (4, 4, 5))
    assert a["observations"].shape == (2, 1, 200, 17)
    for key in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(a[key], b[key])  # start states too: the env is seeded
    assert not np.array_equal(a["observations"][:, :, 0], c["observations"][:, :, 0])


def test_a_robots_displacement_is_its_own_x_difference_over_the_episode():
    """A constant action per task: each episode's summed displacement equals gymnasium's own
    x_position after the same 200 actions minus x at the start; the policy still sees 17
    numbers (x left out) and the returns are untouched (reward = d * dx / dt - cost)."""
    from maml_tf.rl.learner import movement
    env = envs.make("cheetah-dir", batch_size=2)
    sampler = Sampler(env, gaussian_mlp_policy(17, 6, hidden=(8,)))
    tasks, means = [{"direction": 1.0}, {"direction": -1.0}], [[0.6, -0.4, 0.2, 0.5, -0.3, 0.1], [-0.5] * 6]
    samples = sampler.sample(tasks, seed=3, weights=_constant_policy_weights(sampler.model, means))
    assert samples["observations"].shape == (2, 1, 200, 17) and samples["displacements"].shape == (2, 1, 200)
    direct = envs.make("cheetah-dir")  # gymnasium's robot at our dt; the members' start noise, drawn alike
    direct.seed(3)
    for i, (task, action, (qpos_noise, qvel_noise)) in enumerate(zip(tasks, means, direct.draw_reset_noise(2))):
        robot = direct.robot
        robot.set_state(robot.init_qpos + qpos_noise, robot.init_qvel + qvel_noise)
        start = robot.data.qpos[0]
        for _ in range(200):
            info = robot.step(np.array(action, np.float32))[-1]
        np.testing.assert_allclose(samples["displacements"][i].sum(), info["x_position"] - start, rtol=1e-9)
        np.testing.assert_allclose(samples["rewards"][i, 0],
                                   task["direction"] * samples["displacements"][i, 0] / env.dt
                                   - 0.05 * np.sum(np.square(action)), rtol=1e-5, atol=1e-5)
    moved = movement(samples)
    np.testing.assert_allclose(moved["displacement"], samples["displacements"].sum(axis=(1, 2)))
    np.testing.assert_allclose(moved["distance"], np.abs(moved["displacement"]))
    np.testing.assert_array_equal(moved["forward"], moved["displacement"] > 0)
    assert movement({k: v for k, v in samples.items() if k != "displacements"}) is None  # navigation's


def test_sampler_uses_each_tasks_own_weights():
    sampler = Sampler(envs.make("navigation", batch_size=4), gaussian_mlp_policy(2, 2, hidden=(8,)))
    tasks = sampler.env.sample_tasks(2, seed=0)
    weights = _constant_policy_weights(sampler.model, [[0.3, -0.2], [-0.7, 0.5]])
    actions = sampler.sample(tasks, seed=0, weights=weights)["actions"]
    # Same observation (the origin) at t = 0, different actions per task.
    np.testing.assert_allclose(actions[0, :, 0], [[0.3, -0.2]] * 2, atol=1e-6)
    np.testing.assert_allclose(actions[1, :, 0], [[-0.7, 0.5]] * 2, atol=1e-6)


def test_zero_std_policy_gives_the_expected_trajectory(sampler):
    goals = [{"goal": np.array([0.2, -0.3])}, {"goal": np.array([-0.4, 0.1])}, {"goal": np.array([0.0, 0.5])}]
    means = [[0.5, -2.0], [1.0, 0.25], [0.0, 0.0]]
    out = sampler.sample(goals, seed=3, weights=_constant_policy_weights(sampler.model, means))
    steps = np.arange(1, 101)[:, None]
    for i, (goal, mean) in enumerate(zip(goals, means)):
        positions = steps * 0.1 * np.clip(mean, -1, 1)  # after each move
        expected_rewards = -np.linalg.norm(positions - goal["goal"], axis=-1)
        for e in range(2):
            np.testing.assert_allclose(out["actions"][i, e], np.broadcast_to(mean, (100, 2)), atol=1e-6)
            np.testing.assert_allclose(out["observations"][i, e, 1:], positions[:-1], atol=1e-5)
            np.testing.assert_allclose(out["final_observations"][i, e], positions[-1], atol=1e-5)
            np.testing.assert_allclose(out["rewards"][i, e], expected_rewards, atol=1e-5)


def test_steps_after_the_goal_is_reached_are_marked_invalid(sampler):
    """A deterministic policy moving (0.1, 0.1) per step reaches the goal (0.3, 0.3) at
    its third step: valid are steps 0..2 (the terminating one included), the rest is
    padding with reward 0, and the environment steps counted are those valid ones."""
    goals = [{"goal": np.array([0.3, 0.3])}, {"goal": np.array([-0.3, 0.3])}, {"goal": np.array([0.3, 0.3])}]
    means = [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]  # the 2nd never gets there, the 3rd stays put
    out = sampler.sample(goals, seed=0, weights=_constant_policy_weights(sampler.model, means))
    assert out["valid"].shape == out["rewards"].shape == (3, 2, 100)
    np.testing.assert_array_equal(out["valid"][0], np.repeat([[1.0] * 3 + [0.0] * 97], 2, axis=0))
    np.testing.assert_array_equal(out["valid"][1:], 1.0)
    np.testing.assert_allclose(out["rewards"][0, :, :3], [[-np.hypot(0.2, 0.2), -np.hypot(0.1, 0.1), 0.0]] * 2,
                               atol=1e-6)
    np.testing.assert_array_equal(out["rewards"][0, :, 3:], 0.0)
    # After the row: at the goal (frozen since), far past the other, where the third stayed.
    np.testing.assert_allclose(out["final_observations"][:, 0], [[0.3, 0.3], [10.0, 10.0], [0.0, 0.0]], atol=1e-4)
    from maml_tf.rl.learner import env_steps
    assert env_steps(out) == 2 * 3 + 4 * 100


def test_shared_weights_default_to_the_model(sampler):
    tasks = sampler.env.sample_tasks(3, seed=0)
    stacked = stack_weights([v.value for v in sampler.model.trainable_variables], 3)
    a = sampler.sample(tasks, seed=5)
    b = sampler.sample(tasks, seed=5, weights=stacked)
    np.testing.assert_array_equal(a["actions"], b["actions"])


def test_sampler_rejects_tasks_that_do_not_split_the_batch(sampler):
    with pytest.raises(ValueError, match="split"):
        sampler.sample(sampler.env.sample_tasks(4, seed=0), seed=0)


def test_a_step_budget_row_holds_the_episodes_that_end_within_it():
    """``restart_on_termination`` (rllab's sampler): the goal (0.3, 0.3) is reached every
    third step, so a row of 100 holds 33 episodes and the start of a 34th, which the
    horizon cuts short and which is not valid; a task that never reaches its goal has
    one episode per row. Returns are averaged over complete episodes."""
    env = envs.make("navigation", batch_size=6, restart_on_termination=True)
    sampler = Sampler(env, gaussian_mlp_policy(2, 2, hidden=(8,)))
    goals = [{"goal": np.array([0.3, 0.3])}, {"goal": np.array([-0.3, 0.3])}, {"goal": np.array([0.3, 0.3])}]
    means = [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    out = sampler.sample(goals, seed=0, weights=_constant_policy_weights(sampler.model, means))
    period = np.arange(100) % 3
    np.testing.assert_array_equal(out["valid"][0], np.repeat([[1.0] * 99 + [0.0]], 2, axis=0))
    np.testing.assert_array_equal(out["ends"][0], np.repeat([(period == 2) * 1.0], 2, axis=0))
    np.testing.assert_array_equal(out["timesteps"][0], np.repeat([period], 2, axis=0))
    np.testing.assert_allclose(out["observations"][0, 0, :6], [[0, 0], [0.1, 0.1], [0.2, 0.2]] * 2, atol=1e-6)
    np.testing.assert_array_equal(out["valid"][1:], 1.0)
    np.testing.assert_array_equal(out["ends"][1:, :, :-1], 0.0)
    np.testing.assert_array_equal(out["ends"][1:, :, -1], 1.0)
    np.testing.assert_array_equal(out["timesteps"][1:], np.broadcast_to(np.arange(100.0), (2, 2, 100)))
    from maml_tf.rl.learner import env_steps, mean_returns
    returns = mean_returns(out)
    np.testing.assert_allclose(returns[0], -np.hypot(0.2, 0.2) - np.hypot(0.1, 0.1), atol=1e-5)
    np.testing.assert_allclose(returns[1:], out["rewards"][1:, 0].sum(axis=-1), rtol=1e-6)
    assert env_steps(out) == 2 * 99 + 4 * 100


# ----------------------------------------------------------------------------- the authors' test protocol
class ScriptedLengths(envs.TaskEnvironment):
    """Episodes of scripted lengths (a task's ``lengths``, then the last repeated), reward 1
    per step, so an episode's return is its length; the horizon caps an episode at 100."""

    horizon = 100

    def __init__(self, batch_size, **kwargs):
        from tf_agents.specs import array_spec
        super().__init__(batch_size, **kwargs)
        self._obs_spec = array_spec.ArraySpec((1,), np.float32)
        self._act_spec = array_spec.BoundedArraySpec((1,), np.float32, -1.0, 1.0)

    def observation_spec(self):
        return self._obs_spec

    def action_spec(self):
        return self._act_spec

    def seed(self, seed):
        pass

    def _start(self):
        self._episode = np.zeros(self.batch_size, int)
        self._length = np.zeros(self.batch_size, int)
        return np.zeros((self.batch_size, 1))

    def _restart(self, members):
        self._episode[members] += 1
        self._length[members] = 0
        return np.zeros((self.batch_size, 1))

    def _advance(self, action):
        self._length += 1
        return np.zeros((self.batch_size, 1)), np.ones(self.batch_size)

    def _terminal(self):
        lengths = [t["lengths"][min(e, len(t["lengths"]) - 1)] for t, e in zip(self.task, self._episode)]
        return self._length >= np.array(lengths)


def _scripted(sampling_rows, lengths):
    env = ScriptedLengths(len(lengths), restart_on_termination=True, **sampling_rows)
    sampler = Sampler(env, gaussian_mlp_policy(1, 1, hidden=(4,)))
    return sampler.sample([{"lengths": row} for row in lengths], seed=0)


def test_complete_rows_finish_every_episode_started_within_the_budget():
    """Lengths 10, 20, 80: the third starts at 30 and ends at 110; 150 is cut at the
    horizon (100 steps of its own); episodes of 30 start at 0, 30, 60, 90, the last ending
    at 120, so the rows run 120 steps; episodes starting after the budget of 100 are not
    counted. Every one counted is whole, and the estimator is the
    plain mean of their returns (here their lengths): rllab's AverageReturn."""
    from maml_tf.rl.learner import mean_returns
    lengths = [[10, 20, 80], [10, 150], [100], [30]]
    out = _scripted({"row_steps": 200}, lengths)
    assert out["rewards"].shape == (4, 1, 200)  # padded to the row length, one shape per call
    assert np.flatnonzero(out["valid"].any(axis=(0, 1)))[-1] == 119
    np.testing.assert_allclose(mean_returns(out), [110 / 3, 55, 100, 30])
    for row in range(4):
        valid, ends, timesteps = (out[k][row, 0] for k in ("valid", "ends", "timesteps"))
        last = np.flatnonzero(valid)[-1]
        assert ends[last] == 1 and valid[last + 1:].sum() == 0  # the last counted episode is whole
        starts = np.flatnonzero(timesteps == 0)
        assert ends.sum() == np.sum(starts < 100)  # every episode started within the budget, counted
    # rllab's training sampler, rows of the horizon: each row's unfinished episode dropped
    rows = _scripted({}, lengths)
    np.testing.assert_allclose(mean_returns(rows), [15, 10, 100, 30])


def test_complete_sampling_through_the_learner_on_navigation():
    """A tiny noisy policy heading for goals it reaches after a varying number of steps: the
    learner's "complete" rows hold whole episodes only, every episode started within the
    horizon's budget."""
    from maml_tf.rl.learner import PolicyLearner, mean_returns
    keras.utils.set_random_seed(0)
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), "navigation", episodes_per_task=6,
                            sampling="steps")
    tasks = [{"goal": np.array([0.05, 0.0])}, {"goal": np.array([0.0, -0.05])}]
    weights = _constant_policy_weights(learner.model, [[0.25, 0.0], [0.0, -0.25]], log_std=-2.0)
    out = learner.sample(tasks, seed=3, weights=weights, sampling="complete")
    steps = out["valid"].shape[-1]
    assert steps == 200 and 100 <= np.flatnonzero(out["valid"].any(axis=(0, 1)))[-1] < 199  # one ran on
    assert out["ends"].sum() > 2 * 6  # some rows hold several episodes
    for valid, ends, timesteps in zip(*(out[k].reshape(12, steps) for k in ("valid", "ends", "timesteps"))):
        last = np.flatnonzero(valid)[-1]
        assert ends[last] == 1 and valid[last + 1:].sum() == 0
        assert ends.sum() == np.sum(np.flatnonzero(timesteps == 0) < 100)
        assert timesteps.max() < 100
    np.testing.assert_allclose(mean_returns(out), (out["rewards"] * out["valid"]).sum(axis=(1, 2))
                               / out["ends"].sum(axis=(1, 2)))
    assert learner.sample(tasks, seed=3)["valid"].shape[-1] == 100  # the learner's own sampling unchanged


# ----------------------------------------------------------------------------- the authors' training sampler
def _episodes(valid, ends, timesteps):
    """One stream's complete episodes' lengths, and the length of the unfinished one after them."""
    last_end = np.flatnonzero(ends)
    lengths = np.diff(np.concatenate([[-1], last_end]))
    np.testing.assert_array_equal(timesteps[last_end], lengths - 1)  # each counted from its own start
    return lengths, int(valid.size - valid.sum())


def test_stream_rows_fill_the_budget_of_all_tasks_together_as_rllabs_vectorized_sampler():
    """maml_rl's training sampler (sandbox/rocky/tf/samplers/vectorized_sampler.py:71-114):
    one environment per task, all stepped together until the steps of the paths completed
    in all of them reach tasks x budget; a path ends at done or after max_path_length steps
    (vec_env_executor.py:22-27), and each environment's running path is dropped. Budget 200
    per task, 3 tasks: episodes of 45 (completed 180 at step 200, 225 at 225), of 150 (cut
    to 100 by the horizon) and of 40 then 10 (completed 10 floor(n / 10)): 580 steps at 200,
    590 at 210, 600 at 220, so every stream runs 220 steps; the unfinished episodes (40
    steps of the first stream, 20 of the second) are not valid."""
    from maml_tf.rl.learner import env_steps, mean_returns
    env = ScriptedLengths(3, restart_on_termination=True, row_steps=300)
    sampler = Sampler(env, gaussian_mlp_policy(1, 1, hidden=(4,)), stream_steps=200)
    out = sampler.sample([{"lengths": [45]}, {"lengths": [150]}, {"lengths": [40, 10]}], seed=0)
    assert out["rewards"].shape == (3, 1, 300)  # padded to the row: one shape for every call
    np.testing.assert_array_equal(out["rewards"].sum(axis=(1, 2)), [220, 220, 220])  # reward 1 per step taken
    np.testing.assert_array_equal(out["valid"].sum(axis=(1, 2)), [180, 200, 220])
    assert env_steps(out) == 600
    expected = [([45] * 4, 40), ([100] * 2, 20), ([40] + [10] * 18, 0)]
    for task, (lengths, unfinished) in enumerate(expected):
        valid, ends, timesteps = (out[k][task, 0, :220] for k in ("valid", "ends", "timesteps"))
        assert valid[:len(valid) - unfinished].all()  # only the final partial episode is not valid
        got, got_unfinished = _episodes(valid, ends, timesteps)
        np.testing.assert_array_equal(got, lengths)
        assert got_unfinished == unfinished
        if unfinished:  # the dropped episode is one episode, from its own step 0
            np.testing.assert_array_equal(timesteps[-unfinished:], np.arange(unfinished))
        assert out["valid"][task, 0, 220:].sum() == out["rewards"][task, 0, 220:].sum() == 0
    np.testing.assert_allclose(mean_returns(out), [45, 100, 220 / 19])
    # rows of the horizon ("steps", 2 rows per task) drop each row's unfinished episode instead
    rows = _scripted({}, [[45], [45], [150], [150], [40, 10], [40, 10]])
    assert rows["valid"].sum() == 2 * 90 + 2 * 100 + 100 + 100


def test_a_stream_needs_its_budget_and_an_environment_whose_row_holds_it():
    model = gaussian_mlp_policy(1, 1, hidden=(4,))
    for env in (ScriptedLengths(2, restart_on_termination=True, row_steps=250),  # < budget + horizon
                ScriptedLengths(2)):  # rows of one episode each
        with pytest.raises(ValueError, match=r"stream_steps=200 needs .* row_steps >= stream_steps \+ horizon"):
            Sampler(env, model, stream_steps=200)


def test_stream_sampling_through_the_learner_on_navigation():
    """Navigation with a noisy policy: the goal (0.05, 0) reached in two steps or overshot
    (then the episode runs the horizon), (0.5, -0.5) never reached. One stream per goal of
    at least the budget (3 x 100 steps) and under budget + horizon, the same for both; their
    complete episodes hold the budget of both goals together, one step fewer would not."""
    from maml_tf.rl.learner import PolicyLearner, env_steps
    keras.utils.set_random_seed(0)
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), "navigation", episodes_per_task=3,
                            sampling="stream")
    tasks = [{"goal": np.array([0.05, 0.0])}, {"goal": np.array([0.5, -0.5])}]
    weights = _constant_policy_weights(learner.model, [[0.25, 0.0], [-1.0, 1.0]], log_std=-3.0)
    out = learner.sample(tasks, seed=3, weights=weights)
    assert out["valid"].shape == (2, 1, 400)
    taken = (out["rewards"] != 0).sum(axis=(1, 2))  # navigation's reward is < 0 at every step taken
    assert taken[0] == taken[1] and 300 <= taken[0] < 400
    length = int(taken[0])
    completed = [np.flatnonzero(out["ends"][t, 0, :length]) + 1 for t in range(2)]
    assert sum(c[-1] for c in completed) == env_steps(out) >= 2 * 300
    assert sum(c[c < length].max(initial=0) for c in completed) < 2 * 300  # one step fewer: not enough
    for task in range(2):
        lengths, unfinished = _episodes(*(out[k][task, 0, :length] for k in ("valid", "ends", "timesteps")))
        assert lengths.max() <= 100 and unfinished < 100
    assert _episodes(*(out[k][0, 0, :length] for k in ("valid", "ends", "timesteps")))[0].min() < 10  # reached
    np.testing.assert_array_equal(_episodes(*(out[k][1, 0, :length] for k in ("valid", "ends", "timesteps")))[0],
                                  100)  # never reached: each cut by the horizon
    with pytest.raises(ValueError, match="sampling must be one of episodes, steps, complete, stream, got 'streams'"):
        PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), "navigation", sampling="streams")


def test_adapting_on_batches_of_different_lengths_traces_at_most_twice():
    """Whole-episode batches differ in length per call (the authors' navigation test): the
    compiled inner step generalises after the second length instead of retracing for each,
    and its result for a length equals a fresh trace's."""
    from maml_tf.rl.learner import PolicyLearner
    keras.utils.set_random_seed(0)
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), "navigation", episodes_per_task=2)
    weights = learner._meta_weights(3)
    lr = tf.constant(0.1)
    rng = np.random.default_rng(0)
    for length in (100, 150, 200, 120, 90):
        data = (rng.normal(size=(3, length, 2)).astype(np.float32),  # [tasks, episodes * T, ...]
                rng.normal(size=(3, length, 2)).astype(np.float32),
                rng.normal(size=(3, length)).astype(np.float32),
                (rng.random((3, length)) < 0.8).astype(np.float32))
        adapted = learner._adapt_tasks(weights, *data, lr)
        fresh = tf.function(learner._adapt_stacked)(weights, *data, lr)
        for a, b in zip(adapted, fresh):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert learner._adapt_tasks.experimental_get_tracing_count() <= 2
