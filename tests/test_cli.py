"""The ``maml`` command: train / evaluate / export / data prepare through click's test
runner (sinusoid at the smoke preset; Omniglot on the tiny fake dataset)."""
import csv
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import fake_omniglot
from maml_tf import presets
from maml_tf.cli import main as maml
from maml_tf.experiments.runs import RunDirectory
from maml_tf.report import schema, tables

SMOKE = presets.SINUSOID["smoke"]


def invoke(*args, env=None):
    return CliRunner().invoke(maml, [str(a) for a in args], env=env, prog_name="maml")


def ok(result):
    assert result.exception is None and result.exit_code == 0, (result.output, result.exception)
    return result


def usage_error(result, *words):
    """click's usage error (exit code 2), no traceback, naming ``words``."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


def logged_epochs(run_dir):
    with open(RunDirectory(run_dir).log_path("maml")) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["export"], ["data"], ["data", "prepare"],
                                     ["reproduce"], ["reproduce", "fig3"], ["reproduce", "fig5"]])
def test_every_command_has_help(command):
    result = ok(invoke(*command, "--help"))
    assert result.output.startswith("Usage: maml") and "--help" in result.output


@pytest.mark.parametrize("args, words", [
    (["train", "cifar"], ["cifar", "sinusoid", "omniglot"]),
    (["train", "omniglot", "--setting", "7way1shot", "--preset", "smoke"], ["--setting", "20way1shot"]),
    (["train", "omniglot", "--preset", "smoke"], ["--setting", "pass one"]),
    (["train", "omniglot", "--setting", "5way1shot", "--preset", "huge"], ["--preset", "huge", "quick"]),
    (["train", "sinusoid", "--preset", "huge"], ["--preset", "huge", "smoke"]),
    (["train", "sinusoid", "--setting", "5way1shot"], ["sinusoid has no --setting"]),
    (["train", "sinusoid", "--strategy", "tpu"], ["--strategy", "mirrored"]),
    (["train", "sinusoid", "--time-limit", "-1"], ["--time-limit"]),
    (["evaluate", "--tasks", "0", "somewhere"], ["--tasks"]),
    (["train", "navigation", "--preset", "huge"], ["--preset", "huge", "smoke"]),
    (["train", "sinusoid", "--method", "reptile"], ["--method", "reptile", "oracle"]),
    (["reproduce", "fig5", "--preset", "smoke"], ["--task", "cheetah-vel"]),
    (["reproduce", "fig3", "--preset", "huge"], ["--preset", "huge"]),
    (["reproduce", "table1-omniglot", "--preset", "smoke", "--task-parallelism", "fast"], ["--task-parallelism"]),
    (["reproduce", "fig4-step-sizes", "--until", "3"], ["trains nothing"]),
])
def test_invalid_options_are_usage_errors_before_any_work(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    usage_error(invoke(*args), *words)
    assert os.listdir(tmp_path) == []  # nothing was started


def test_evaluate_and_export_need_a_run_directory(tmp_path):
    usage_error(invoke("evaluate", tmp_path), "not a run directory", "maml train")
    usage_error(invoke("export", tmp_path, tmp_path / "out"), "not a run directory")


def test_multi_worker_without_tf_config_is_a_clean_error(tmp_path):
    result = invoke("train", "sinusoid", "--preset", "smoke", "--strategy", "multi-worker",
                    "--run-dir", tmp_path / "run", env={"TF_CONFIG": ""})
    assert result.exit_code == 1 and "TF_CONFIG" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    """A smoke sinusoid run stopped after its first epoch by --time-limit 0, then resumed."""
    run_dir = tmp_path_factory.mktemp("cli") / "sine"
    first = ok(invoke("train", "sinusoid", "--preset", "smoke", "--run-dir", run_dir,
                      "--time-limit", "0", "--verbose", "0"))
    stopped_epochs = logged_epochs(run_dir)
    finished_before = RunDirectory(run_dir).iteration("maml") >= SMOKE.iterations
    second = ok(invoke("train", "sinusoid", "--preset", "smoke", "--run-dir", run_dir, "--verbose", "0"))
    return run_dir, first, second, stopped_epochs, finished_before


@pytest.mark.slow
def test_train_stops_at_time_limit_then_resumes(sine_run):
    run_dir, first, second, stopped_epochs, finished_before = sine_run
    assert "stopped at a checkpoint" in first.output and stopped_epochs == [0]
    assert not finished_before
    assert "finished" in second.output
    assert logged_epochs(run_dir) == list(range(SMOKE.epochs))  # resumed, nothing redone


@pytest.mark.slow
def test_run_directory_contents(sine_run):
    run_dir = sine_run[0]
    config = RunDirectory(run_dir).record()
    assert (config["experiment"], config["preset"]) == ("sinusoid", "smoke")
    assert config["hyperparameters"]["iterations"] == SMOKE.iterations
    assert config["hyperparameters"]["hidden"] == list(SMOKE.hidden)
    events = [f for _, _, files in os.walk(run_dir / "tensorboard") for f in files]
    assert any(f.startswith("events.out.tfevents") for f in events)
    with open(run_dir / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["schema_version"] == 2 and metrics["experiment"] == "fig3_sinusoid"
    rows = {row["setting"]: row for row in metrics["rows"]}
    assert set(rows) == {f"K{shots}" for shots in SMOKE.eval_shots}
    for row in rows.values():
        curve = row["metric"]["mean"]
        assert row["method"] == "maml" and row["budget"]["iterations"] == SMOKE.iterations
        assert len(curve) == SMOKE.eval_inner_steps + 1 and all(np.isfinite(curve))
    assert rows["K5"]["paper"]["mean"] == [0.67, 0.38, 0.35]
    assert metrics["machine"]["cores"] >= 1 and metrics["command"]
    table = tables.markdown(schema.load(run_dir / "metrics.json"))  # the reproduce scripts' renderer
    assert "| 5 | maml |" in table and "0.67 / 0.38 / 0.35" in table


@pytest.mark.slow
def test_evaluate_rescoring_a_run(sine_run):
    run_dir = sine_run[0]
    result = ok(invoke("evaluate", run_dir, "--tasks", "20"))
    assert "meta-test MSE K5" in result.output
    with open(run_dir / "metrics.json") as f:
        assert {row["metric"]["tasks"] for row in json.load(f)["rows"]} == {20}


@pytest.mark.slow
def test_export_adapts_a_new_task(sine_run, tmp_path):
    run_dir = sine_run[0]
    out = tmp_path / "model" / "1"
    result = ok(invoke("export", run_dir, out, "--steps", "5"))
    assert "SavedModel in" in result.output
    loaded = tf.saved_model.load(str(out))
    assert int(loaded.inner_steps.numpy()) == 5
    x = np.linspace(-5, 5, 10, dtype=np.float32)[:, None]
    y = 3.0 * np.sin(x - 1.0)
    before = loaded.signatures["predict"](x=tf.constant(x))["predictions"].numpy()
    after = loaded.signatures["adapt_and_predict"](
        support_x=tf.constant(x), support_y=tf.constant(y), query_x=tf.constant(x))["predictions"].numpy()
    assert np.mean((after - y) ** 2) < np.mean((before - y) ** 2)
    usage_error(invoke("export", run_dir, out), "not empty")


# ----------------------------------------------------------------------------- Omniglot
@pytest.fixture(scope="module")
def fake_omniglot_dir(tmp_path_factory):
    fake = fake_omniglot.write_source(str(tmp_path_factory.mktemp("source")),
                                      background=(6, 6), evaluation=(4,))
    with pytest.MonkeyPatch.context() as mp:
        fake_omniglot.patch(mp, fake, {"train": 6, "validation": 5, "test": 5})
        data_dir = str(tmp_path_factory.mktemp("tfds"))
        ok(invoke("data", "prepare", "omniglot", "--from", fake["source"], "--data-dir", data_dir))
        yield data_dir


@pytest.mark.slow
def test_train_omniglot_setting(fake_omniglot_dir, tmp_path):
    run_dir = tmp_path / "omniglot"
    result = ok(invoke("train", "omniglot", "--preset", "smoke", "--setting", "5way1shot_fo",
                       "--strategy", "mirrored", "--data-dir", fake_omniglot_dir, "--run-dir", run_dir,
                       "--verbose", "0"))
    assert "finished" in result.output and "meta-test accuracy" in result.output
    config = RunDirectory(run_dir).record()
    assert config["hyperparameters"]["first_order"] is True and config["setting"] == "5way1shot_fo"
    with open(run_dir / "metrics.json") as f:
        metrics = json.load(f)
    smoke = presets.classification(presets.OMNIGLOT, "5way1shot_fo", "smoke")
    [row] = metrics["rows"]
    accuracy = row["metric"]["mean"]
    assert row["metric"]["tasks"] == smoke.eval_tasks and 0.0 <= accuracy[smoke.eval_inner_steps] <= 100.0
    assert len(accuracy) == max(smoke.curve_steps, smoke.eval_inner_steps) + 1
    assert (row["setting"], row["method"], row["preset"]) == ("5way1shot_fo", "first-order MAML", "smoke")
    assert row["budget"]["iterations"] == smoke.iterations


def test_train_omniglot_without_the_dataset(tmp_path):
    result = invoke("train", "omniglot", "--preset", "smoke", "--setting", "5way1shot",
                    "--data-dir", tmp_path / "empty", "--run-dir", tmp_path / "run")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "maml data prepare omniglot" in result.output


@pytest.mark.parametrize("corrupt", [
    lambda c: "{not json",
    lambda c: json.dumps({**c, "hyperparameters": {**c["hyperparameters"], "no_such_field": 1}}),
    lambda c: json.dumps({k: v for k, v in c.items() if k != "hyperparameters"}),
])
def test_a_config_this_version_cannot_read_is_a_usage_error(tmp_path, corrupt):
    config = {"experiment": "sinusoid", "hyperparameters": dataclasses.asdict(SMOKE)}
    (tmp_path / "run.json").write_text(corrupt(config))
    usage_error(invoke("evaluate", tmp_path), "run.json", "new run directory")


@pytest.mark.slow
def test_a_diverging_run_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setitem(presets.SINUSOID, "smoke", dataclasses.replace(SMOKE, inner_lr=1e30))
    result = invoke("train", "sinusoid", "--preset", "smoke", "--run-dir", tmp_path / "run", "--verbose", "0")
    assert result.exit_code == 1, (result.output, result.exception)
    assert "lower inner_lr" in result.output and str(tmp_path / "run") in result.output
    assert "Traceback" not in result.output and "node" not in result.output


def test_maml_help_does_not_import_tensorflow():
    """The front door answers in about a second: TensorFlow loads only when a command runs."""
    import subprocess
    import sys
    code = "import sys; from maml_tf.cli import main; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    assert out.stdout.strip() == "False", out.stderr


def run_maml(*args, **env):
    """``maml ARGS`` in a fresh process (the real stderr, which CliRunner does not see)."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "maml_tf.cli", *args], capture_output=True, text=True,
                          env={**environment, "PYTHONPATH": root, **env})


