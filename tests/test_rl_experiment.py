"""maml_tf.experiments.rl (Section 5.3): the four methods built from a preset, and
training that checkpoints every iteration, stops at a deadline and resumes."""
import dataclasses
import os

import numpy as np
import pytest

from maml_tf import presets
from maml_tf.experiments import rl
from maml_tf.experiments.base import Deadline
from maml_tf.experiments.runs import RunDirectory, RunDirectoryMismatch
from maml_tf.models.policy import gaussian_mlp_policy
from maml_tf.rl.envs import Navigation2D
from maml_tf.rl.joint_trpo import JointTRPO
from maml_tf.rl.learner import CheckpointMismatch, PolicyLearner
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
    with pytest.raises(ValueError, match="^method must be one of maml, pretrained, random, oracle, got 'reptile'\\.$"):
        rl.build(preset, "reptile")


@pytest.mark.slow
def test_training_stops_at_the_deadline_and_resumes_from_the_checkpoint(tmp_path):
    stopped = rl.train(SMOKE, "pretrained", tmp_path, deadline=Deadline(0))
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
    assert "movement" not in result  # navigation: no robot to measure


def test_the_fixed_test_tasks_do_not_change():
    """Every result is meta-tested on them: how they are drawn must not move them."""
    nav = rl.test_tasks(presets.NAVIGATION["paper"])
    np.testing.assert_array_equal(nav[0]["goal"], [0.016690402330462484, -0.07630084748356925])
    np.testing.assert_array_equal(nav[2]["goal"], [-0.33009269497349625, 0.2863194711504502])
    np.testing.assert_array_equal(rl.validation_tasks(presets.NAVIGATION["paper"])[0]["goal"],
                                  [0.0267894269808705, 0.4019985475588723])
    vel = rl.test_tasks(presets.LOCOMOTION["cheetah-vel"]["paper"])
    assert [t["velocity"] for t in vel[:3]] == [1.033380804660925, 0.8473983050328615, 1.1485513544627934]
    directions = rl.test_tasks(presets.LOCOMOTION["cheetah-dir"]["paper"])
    assert [t["direction"] for t in directions[:10]] == [-1, 1, -1, -1, 1, 1, 1, -1, -1, -1]
    assert len(nav) == len(vel) == len(directions) == 40


def test_environments_built_to_draw_tasks_are_closed(monkeypatch):
    closed = []
    monkeypatch.setattr(Navigation2D, "close", lambda self: closed.append(self.batch_size))
    rl.test_tasks(SMOKE), rl.validation_tasks(SMOKE)
    learner = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(4,)))  # checks the policy on a probe
    learner.sample_tasks(3, seed=0)
    assert closed == [None] * 4


def test_a_checkpoint_dir_keeps_to_its_settings_but_not_to_its_budget(tmp_path):
    rl.train(SMOKE, "pretrained", tmp_path, until=0)  # records the preset, trains nothing
    assert RunDirectory(tmp_path).record()["hyperparameters"]["iterations"] == SMOKE.iterations
    budget = dataclasses.replace(SMOKE, name="other", iterations=5, eval_tasks=7, eval_episodes_per_task=3,
                                 eval_inner_steps=1, test_step_sizes=(0.3,),
                                 method_test_step_sizes=(("random", (1.0,)),))
    rl.train(budget, "pretrained", tmp_path, until=0)
    with pytest.raises(RunDirectoryMismatch, match=r"seed: 0 there, 1 now.*\(--run-dir\)"):
        rl.train(dataclasses.replace(SMOKE, seed=1), "random", tmp_path)
    assert set(rl.FREE_FIELDS) < {field.name for field in dataclasses.fields(presets.RLPreset)}


