"""reproduce/table1_omniglot.py end to end (smoke budget) and ``maml data prepare
omniglot``, on the tiny fake Omniglot of tests/fake_omniglot.py."""
import csv
import dataclasses
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import PNG_MAGIC, load_reproduce_script

import fake_omniglot
from maml_tf import presets
from maml_tf.cli import main as maml_cli
from maml_tf.datasets import omniglot

# 5-way tasks need >= 5 characters in every split: 2 background alphabets x 6
# characters + 1 evaluation alphabet x 4 = 16 = 6 train + 5 validation + 5 test.
BACKGROUND, EVALUATION = (6, 6), (4,)
SPLITS = {"train": 6, "validation": 5, "test": 5}
ROW_KEYS = {"setting", "method", "accuracy", "ci95", "paper", "paper_ci95", "iterations",
            "meta_batch_size", "seconds", "accuracy_per_step", "command"}


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    """(fake source, prepared data dir); the omniglot constants stay patched for the
    module's tests (all of them use the fake)."""
    fake = fake_omniglot.write_source(str(tmp_path_factory.mktemp("omniglot_source")),
                                      background=BACKGROUND, evaluation=EVALUATION)
    with pytest.MonkeyPatch.context() as mp:
        fake_omniglot.patch(mp, fake, SPLITS)
        data_dir = omniglot.prepare(fake["source"], str(tmp_path_factory.mktemp("tfds")))
        omniglot.load_characters(data_dir)
        yield fake, data_dir


def run_script(data_dir, base, *args):
    args = ["--preset", "smoke", "--data-dir", data_dir, "--run-dir", str(base / "runs"),
            "--out", str(base / "results"), "--verbose", "0", *args]
    result = CliRunner().invoke(load_reproduce_script("table1_omniglot").main, args)
    assert result.exception is None, (result.output, result.exception)
    assert result.exit_code == 0, result.output
    with open(base / "results" / "metrics.json") as f:
        return json.load(f), result


def train_log_epochs(setting_dir):
    with open(os.path.join(setting_dir, "train_log.csv")) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def validation_iterations(setting_dir):
    with open(os.path.join(setting_dir, "validation.csv")) as f:
        return [int(r["iteration"]) for r in csv.DictReader(f)]


# ----------------------------------------------------------------------------- maml data prepare
def test_cli_prepare_omniglot(fake_data, tmp_path):
    fake, _ = fake_data
    data_dir = str(tmp_path / "tfds")
    result = CliRunner().invoke(maml_cli, ["data", "prepare", "omniglot", "--from", fake["source"],
                                           "--data-dir", data_dir])
    assert result.exception is None and result.exit_code == 0, result.output
    assert f"omniglot: 16 characters x 20 drawings in {data_dir}" in result.output
    assert os.path.isfile(omniglot._cache_path(data_dir, 28))  # decoded once for training


def test_cli_prepare_omniglot_without_the_zips(tmp_path):
    empty = tmp_path / "no_zips"
    empty.mkdir()
    (empty / "README.md").write_text("not the zips")
    result = CliRunner().invoke(maml_cli, ["data", "prepare", "omniglot", "--from", str(empty),
                                           "--data-dir", str(tmp_path / "tfds")])
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a clean click error
    for name in omniglot.ZIPS:
        assert name in result.output, result.output
    assert "maml data prepare omniglot" in result.output
    assert "Traceback" not in result.output and "DatasetNotFoundError" not in result.output
    assert not os.path.exists(tmp_path / "tfds")


def test_cli_prepare_omniglot_missing_folder(tmp_path):
    result = CliRunner().invoke(maml_cli, ["data", "prepare", "omniglot", "--from",
                                           str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "tfds")])
    assert result.exit_code not in (0, None), result.output
    assert "nowhere" in result.output and "Traceback" not in result.output


# ----------------------------------------------------------------------------- the script
@pytest.fixture(scope="module")
def smoke_run(fake_data, tmp_path_factory):
    _, data_dir = fake_data
    base = tmp_path_factory.mktemp("table1")
    metrics, result = run_script(data_dir, base, "--setting", "5way1shot")
    return metrics, result, base