def test_commands_start_without_tensorflow_noise_unless_asked(tmp_path):
    """TensorFlow's C++ start-up lines (CUDA probe, oneDNN notice) stay off a command's output,
    but TF_CPP_MIN_LOG_LEVEL set by the user brings them back."""
    quiet = run_maml("evaluate", str(tmp_path))
    assert quiet.returncode == 2 and "is not a run directory" in quiet.stderr
    assert quiet.stderr.startswith("Usage: "), quiet.stderr
    asked = run_maml("evaluate", str(tmp_path), TF_CPP_MIN_LOG_LEVEL="0")
    assert "is not a run directory" in asked.stderr
    assert "cpu_feature_guard" in asked.stderr or "absl::InitializeLog" in asked.stderr, asked.stderr


def test_the_default_run_directory_is_where_the_committed_checkpoints_are():
    from maml_tf.experiments import registry
    assert registry.default_run_dir("omniglot", "paper", "5way1shot") == os.path.join(
        "checkpoints", "table1_omniglot", "paper", "5way1shot")
    assert registry.default_run_dir("navigation", "code") == os.path.join("checkpoints", "fig4_navigation", "code")
    assert registry.default_run_dir("cheetah-vel", "paper") == os.path.join("checkpoints", "fig5_cheetah_vel", "paper")
    # every committed result is one the registry's targets write (so they are found again)
    written = {registry.result_name(registry.TARGETS[t].result_name.format(experiment=e), p)
               for t in registry.TARGETS for e in registry.TARGETS[t].experiments for p in registry.preset_names(e)}
    written |= {registry.result_name("table1_miniimagenet_synthetic", p) for p in registry.preset_names("mini_imagenet")}
    written |= {s.result_name + suffix for s in registry.STUDIES.values() for suffix in ("", "_quick", "_smoke")}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert set(os.listdir(os.path.join(repo, "results"))) <= written