def test_a_stopped_run_keeps_one_checkpoint_and_another_policy_is_refused(tmp_path):
    trained = rl.train(SMOKE, "pretrained", tmp_path, until=2)
    part = rl.checkpoint_path(tmp_path, "pretrained")
    assert sorted(os.listdir(part)) == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "log.csv"]
    loaded = rl.load(SMOKE, "pretrained", tmp_path)
    assert (loaded.iteration, loaded.env_steps, loaded.seconds) == (2, trained.env_steps, trained.seconds)
    for a, b in zip(trained.model.trainable_variables, loaded.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    narrower = dataclasses.replace(SMOKE, hidden=(8, 8))
    with pytest.raises(CheckpointMismatch, match="shape"):
        rl.build(narrower, "pretrained").restore(part)
    with pytest.raises(RunDirectoryMismatch, match=r"hidden: \[100, 100\] there, \[8, 8\] now"):
        rl.load(narrower, "pretrained", tmp_path)


def test_a_drawn_path_ends_where_the_first_episode_ended():
    """Task 0 terminates at its third step (its state frozen after it), task 1 runs the
    horizon of 5: the paths include the state after the last move. With restarts, the
    state after a terminating move is the next episode's start, so the path stops before."""
    observations = np.array([[0, 1, 2, 3, 3], [5, 6, 7, 8, 9]], float).reshape(2, 1, 5, 1)
    samples = {"observations": observations, "final_observations": np.array([3.0, 10.0]).reshape(2, 1, 1),
               "ends": np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]], float).reshape(2, 1, 5)}
    np.testing.assert_array_equal(rl._first_episode(samples)[..., 0], [[0, 1, 2, 3, 3, 3], [5, 6, 7, 8, 9, 10]])
    restarted = dict(samples, observations=np.array([[0, 1, 2, 0, 1], [5, 6, 7, 8, 9]], float).reshape(2, 1, 5, 1),
                     final_observations=np.array([2.0, 10.0]).reshape(2, 1, 1))
    np.testing.assert_array_equal(rl._first_episode(restarted, restarts=True)[..., 0],
                                  [[0, 1, 2, 2, 2, 2], [5, 6, 7, 8, 9, 9]])


# ----------------------------------------------------------------------------- the authors' setup (issue 32)
RLLAB_OPTIONS = (("observation", "rllab"), ("velocity", "com"), ("reset_noise", "rllab"))


@pytest.mark.parametrize("env, table, changes", [
    ("cheetah-dir", presets.LOCOMOTION["cheetah-dir"], {"env_options": RLLAB_OPTIONS, "eval_task_source": "authors"}),
    ("navigation", presets.NAVIGATION, {"eval_sampling": "complete", "eval_task_source": "authors"})])
def test_the_authors_preset_is_the_code_preset_with_the_authors_environment_or_test(env, table, changes):
    from maml_tf.experiments import registry
    code, authors = (dataclasses.asdict(registry.preset(env, n)) for n in ("code", "authors"))
    assert {k: authors[k] for k in code if code[k] != authors[k]} == {"name": "authors", **changes}
    assert registry.result_name(env, "authors") == f"{registry.EXPERIMENTS[env].result_name}_authors"
    assert registry.default_run_dir(env, "authors").endswith(os.path.join("authors"))
    with pytest.raises(registry.UsageProblem, match="'authors' is not a preset of ant-dir"):
        registry.preset("ant-dir", "authors")
    with pytest.raises(ValueError, match="eval_task_source must be one of seeded, authors, got 'paper'"):
        dataclasses.replace(table["code"], eval_task_source="paper")


def test_authors_exact_is_the_authors_preset_with_exact_products():
    from maml_tf.experiments import registry
    authors, exact = (dataclasses.asdict(registry.preset("cheetah-dir", n)) for n in ("authors", "authors_exact"))
    assert {k: exact[k] for k in authors if authors[k] != exact[k]} == {"name": "authors_exact", "hvp": "exact",
                                                                           "iterations": 500}
    assert rl.build(presets.LOCOMOTION["cheetah-dir"]["authors_exact"], "maml").hvp == "exact"
    assert registry.result_name("cheetah-dir", "authors_exact") == "fig5_cheetah_dir_authors_exact"


def test_code_exact_differs_from_authors_exact_in_the_environment_alone():
    from maml_tf.experiments import registry
    code, authors = (dataclasses.asdict(registry.preset("cheetah-dir", n)) for n in ("code_exact", "authors_exact"))
    assert {k for k in code if code[k] != authors[k]} == {"name", "env_options"}
    assert code["env_options"] == () and code["eval_task_source"] == "authors" and code["max_kl"] == 0.02
    with pytest.raises(registry.UsageProblem, match="not a preset of ant-dir"):
        registry.preset("ant-dir", "code_exact")


def test_runs_recorded_before_the_authors_options_read_as_before(tmp_path):
    """A record written before env_options / eval_sampling / eval_task_source existed (the
    committed code runs) is the same preset; the new fields stay out of records at their
    defaults; an evaluation-only change (the navigation authors preset) may reuse a code run
    directory, an environment change (cheetah-dir authors) may not."""
    from maml_tf.experiments.runs import preset_of, record_of
    for env, table in (("cheetah-dir", presets.LOCOMOTION["cheetah-dir"]), ("navigation", presets.NAVIGATION)):
        code = table["code"]
        record = record_of(env, code)
        assert not {"env_options", "eval_sampling", "eval_task_source"} & set(record["hyperparameters"])
        assert preset_of(record) == code
        run = RunDirectory(tmp_path / env)
        run.start(env, code, rl.FREE_FIELDS)
        if env == "navigation":
            run.check(env, table["authors"], rl.FREE_FIELDS)
        else:
            with pytest.raises(RunDirectoryMismatch, match=r"env_options: \[\] there"):
                run.check(env, table["authors"], rl.FREE_FIELDS)
    authors = record_of("cheetah-dir", presets.LOCOMOTION["cheetah-dir"]["authors"])
    assert preset_of(authors) == presets.LOCOMOTION["cheetah-dir"]["authors"]