@pytest.mark.slow
def test_smoke_run_metrics(smoke_run):
    metrics, result, base = smoke_run
    preset = presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")
    assert f"wrote {base / 'results'}/" in result.output
    assert metrics["name"] == "table1_omniglot"
    assert isinstance(metrics["command"], str) and metrics["command"]
    machine = metrics["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["tensorflow"] and machine["keras"]
    assert [r["setting"] for r in metrics["rows"]] == ["5way1shot"]
    row = metrics["rows"][0]
    assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
    assert row["method"] == "MAML" and row["preset"] == "smoke"
    assert (row["paper"], row["paper_ci95"]) == (98.7, 0.4)
    assert row["iterations"] == preset.iterations == 20
    assert row["meta_batch_size"] == preset.meta_batch_size == 2
    assert 0.0 <= row["accuracy"] <= 100.0 and row["ci95"] >= 0.0
    assert isinstance(row["seconds"], float) and row["seconds"] > 0
    assert isinstance(row["command"], str) and row["command"]
    assert len(row["accuracy_per_step"]) == max(preset.curve_steps, preset.eval_inner_steps) + 1
    assert row["accuracy_per_step"][preset.eval_inner_steps] == pytest.approx(row["accuracy"])
    assert all(0.0 <= a <= 100.0 for a in row["accuracy_per_step"])
    assert row["test_tasks"] == preset.eval_tasks
    assert [c["iteration"] for c in row["validation_curve"]] == [10, 20]


@pytest.mark.slow
def test_smoke_run_table_and_figure(smoke_run):
    metrics, _, base = smoke_run
    out = base / "results"
    table = (out / "table.md").read_text()
    assert table.startswith("# Table 1, table1_omniglot")
    assert "| 5way1shot | MAML |" in table and "98.7 ± 0.4" in table
    png = out / "accuracy.png"
    assert png.exists() and png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    setting_dir = base / "runs" / "5way1shot"
    assert os.path.isfile(setting_dir / "final.weights.h5")
    assert train_log_epochs(setting_dir) == [0, 1]


@pytest.mark.slow
def test_first_order_row_beside_second_order(fake_data, tmp_path):
    _, data_dir = fake_data
    metrics, _ = run_script(data_dir, tmp_path, "--setting", "5way1shot", "--setting", "5way1shot_fo")
    so, fo = metrics["rows"]
    assert (so["setting"], fo["setting"]) == ("5way1shot", "5way1shot_fo")
    assert fo["method"] == "first-order MAML" and fo["settings"]["first_order"] is True
    assert so["settings"]["first_order"] is False
    assert fo["paper"] is None  # Table 1 has no first-order Omniglot row
    table = (tmp_path / "results" / "table.md").read_text()
    assert "| 5way1shot_fo | first-order MAML |" in table and "| — |" in table
    comparison = table.split("First versus second order")[1]
    ratio = fo["seconds_per_iteration"] / so["seconds_per_iteration"]
    assert (f"| 5way1shot | 20 / 20 | {so['accuracy']:.2f} ± {so['ci95']:.2f} | "
            f"{fo['accuracy']:.2f} ± {fo['ci95']:.2f} |") in comparison
    assert f"| {ratio:.2f} |" in comparison


@pytest.mark.slow
def test_interrupt_resume_and_evaluate_checkpoint(fake_data, tmp_path):
    _, data_dir = fake_data
    setting = "5way1shot_fc"
    preset = presets.classification(presets.OMNIGLOT, setting, "smoke")
    assert (preset.iterations, preset.steps_per_epoch) == (20, 10)
    setting_dir = str(tmp_path / "runs" / setting)
    from maml_tf.experiments import classification

    # 1. Stopped by the time limit at the end of the first epoch (a few ms of budget).
    first, _ = run_script(data_dir, tmp_path, "--setting", setting, "--time-limit", "0")
    assert classification.completed_iterations(setting_dir, preset) == 10
    assert first["rows"][0]["iterations"] == 10
    assert "unfinished run" in (tmp_path / "results" / "table.md").read_text()
    assert not os.path.exists(os.path.join(setting_dir, classification.FINAL))
    assert train_log_epochs(setting_dir) == [0]
    assert validation_iterations(setting_dir) == [10]

    # 2. --no-train scores the checkpoint as it is: the same model as run 1 evaluated.
    scored, _ = run_script(data_dir, tmp_path, "--setting", setting, "--no-train")
    assert scored["rows"][0]["iterations"] == 10
    np.testing.assert_allclose(scored["rows"][0]["accuracy_per_step"],
                               first["rows"][0]["accuracy_per_step"], atol=1e-6)
    assert train_log_epochs(setting_dir) == [0]  # nothing trained

    # 3. The same command without a limit continues at iteration 10, not from scratch.
    resumed, _ = run_script(data_dir, tmp_path, "--setting", setting)
    assert resumed["rows"][0]["iterations"] == 20
    assert classification.completed_iterations(setting_dir, preset) == 20
    assert os.path.exists(os.path.join(setting_dir, classification.FINAL))
    assert train_log_epochs(setting_dir) == [0, 1]
    assert validation_iterations(setting_dir) == [10, 20]
    assert [c["iteration"] for c in resumed["rows"][0]["validation_curve"]] == [10, 20]

    # 4. Once finished, the same command only re-scores the final weights.
    again, _ = run_script(data_dir, tmp_path, "--setting", setting)
    assert again["rows"][0]["iterations"] == 20
    np.testing.assert_allclose(again["rows"][0]["accuracy_per_step"],
                               resumed["rows"][0]["accuracy_per_step"], atol=1e-6)
    assert train_log_epochs(setting_dir) == [0, 1]


@pytest.mark.slow
def test_time_limit_zero_stops_at_the_first_epoch(fake_data, tmp_path):
    """``--time-limit 0``: train one epoch (a checkpoint), then evaluate."""
    _, data_dir = fake_data
    setting = "5way1shot_fc"
    metrics, _ = run_script(data_dir, tmp_path, "--setting", setting, "--time-limit", "0")
    assert metrics["rows"][0]["iterations"] == 10
    assert train_log_epochs(str(tmp_path / "runs" / setting)) == [0]


def test_no_train_without_a_checkpoint_fails_cleanly(fake_data, tmp_path):
    _, data_dir = fake_data
    args = ["--preset", "smoke", "--setting", "5way1shot", "--no-train", "--data-dir", data_dir,
            "--run-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "results"), "--verbose", "0"]
    result = CliRunner().invoke(load_reproduce_script("table1_omniglot").main, args)
    assert result.exit_code != 0
    assert "train first" in str(result.exception) + result.output


def test_multi_worker_without_tf_config_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = ["--preset", "smoke", "--setting", "5way1shot", "--strategy", "multi-worker",
            "--data-dir", str(tmp_path / "tfds"), "--run-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(load_reproduce_script("table1_omniglot").main, args)
    assert result.exit_code == 1 and "TF_CONFIG" in result.output, result.output
    assert "Traceback" not in result.output and not os.path.exists(tmp_path / "runs")


@pytest.mark.parametrize("table", [presets.OMNIGLOT, presets.MINI_IMAGENET])
def test_the_code_preset_is_the_paper_with_the_authors_loss_scale_batch_norm_and_test_steps(table):
    """cbfinn/maml: cross-entropy summed over examples / K, batch norm not adapted in the
    inner loop, 10 test steps; budget and every other hyperparameter as the paper."""
    for setting in table:
        paper, code = (dataclasses.asdict(presets.classification(table, setting, b)) for b in ("paper", "code"))
        changed = {k: code[k] for k in paper if paper[k] != code[k]}
        expected = {"name": "code", "loss_reduction": "sum_over_shots", "adapt": "no_batch_norm"}
        if paper["eval_inner_steps"] != 10:
            expected["eval_inner_steps"] = 10
        assert changed == expected