# ----------------------------------------------------------------------------- the experiment interface
def test_a_deadline_is_checked_not_timed():
    from maml_tf.experiments.base import Deadline
    assert not Deadline().passed() and Deadline(0).passed() and not Deadline.of(1).passed()
    same = Deadline(60)
    assert Deadline.of(same) is same  # a target shares one deadline over its methods


def test_progress_and_epochs_until():
    from maml_tf.experiments.base import Progress, epochs_until
    assert Progress({"maml": 20, "oracle": 20}, 20).finished and not Progress({"maml": 20, "oracle": 10}, 20).finished
    smoke = presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")  # 20 iterations, 10 per epoch
    assert [epochs_until(smoke, u) for u in (None, 0, 1, 10, 11, 500)] == [2, 0, 1, 1, 2, 2]


def test_the_registry_builds_every_experiment_without_training(tmp_path):
    from maml_tf.experiments import registry
    kinds = {name: registry.create(name, "smoke", registry.settings(name)[0] if registry.settings(name) else None,
                                   run_dir=tmp_path / name).KIND for name in registry.EXPERIMENTS}
    assert kinds == {"sinusoid": "regression", "omniglot": "classification", "mini_imagenet": "classification",
                     **dict.fromkeys(["navigation", "cheetah-vel", "cheetah-dir", "ant-vel", "ant-dir"], "rl")}
    assert os.listdir(tmp_path) == []  # building writes nothing


