"""The RL baselines of Section 5.3: pretrained and oracle (TRPO on all tasks jointly,
JointTRPO) and random initialisation (an untrained PolicyLearner), fine-tuned by the
same inner rule as MAML; and the learners' checkpoints."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import flat
from maml_tf.models.policy import gaussian_mlp_policy
from maml_tf.rl.joint_trpo import JointTRPO
from maml_tf.rl.learner import PolicyLearner
from maml_tf.rl.trpo import hessian_vector_product


def _joint(oracle=False, hidden=(32, 32), **kwargs):
    model = gaussian_mlp_policy(4 if oracle else 2, 2, hidden=hidden)
    return JointTRPO(model, env_kwargs={"oracle": oracle}, **kwargs)


def test_oracle_observations_carry_the_goal():
    algo = _joint(oracle=True, meta_batch_size=3, episodes_per_task=2)
    tasks = algo.sample_tasks(3, seed=5)
    samples = algo.sample(tasks, seed=0)
    assert samples["observations"].shape == (3, 2, 100, 4)
    goals = np.stack([t["goal"] for t in tasks])
    np.testing.assert_allclose(samples["observations"][..., 2:],
                               np.broadcast_to(goals[:, None, None], (3, 2, 100, 2)), rtol=1e-6)
    np.testing.assert_array_equal(samples["observations"][:, :, 0, :2], 0.0)  # start at the origin


def test_joint_trpo_step_stays_in_the_trust_region_and_counts_its_samples():
    algo = _joint(meta_batch_size=2, episodes_per_task=3, seed=3)
    before = [v.numpy() for v in algo.model.trainable_variables]
    stats = algo.train_iteration()
    assert stats["iteration"] == algo.iteration == 1
    assert stats["accepted"] and stats["loss_after"] < stats["loss_before"]
    assert 0 < stats["kl"] <= 0.01 * (1 + 1e-6)
    assert algo.env_steps == 2 * 3 * 100
    assert any(np.any(b != v.numpy()) for b, v in zip(before, algo.model.trainable_variables))


@pytest.mark.slow
def test_pretrained_and_oracle_training_improve_the_return():
    """15 TRPO iterations on navigation (10 tasks x 5 paths): both improve, and the
    oracle, which sees the goal, ends far above the pretrained policy, which cannot."""
    final = {}
    for oracle in (False, True):
        history = _joint(oracle=oracle, meta_batch_size=10, episodes_per_task=5).train(15)
        returns = [h["return"] for h in history]
        assert np.mean(returns[-3:]) > np.mean(returns[:3]) + 10.0, returns
        final[oracle] = np.mean(returns[-3:])
    assert final[True] > final[False] + 15.0, final


def test_hessian_vector_product_is_the_exact_one_at_the_trust_region_centre(float64, rng):
    """The compiled Gauss-Newton product ``trpo_step`` gets equals double backprop where
    TRPO uses it (sampling policy = current policy), and not elsewhere."""
    algo = _joint(hidden=(5,))
    observations = tf.constant(rng.normal(size=(30, 2)))
    variables = algo.model.trainable_variables
    vector = [tf.constant(rng.normal(size=tuple(v.shape))) for v in variables]
    centre = algo.model(observations)
    valid = tf.constant(np.repeat([1.0, 0.0], [25, 5]))  # the last 5 states are padding
    data = (observations, None, None, valid, centre)  # the KL ignores actions and advantages
    exact = hessian_vector_product(lambda: algo._kl(*data), variables, vector)
    np.testing.assert_allclose(flat(algo._hvp(vector, *data)), flat(exact), rtol=1e-10)
    off = (observations, None, None, valid, centre + tf.constant(rng.normal(scale=0.5, size=(30, 4))))
    exact_off = hessian_vector_product(lambda: algo._kl(*off), variables, vector)
    assert not np.allclose(flat(algo._hvp(vector, *off)), flat(exact_off), rtol=1e-3)


def test_random_initialisation_is_fine_tuned_but_not_trained():
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), episodes_per_task=2)
    tasks = learner.sample_tasks(3, seed=1)
    start = [v.numpy() for v in learner.model.trainable_variables]
    returns = learner.meta_test(tasks, steps=2, episodes_per_task=2)
    assert returns.shape == (3, 3) and np.all(np.isfinite(returns))
    for s, v in zip(start, learner.model.trainable_variables):  # adaptation is functional
        np.testing.assert_array_equal(s, v.numpy())
    with pytest.raises(NotImplementedError, match="no training step"):
        learner.train_iteration()


def test_fine_tuning_uses_the_step_sizes_in_order():
    """adapt(step_sizes=(a, b)) takes a first step of size a, then b: from the same
    rollouts, a zero first step leaves the weights after step 1 unchanged."""
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), episodes_per_task=2)
    tasks = learner.sample_tasks(2, seed=0)
    start = flat(v.numpy() for v in learner.model.trainable_variables)
    unmoved, _ = learner.adapt(tasks, 1, step_sizes=(0.0, 0.05), episodes_per_task=2)
    moved, _ = learner.adapt(tasks, 1, step_sizes=(0.1, 0.05), episodes_per_task=2)
    for w in (unmoved, moved):
        assert [tuple(x.shape[1:]) for x in w] == [tuple(v.shape) for v in learner.model.trainable_variables]
    np.testing.assert_allclose(flat(x[0].numpy() for x in unmoved), start, rtol=1e-6)
    assert np.abs(flat(x[0].numpy() for x in moved) - start).max() > 1e-4


@pytest.mark.parametrize("env, inputs, actions, env_kwargs, message", [
    ("navigation", 3, 2, {}, r"maps 3 inputs to 4 outputs; environment 'navigation' needs 2 \(its observation\) "
                             r"to 4 .*gaussian_mlp_policy\(2, 2\)"),
    ("navigation", 4, 2, {}, r"env_kwargs=\{'oracle': True\}"),
    ("navigation", 2, 2, {"oracle": True}, r"with \{'oracle': True\} needs 4 .*gaussian_mlp_policy\(4, 2\)"),
    ("cheetah-vel", 2, 2, {}, r"needs 17 \(its observation\) to 12 .*gaussian_mlp_policy\(17, 6\)"),
])
def test_a_policy_of_other_sizes_than_the_environment_is_refused(env, inputs, actions, env_kwargs, message):
    """Refused when built, not deep inside the sampler or at MuJoCo's controls."""
    with pytest.raises(ValueError, match=message):
        JointTRPO(gaussian_mlp_policy(inputs, actions, hidden=(4,)), env=env, env_kwargs=env_kwargs)