def test_the_stream_presets_are_code_and_authors_with_the_authors_training_sampler(tmp_path):
    """code_stream / authors_stream change only the sampler (issue 32); a code_stream run may be
    meta-tested with the authors' protocol (authors_stream), not scored as a "steps" run."""
    for base, stream in (("code", "code_stream"), ("authors", "authors_stream")):
        a, b = (dataclasses.asdict(presets.NAVIGATION[n]) for n in (base, stream))
        assert {k: b[k] for k in a if a[k] != b[k]} == {"name": stream, "sampling": "stream"}
    assert rl.build(presets.NAVIGATION["code_stream"], "maml").sampling == "stream"
    run = RunDirectory(tmp_path)
    run.start("navigation", presets.NAVIGATION["code_stream"], rl.FREE_FIELDS)
    run.check("navigation", presets.NAVIGATION["authors_stream"], rl.FREE_FIELDS)
    with pytest.raises(RunDirectoryMismatch, match="sampling: 'stream' there, 'steps' now"):
        run.check("navigation", presets.NAVIGATION["authors"], rl.FREE_FIELDS)
    with pytest.raises(ValueError, match="^sampling must be one of episodes, steps, complete, stream, got 'flow'.$"):
        rl.build(dataclasses.replace(presets.NAVIGATION["code_stream"], sampling="flow"), "maml")


def test_authors_test_tasks_and_per_direction_returns():
    nav = dataclasses.replace(SMOKE, eval_task_source="authors")
    np.random.seed(1)
    np.testing.assert_array_equal([t["goal"] for t in rl.test_tasks(nav)], np.random.uniform(-0.5, 0.5, (3, 2)))
    tasks = [{"direction": d} for d in (1.0, -1.0, 1.0)]
    assert rl.per_direction(tasks, [[1.0, 2.0], [5.0, 6.0], [3.0, 4.0]]) == {
        "forward": {"tasks": 2, "mean": [2.0, 3.0]}, "backward": {"tasks": 1, "mean": [5.0, 6.0]}}
    assert rl.per_direction([{"goal": (0, 0)}], [[1.0]]) is None