def test_rl_refuses_a_distribution_strategy(tmp_path):
    result = invoke("train", "navigation", "--preset", "smoke", "--run-dir", tmp_path / "nav", "--strategy", "mirrored")
    assert result.exit_code == 1 and "one device" in result.output and "Traceback" not in result.output


def test_sampling_workers_are_for_rl_and_positive(tmp_path):
    result = invoke("train", "sinusoid", "--preset", "smoke", "--run-dir", tmp_path / "sine", "--sampling-workers", "2")
    assert result.exit_code != 0 and "--sampling-workers is for the RL experiments" in result.output
    assert "Traceback" not in result.output
    result = invoke("train", "navigation", "--preset", "smoke", "--run-dir", tmp_path / "nav", "--sampling-workers", "0")
    assert result.exit_code == 2 and "--sampling-workers" in result.output
    assert not os.path.exists(tmp_path / "sine") and not os.path.exists(tmp_path / "nav")



def test_train_with_another_seed(tmp_path, monkeypatch):
    """--seed trains another run (other initial weights) into its own default directory, recorded in
    run.json; a directory trained with one seed refuses to resume with another."""
    from maml_tf.experiments import registry
    monkeypatch.setattr(registry, "RUN_ROOT", str(tmp_path))
    ok(invoke("train", "navigation", "--preset", "smoke", "--until", "1"))
    ok(invoke("train", "navigation", "--preset", "smoke", "--until", "1", "--seed", "3"))
    runs = {name: json.load(open(tmp_path / "fig4_navigation" / name / "run.json")) for name in ("smoke", "smoke_seed3")}
    assert [runs[n]["hyperparameters"].get("seed", 0) for n in ("smoke", "smoke_seed3")] == [0, 3]
    weights = [registry.open(str(tmp_path / "fig4_navigation" / n)).learners()["maml"].model.get_weights()[0]
               for n in ("smoke", "smoke_seed3")]
    assert not np.allclose(*weights)
    result = invoke("train", "navigation", "--preset", "smoke", "--until", "2", "--seed", "4",
                    "--run-dir", tmp_path / "fig4_navigation" / "smoke_seed3")
    assert result.exit_code != 0 and "seed: 3 there, 4 now" in result.output and "Traceback" not in result.output
    assert invoke("train", "navigation", "--preset", "smoke", "--seed", "-1").exit_code == 2


