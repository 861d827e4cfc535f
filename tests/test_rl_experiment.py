"""maml_tf.experiments.rl (Section 5.3): the four methods built from a preset, and
training that checkpoints every iteration, stops at a deadline and resumes."""
import dataclasses
import time

import numpy as np
import pytest

from maml_tf import presets
from maml_tf.experiments import rl
from maml_tf.rl.joint_trpo import JointTRPO
from maml_tf.rl.learner import PolicyLearner
from maml_tf.rl.maml_trpo import MAMLTRPO

SMOKE = presets.get(presets.NAVIGATION, "smoke")


def test_presets_hold_the_papers_settings():
    nav, cheetah = presets.NAVIGATION["paper"], presets.LOCOMOTION["cheetah-vel"]["paper"]
    assert (nav.meta_batch_size, nav.episodes_per_task, nav.iterations) == (20, 20, 500)
    assert (cheetah.meta_batch_size, cheetah.env) == (40, "cheetah-vel")
    assert (nav.inner_lr, nav.max_kl, nav.gamma, nav.hidden) == (0.1, 0.01, 0.99, (100, 100))
    assert (nav.eval_tasks, nav.eval_inner_steps, nav.test_step_sizes) == (40, 3, (0.1, 0.05))
    assert (nav.eval_episodes_per_task, cheetah.eval_episodes_per_task) == (40, 20)
    with pytest.raises(KeyError, match="Unknown preset 'tiny'"):
        presets.get(presets.NAVIGATION, "tiny")


def test_the_code_preset_differs_from_the_paper_only_in_the_authors_step_sizes_hvp_and_sampler():
    paper, code = (dataclasses.asdict(presets.NAVIGATION[n]) for n in ("paper", "code"))
    changed = {k: code[k] for k in paper if paper[k] != code[k]}
    assert changed == {"name": "code", "inner_lr": 0.5, "test_step_sizes": (0.5, 0.25),
                       "hvp": "finite_difference", "sampling": "steps"}
    learners = {m: rl.build(presets.NAVIGATION["code"], m) for m in rl.METHODS}
    assert {m: learner.hvp for m, learner in learners.items() if m in rl.TRAINED} == dict.fromkeys(
        rl.TRAINED, "finite_difference")
    assert {m: learner.sampling for m, learner in learners.items()} == dict.fromkeys(rl.METHODS, "steps")


@pytest.mark.parametrize("env, changes", [
    ("cheetah-vel", {"iterations": 475, "episodes_per_task": 10}),
    ("cheetah-dir", {"iterations": 100, "max_kl": 0.02}),
    ("ant-vel", {"iterations": 375}),
    ("ant-dir", {"iterations": 575, "episodes_per_task": 40, "eval_episodes_per_task": 40})])
def test_locomotion_code_presets_are_the_authors_evaluated_runs(env, changes):
    """The checkpoint names of maml_rl's test scripts, rllab's HVP and per-method test steps."""
    paper, code = (dataclasses.asdict(presets.LOCOMOTION[env][n]) for n in ("paper", "code"))
    changed = {k: code[k] for k in paper if paper[k] != code[k]}
    assert changed.pop("name") == "code" and changed.pop("hvp") == "finite_difference"
    assert changed.pop("sampling") == "steps"
    per_method = dict(changed.pop("method_test_step_sizes"))
    assert changed == changes
    assert set(per_method) == {"maml", "pretrained", "random"}
    assert all(sizes[0] > sizes[1] for sizes in per_method.values())
    preset = presets.LOCOMOTION[env]["code"]
    assert preset.step_sizes("maml") == (0.1, 0.05 if env != "ant-dir" else 0.001)
    assert preset.step_sizes("oracle") == preset.test_step_sizes == (0.1, 0.05)


def test_every_method_fine_tunes_alike_unless_the_preset_says_otherwise():
    nav = presets.NAVIGATION["paper"]
    assert {m: nav.step_sizes(m) for m in rl.METHODS} == dict.fromkeys(rl.METHODS, (0.1, 0.05))
    assert presets.LOCOMOTION["cheetah-dir"]["code"].step_sizes("random") == (1.0, 0.5)


@pytest.mark.parametrize("env, obs_dim", [("navigation", 2), ("cheetah-vel", 17)])
def test_methods_share_the_initial_weights_and_the_oracle_sees_the_task(env, obs_dim):
    preset = presets.get(presets.LOCOMOTION[env] if env != "navigation" else presets.NAVIGATION, "smoke")
    learners = {m: rl.build(preset, m) for m in rl.METHODS}
    assert [type(learners[m]) for m in rl.METHODS] == [MAMLTRPO, JointTRPO, PolicyLearner, JointTRPO]
    inputs = {m: learner.model.input_shape[-1] for m, learner in learners.items()}
    task_dim = 2 if env == "navigation" else 1
    assert inputs == {"maml": obs_dim, "pretrained": obs_dim, "random": obs_dim, "oracle": obs_dim + task_dim}
    for m in ("pretrained", "random"):
        for a, b in zip(learners["maml"].model.trainable_variables, learners[m].model.trainable_variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="Unknown method 'reptile'"):
        rl.build(preset, "reptile")


def test_training_stops_at_the_deadline_and_resumes_from_the_checkpoint(tmp_path):
    stopped = rl.train(SMOKE, "pretrained", tmp_path, deadline=time.time())
    assert stopped.iteration == 0 and rl.training_curve(tmp_path, "pretrained") == []

    def interrupt_after_first(stats):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rl.train(SMOKE, "pretrained", tmp_path, callback=interrupt_after_first)
    seen = []
    resumed = rl.train(SMOKE, "pretrained", tmp_path, callback=seen.append)
    assert [s["iteration"] for s in seen] == list(range(2, SMOKE.iterations + 1))
    assert resumed.iteration == SMOKE.iterations
    assert resumed.env_steps == SMOKE.iterations * SMOKE.meta_batch_size * SMOKE.episodes_per_task * 100
    assert [i for i, _ in rl.training_curve(tmp_path, "pretrained")] == list(range(1, SMOKE.iterations + 1))
    assert rl.train(SMOKE, "oracle", tmp_path, until=1).iteration == 1  # a staged budget
    assert rl.train(SMOKE, "oracle", tmp_path).iteration == SMOKE.iterations
    again = rl.train(SMOKE, "pretrained", tmp_path, callback=seen.append)  # finished: nothing more
    assert again.iteration == SMOKE.iterations and len(seen) == SMOKE.iterations - 1
    assert rl.train(SMOKE, "random", tmp_path).iteration == 0


def test_meta_test_tasks_are_fixed_and_results_have_one_row_per_task():
    tasks = rl.test_tasks(SMOKE)
    np.testing.assert_array_equal([t["goal"] for t in tasks], [t["goal"] for t in rl.test_tasks(SMOKE)])
    result = rl.meta_test(SMOKE, rl.build(SMOKE, "random"), tasks, SMOKE.step_sizes("random"))
    assert np.shape(result["per_task"]) == (SMOKE.eval_tasks, SMOKE.eval_inner_steps + 1)
    assert len(result["mean"]) == len(result["ci95"]) == SMOKE.eval_inner_steps + 1