def test_episode_totals_split_restarting_rows_and_movement_splits_by_direction():
    from maml_tf.rl.learner import episode_totals
    # One task, two rows of 6 steps: episodes end at steps 1 and 4 of row 0 (step 5 unfinished:
    # not valid), and at the last step of row 1 (one whole episode).
    values = np.array([[[1.0, 2.0, 4.0, 8.0, 16.0, 32.0], [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0]]])
    valid = np.array([[[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]], float)
    ends = np.array([[[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]], float)
    (totals,) = episode_totals(values, valid, ends)
    np.testing.assert_array_equal(totals, [3.0, 28.0, -6.0])
    tasks = [{"direction": d} for d in (1.0, -1.0, 1.0)]
    moved = {"displacement": [[1.0, 4.0], [2.0, -6.0], [-3.0, 8.0]], "distance": [[1.0, 4.0], [2.0, 6.0], [3.0, 8.0]],
             "forward": [[1.0, 1.0], [0.5, 0.0], [0.0, 1.0]]}
    split = rl.movement(tasks, moved)
    assert split["all"] == {"tasks": 3, "displacement": [0.0, 2.0], "distance": [2.0, 6.0], "forward": [0.5, 2 / 3]}
    assert split["forward"] == {"tasks": 2, "displacement": [-1.0, 6.0], "distance": [2.0, 6.0], "forward": [0.5, 1.0]}
    assert split["backward"] == {"tasks": 1, "displacement": [2.0, -6.0], "distance": [2.0, 6.0],
                                 "forward": [0.5, 0.0]}
    assert list(rl.movement([{"velocity": 1.0}], {"displacement": [[1.0]]})) == ["all"]


def test_measuring_the_movement_leaves_the_meta_test_returns_as_they_were():
    """The displacement comes from the episodes the returns are scored on, and measuring it
    changes none of them (same seeds, same returns to the bit)."""
    preset = dataclasses.replace(presets.get(presets.LOCOMOTION["cheetah-dir"], "smoke"), eval_tasks=2,
                                 eval_episodes_per_task=2, eval_inner_steps=1, hidden=(8,))
    learner, tasks = rl.build(preset, "random"), rl.test_tasks(preset)
    result = rl.meta_test(preset, learner, tasks, preset.step_sizes("random"))
    plain = learner.meta_test(tasks, steps=1, episodes_per_task=2, step_sizes=preset.step_sizes("random"),
                              seed=preset.seed, sampling=preset.eval_sampling)
    np.testing.assert_array_equal(result["per_task"], plain)
    moved = result["movement"]["all"]
    assert moved["tasks"] == 2 and all(len(moved[k]) == 2 for k in ("displacement", "distance", "forward"))
    assert all(d >= abs(s) - 1e-12 for d, s in zip(moved["distance"], moved["displacement"]))
    assert set(result["movement"]) == {"all", "forward", "backward"}


@pytest.mark.slow
def test_a_two_iteration_run_of_the_cheetah_authors_preset_writes_its_run_directory(tmp_path):
    """The authors preset at a smoke-sized batch: MAML's policy sees rllab's 20 numbers, the
    run directory records the environment options, the rows give per-direction returns."""
    from maml_tf.experiments import registry
    from maml_tf.report import tables
    run = registry.create("cheetah-dir", "authors", run_dir=tmp_path, methods=["maml"], iterations=2,
                          meta_batch_size=2, episodes_per_task=2, eval_tasks=3, eval_episodes_per_task=2,
                          eval_inner_steps=1)
    progress = run.train()
    assert progress.iterations == {"maml": 2}
    record = RunDirectory(tmp_path).record()
    assert record["preset"] == "authors"
    assert record["hyperparameters"]["env_options"] == [list(pair) for pair in RLLAB_OPTIONS]
    learner = run.learners()["maml"]
    assert learner.model.input_shape[-1] == 20 and learner.env_kwargs == dict(RLLAB_OPTIONS)
    doc = run.document(run.evaluate())
    (row,) = doc["rows"]
    assert row["per_direction"]["forward"]["tasks"] + row["per_direction"]["backward"]["tasks"] == 3
    assert row["per_direction"]["backward"]["tasks"] == 2  # the authors' first three directions: -, +, -
    assert "observation rllab (20 numbers), velocity com, reset noise rllab" in doc["environment"]
    page = tables.markdown(doc)
    assert "Per direction" in page and "the test tasks are the authors' test script's" in page
    assert row["movement"]["backward"]["tasks"] == 2 and doc["test_directions"] == [-1.0, 1.0, -1.0]
    assert "Pre-update policy (0 steps): maml moves" in page


def test_scoring_a_finished_run_with_another_meta_test_leaves_its_record(tmp_path):
    """``--preset authors`` on navigation's code run directory trains nothing and must not
    rewrite the run's record (the committed checkpoints stay as they are)."""
    rl.train(SMOKE, "pretrained", tmp_path)
    before = (tmp_path / "run.json").read_text()
    authors = dataclasses.replace(SMOKE, name="authors", eval_sampling="complete", eval_task_source="authors")
    assert rl.train(authors, "pretrained", tmp_path).iteration == SMOKE.iterations
    assert (tmp_path / "run.json").read_text() == before
    more = dataclasses.replace(SMOKE, iterations=SMOKE.iterations + 1)
    rl.train(more, "pretrained", tmp_path)  # a longer budget trains on and records it
    assert RunDirectory(tmp_path).record()["hyperparameters"]["iterations"] == SMOKE.iterations + 1


def test_every_ant_preset_steps_rllabs_ant_physics():
    """rllab's ant.xml physics (physics="rllab": one step of 0.02 per action) in every ant
    preset, in every method's environment and in the result's environment note; the
    cheetah presets keep gymnasium's (their robots offer no other)."""
    for env in ("ant-vel", "ant-dir"):
        for name, preset in presets.LOCOMOTION[env].items():
            assert dict(preset.env_options) == {"physics": "rllab"}, (env, name)
    for env in ("cheetah-vel", "cheetah-dir"):
        assert all("physics" not in dict(p.env_options) for p in presets.LOCOMOTION[env].values())
    smoke = presets.LOCOMOTION["ant-dir"]["smoke"]
    for method in rl.METHODS:
        robot = rl.build(smoke, method)._make_env()
        assert (robot.physics, robot.model.opt.timestep, robot.robot.frame_skip) == ("rllab", 0.02, 1), method
    note = rl.environment_note("ant-dir", smoke.env_options)
    assert "frame_skip 1 (dt 0.02 s)" in note and "physics rllab (MuJoCo step 0.02)" in note