def test_fine_tuning_defaults_to_inner_lr_then_half_of_it():
    """The paper's rule (alpha, then alpha / 2) from the learner's own alpha; an empty
    sequence of step sizes is refused."""
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), episodes_per_task=2, inner_lr=0.5)
    tasks = learner.sample_tasks(2, seed=0)
    default, default_returns = learner.adapt(tasks, 3, episodes_per_task=2)
    halved, halved_returns = learner.adapt(tasks, 3, step_sizes=(0.5, 0.25), episodes_per_task=2)
    papers, _ = learner.adapt(tasks, 3, step_sizes=(0.1, 0.05), episodes_per_task=2)
    np.testing.assert_array_equal(flat(w.numpy() for w in default), flat(w.numpy() for w in halved))
    np.testing.assert_array_equal(default_returns, halved_returns)
    assert not np.allclose(flat(w.numpy() for w in default), flat(w.numpy() for w in papers))
    for call in (lambda: learner.adapt(tasks, 1, step_sizes=()), lambda: learner.meta_test(tasks, step_sizes=[])):
        with pytest.raises(ValueError, match="step_sizes is empty"):
            call()



def test_checkpoint_round_trip_and_a_mismatched_policy_is_refused(tmp_path):
    algo = _joint(hidden=(8,), meta_batch_size=2, episodes_per_task=2)
    algo.train_iteration()
    path = tmp_path / "pretrained"
    algo.checkpoint(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretrained"]  # no partial file left

    same = _joint(hidden=(8,))
    same.restore(path)
    assert (same.iteration, same.env_steps, same.seconds) == (1, algo.env_steps, pytest.approx(algo.seconds))
    np.testing.assert_array_equal(flat(v.numpy() for v in same.model.trainable_variables),
                                  flat(v.numpy() for v in algo.model.trainable_variables))
    with pytest.raises(ValueError, match="shape"):
        _joint(hidden=(9,)).restore(path)
    with pytest.raises(ValueError, match="another architecture"):
        _joint(hidden=(8, 8)).restore(path)


def test_sampling_is_episodes_or_steps():
    model = gaussian_mlp_policy(2, 2, hidden=(4,))
    with pytest.raises(ValueError, match="sampling must be one of"):
        PolicyLearner(model, sampling="budget")
    algo = _joint(meta_batch_size=2, episodes_per_task=3, seed=3, sampling="steps")
    stats = algo.train_iteration()
    assert stats["accepted"] and 0 < stats["kl"] <= 0.01 * (1 + 1e-6)
    assert 0 < algo.env_steps <= 2 * 3 * 100
