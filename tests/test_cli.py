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


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["export"], ["data"], ["data", "prepare"]])
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
])
def test_invalid_options_are_usage_errors_before_any_work(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    usage_error(invoke(*args), *words)
    assert not os.path.exists(tmp_path / "runs")  # nothing was started


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