def test_reproduce_fig5_passes_sampling_workers_to_the_preset(tmp_path, monkeypatch):
    from maml_tf.experiments import registry
    made = {}

    def create(experiment, preset_name, **kwargs):
        made.update(experiment=experiment, **kwargs)
        raise registry.UsageProblem("stop here")

    monkeypatch.setattr(registry, "create", create)
    result = invoke("reproduce", "fig5", "--task", "cheetah-dir", "--preset", "authors",
                    "--run-dir", tmp_path / "run", "--sampling-workers", "2")
    assert result.exit_code != 0 and "stop here" in result.output
    assert made["experiment"] == "cheetah-dir" and made["sampling_workers"] == 2
    result = invoke("reproduce", "fig4", "--preset", "smoke", "--run-dir", tmp_path / "nav", "--sampling-workers", "0")
    assert result.exit_code == 2 and "--sampling-workers" in result.output and not os.path.exists(tmp_path / "nav")

@pytest.fixture(scope="module")
def navigation_run(tmp_path_factory):
    """`maml train navigation --until 1`, `maml evaluate` of it, then `maml reproduce fig4` on the
    same run directory (which resumes MAML and trains the baselines to the same --until)."""
    base = tmp_path_factory.mktemp("navigation")
    run_dir, out = base / "run", base / "results"
    trained = ok(invoke("train", "navigation", "--preset", "smoke", "--run-dir", run_dir, "--until", "1"))
    evaluated = ok(invoke("evaluate", run_dir))
    reproduced = ok(invoke("reproduce", "fig4", "--preset", "smoke", "--run-dir", run_dir, "--out", out,
                           "--until", "1", "--verbose", "0"))
    return run_dir, out, trained, evaluated, reproduced


@pytest.mark.slow
def test_rl_train_until_stops_at_a_checkpoint_and_evaluates(navigation_run):
    run_dir, _, trained, evaluated, _ = navigation_run
    assert "[maml] iteration 1/" in trained.output and "stopped at a checkpoint" in trained.output
    assert "meta-test return" in evaluated.output
    [row] = schema.load(run_dir / "metrics.json")["rows"]
    assert (row["experiment"], row["method"], row["budget"]["iterations"]) == ("fig4_navigation", "maml", 1)
    assert len(row["metric"]["mean"]) == presets.NAVIGATION["smoke"].eval_inner_steps + 1


@pytest.mark.slow
def test_reproduce_resumes_the_run_maml_train_made(navigation_run):
    run_dir, out, _, _, reproduced = navigation_run
    rows = {r["method"]: r for r in schema.load(out / "metrics.json")["rows"]}
    assert {m: r["budget"].get("iterations") for m, r in rows.items()} == {
        "maml": 1, "pretrained": 1, "random": None, "oracle": 1}
    assert [h["to_iteration"] for h in RunDirectory(run_dir).training_history("maml")] == [1]  # not retrained
    assert (out / "fig4_paths.png").exists() and "stopped before" in reproduced.output


@pytest.mark.slow
def test_reproduce_fig3_resumes_the_run_maml_train_made(sine_run, tmp_path):
    """`maml reproduce fig3` on a copy of the `maml train sinusoid` run: MAML is not trained again,
    the baselines are trained beside it, and the figure's results cover all three."""
    import shutil
    run_dir = tmp_path / "sine"
    shutil.copytree(sine_run[0], run_dir)
    history = RunDirectory(run_dir).training_history("maml")
    ok(invoke("reproduce", "fig3", "--preset", "smoke", "--run-dir", run_dir, "--out", tmp_path / "out",
              "--verbose", "0"))
    assert RunDirectory(run_dir).training_history("maml") == history
    assert {RunDirectory(run_dir).iteration(m) for m in ("maml", "pretrained", "oracle")} == {SMOKE.iterations}
    doc = schema.load(tmp_path / "out" / "metrics.json")
    assert {r["method"] for r in doc["rows"]} == {"maml", "pretrained", "oracle"}
    assert (tmp_path / "out" / "fig2_examples.png").exists()


@pytest.mark.parametrize("study", ["first-order", "task-switching", "evaluation-suite"])
def test_a_study_refuses_an_unknown_preset_before_any_work(study, tmp_path):
    from maml_tf.experiments import registry
    result = invoke("study", study, "--preset", "paper", "--run-dir", tmp_path / "run", "--out", tmp_path / "out")
    usage_error(result, "'paper' is not a preset of study", *registry.study(study).PRESETS)
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_every_registered_study_has_a_command_presets_and_a_summary():
    from maml_tf.experiments import registry
    for name in registry.STUDIES:
        module = registry.study(name)
        assert {"full", "smoke"} <= set(module.PRESETS) and callable(module.run) and callable(module.summary)
        assert name in ok(invoke("study", "--help")).output
