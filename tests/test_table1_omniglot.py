"""reproduce/table1_omniglot.py end to end (smoke budget) and ``maml data prepare
omniglot``, on the tiny fake Omniglot of tests/fake_omniglot.py."""
import csv
import dataclasses
import json
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import PNG_MAGIC, load_reproduce_script

import fake_omniglot
from maml_tf import presets
from maml_tf.cli import main as maml_cli
from maml_tf.datasets import omniglot
from maml_tf.experiments.runs import RunDirectory, RunDirectoryMismatch
from maml_tf.report import schema

# 5-way tasks need >= 5 characters in every split: 2 background alphabets x 6
# characters + 1 evaluation alphabet x 4 = 16 = 6 train + 5 validation + 5 test.
BACKGROUND, EVALUATION = (6, 6), (4,)
SPLITS = {"train": 6, "validation": 5, "test": 5}
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
    with open(RunDirectory(setting_dir).log_path("maml")) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def validation_iterations(setting_dir):
    with open(RunDirectory(setting_dir).log_path("maml", "validation")) as f:
        return [int(r["iteration"]) for r in csv.DictReader(f)]


def checkpoints_kept(setting_dir):
    return [os.path.basename(p) for p in RunDirectory(setting_dir).checkpoints("maml").saved()]


def record(preset, run_dir):
    """Record ``preset`` in ``run_dir`` as training does."""
    from maml_tf.experiments import classification
    RunDirectory(run_dir).start(preset.dataset, preset, classification.FREE_FIELDS)


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
    assert (metrics["schema_version"], metrics["experiment"]) == (2, "table1_omniglot")
    assert isinstance(metrics["command"], str) and metrics["command"]
    machine = metrics["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["tensorflow"] and machine["keras"]
    assert [r["setting"] for r in metrics["rows"]] == ["5way1shot"]
    row = metrics["rows"][0]
    assert set(schema.RECORD_FIELDS) <= set(row), set(schema.RECORD_FIELDS) - set(row)
    assert row["method"] == "MAML" and row["preset"] == "smoke" and row["kind"] == "classification"
    assert (row["paper"]["mean"], row["paper"]["ci95"]) == ([98.7], [0.4])
    budget, accuracy = row["budget"], row["metric"]["mean"]
    assert budget["iterations"] == preset.iterations == 20 and budget["paper_iterations"] == 60_000
    assert budget["meta_batch_size"] == preset.meta_batch_size == 2
    assert isinstance(budget["seconds"], float) and budget["seconds"] > 0
    assert isinstance(row["command"], str) and row["command"]
    assert len(accuracy) == max(preset.curve_steps, preset.eval_inner_steps) + 1
    assert row["metric"]["headline_step"] == preset.eval_inner_steps
    assert all(0.0 <= a <= 100.0 for a in accuracy) and all(c >= 0.0 for c in row["metric"]["ci95"])
    assert row["metric"]["tasks"] == preset.eval_tasks
    assert [p[0] for p in row["curve"]["points"]] == [10, 20]


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
    assert checkpoints_kept(setting_dir) == ["ckpt-20"]  # finished: one checkpoint
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
    ratio = fo["budget"]["seconds_per_iteration"] / so["budget"]["seconds_per_iteration"]
    step = so["metric"]["headline_step"]
    assert (f"| 5way1shot | 20 / 20 | {so['metric']['mean'][step]:.2f} ± {so['metric']['ci95'][step]:.2f} | "
            f"{fo['metric']['mean'][step]:.2f} ± {fo['metric']['ci95'][step]:.2f} |") in comparison
    assert f"| {ratio:.2f} |" in comparison


@pytest.mark.slow
def test_interrupt_resume_and_evaluate_checkpoint(fake_data, tmp_path, monkeypatch):
    _, data_dir = fake_data
    setting = "5way1shot_fc"
    preset = presets.classification(presets.OMNIGLOT, setting, "smoke")
    assert (preset.iterations, preset.steps_per_epoch) == (20, 10)
    setting_dir = str(tmp_path / "runs" / setting)
    from maml_tf.experiments import classification

    # 1. Stopped by the time limit at the end of the first epoch (a few ms of budget).
    first, _ = run_script(data_dir, tmp_path, "--setting", setting, "--time-limit", "0")
    assert classification.completed_iterations(setting_dir) == 10
    assert first["rows"][0]["budget"]["iterations"] == 10
    assert "unfinished run" in (tmp_path / "results" / "table.md").read_text()
    assert checkpoints_kept(setting_dir) == ["ckpt-10"]
    assert train_log_epochs(setting_dir) == [0]
    assert validation_iterations(setting_dir) == [10]

    # 2. --no-train scores the checkpoint as it is: run 1's meta-test, stored in the run
    # directory, is reused while checkpoint and settings are the same; a removed one is redone.
    scored, output = run_script(data_dir, tmp_path, "--setting", setting, "--no-train")
    assert "reusing the meta-test stored in" in output.output
    assert scored["rows"][0]["metric"] == first["rows"][0]["metric"]
    os.remove(os.path.join(setting_dir, "metrics.json"))
    scored, output = run_script(data_dir, tmp_path, "--setting", setting, "--no-train")
    assert "reusing" not in output.output and os.path.exists(os.path.join(setting_dir, "metrics.json"))
    assert scored["rows"][0]["budget"]["iterations"] == 10
    np.testing.assert_allclose(scored["rows"][0]["metric"]["mean"], first["rows"][0]["metric"]["mean"], atol=1e-6)
    assert train_log_epochs(setting_dir) == [0]  # nothing trained

    # 3. The same command without a limit continues at iteration 10, not from scratch.
    resumed, _ = run_script(data_dir, tmp_path, "--setting", setting)
    assert resumed["rows"][0]["budget"]["iterations"] == 20
    assert classification.completed_iterations(setting_dir) == 20
    assert checkpoints_kept(setting_dir) == ["ckpt-20"]
    assert train_log_epochs(setting_dir) == [0, 1]
    assert validation_iterations(setting_dir) == [10, 20]
    assert [p[0] for p in resumed["rows"][0]["curve"]["points"]] == [10, 20]

    # 4. Once finished, the same command only re-scores the final weights (stored: reused),
    # and a changed evaluation setting is a new meta-test.
    again, output = run_script(data_dir, tmp_path, "--setting", setting)
    assert "reusing the meta-test stored in" in output.output
    monkeypatch.setitem(presets.BUDGETS, "smoke", {**presets.BUDGETS["smoke"], "eval_tasks": 6})
    fewer, output = run_script(data_dir, tmp_path, "--setting", setting)
    assert "reusing" not in output.output and fewer["rows"][0]["metric"]["tasks"] == 6
    monkeypatch.setitem(presets.BUDGETS, "smoke", {**presets.BUDGETS["smoke"], "eval_tasks": 8})
    assert again["rows"][0]["budget"]["iterations"] == 20
    np.testing.assert_allclose(again["rows"][0]["metric"]["mean"], resumed["rows"][0]["metric"]["mean"], atol=1e-6)
    assert train_log_epochs(setting_dir) == [0, 1]

    # Every training run is named beside the result, not only the last command.
    spans = [(r["from_iteration"], r["to_iteration"]) for r in again["rows"][0]["training_history"]]
    assert spans == [(0, 10), (10, 20)]  # --no-train and the finished run's rescore trained nothing
    commands = (tmp_path / "results" / "table.md").read_text().split("Commands:")[1]
    assert "- 0 -> 10: `" in commands and "- 10 -> 20: `" in commands and "not recorded" not in commands

    # 5. A larger budget trains the finished run on; it reports what it did, not the preset.
    monkeypatch.setitem(presets.BUDGETS, "smoke", {**presets.BUDGETS["smoke"], "iterations": 30})
    longer, _ = run_script(data_dir, tmp_path, "--setting", setting)
    assert longer["rows"][0]["budget"]["iterations"] == 30
    assert classification.completed_iterations(setting_dir) == 30  # preset.iterations: 20
    assert train_log_epochs(setting_dir) == [0, 1, 2]
    assert validation_iterations(setting_dir) == [10, 20, 30]


@pytest.mark.slow
def test_time_limit_zero_stops_at_the_first_epoch(fake_data, tmp_path):
    """``--time-limit 0``: train one epoch (a checkpoint), then evaluate."""
    _, data_dir = fake_data
    setting = "5way1shot_fc"
    metrics, _ = run_script(data_dir, tmp_path, "--setting", setting, "--time-limit", "0")
    assert metrics["rows"][0]["budget"]["iterations"] == 10
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
def test_the_code_preset_is_the_paper_with_the_authors_loss_scale_layers_and_test_steps(table):
    """cbfinn/maml: cross-entropy summed over examples / K, batch norm not adapted in the
    inner loop, its layers, 10 test steps; budget and every other hyperparameter as the paper."""
    for setting in table:
        paper, code = (dataclasses.asdict(presets.classification(table, setting, b)) for b in ("paper", "code"))
        changed = {k: code[k] for k in paper if paper[k] != code[k]}
        expected = {"name": "code", "loss_reduction": "sum_over_shots", "adapt": "no_batch_norm",
                    "authors_layers": True}
        if paper["eval_inner_steps"] != 10:
            expected["eval_inner_steps"] = 10
        assert changed == expected


def _batch_norm_weights(model):
    return sorted({w.path.split("/")[-1] for layer in model.layers
                   if isinstance(layer, keras.layers.BatchNormalization) for w in layer.trainable_weights})


@pytest.mark.parametrize("setting", ["20way1shot", "5way1shot_fc"])
def test_the_authors_layers(setting):
    """cbfinn/maml's layers: tf.contrib batch norm (offset, no scale), the strided conv
    net's head from tf.random_normal (std 1), the FC net's kernels truncated normal std
    0.01; the paper preset keeps Keras' (scale and offset, Glorot uniform)."""
    from maml_tf.experiments import classification
    keras.utils.set_random_seed(0)
    paper, code = (classification.build_model(presets.classification(presets.OMNIGLOT, setting, b))
                   for b in ("paper", "code"))
    assert _batch_norm_weights(paper) == ["beta", "gamma"]
    assert _batch_norm_weights(code) == ["beta"]
    head = lambda model: model.get_layer("head").kernel.numpy()  # noqa: E731
    glorot_std = np.sqrt(2.0 / sum(head(paper).shape))  # uniform(+-sqrt(6 / fan sum))
    assert abs(head(paper).std() / glorot_std - 1) < 0.1
    if setting == "20way1shot":  # 64 x 20 = 1280 draws
        assert abs(head(code).std() - 1.0) < 0.1
    else:
        for layer in code.layers:
            if isinstance(layer, keras.layers.Dense):
                kernel = layer.kernel.numpy()
                # N(0, 0.01) cut at 2 std: std 0.0088, nothing beyond 0.02.
                assert np.abs(kernel).max() <= 0.02 and abs(kernel.std() / 0.0088 - 1) < 0.15, layer.name


def test_mini_imagenet_authors_head_is_glorot():
    """cbfinn/maml draws the max-pool network's head with the Xavier initializer, as Keras."""
    from maml_tf.experiments import classification
    code = classification.build_model(presets.classification(presets.MINI_IMAGENET, "5way1shot", "code"))
    kernel = code.get_layer("head").kernel.numpy()
    assert _batch_norm_weights(code) == ["beta"]
    assert abs(kernel.std() / np.sqrt(2.0 / sum(kernel.shape)) - 1) < 0.1


# ----------------------------------------------------------------------------- run directories
def test_a_run_directory_refuses_other_hyperparameters(tmp_path):
    from maml_tf.experiments import classification
    smoke = presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")
    run_dir = str(tmp_path / "run")
    classification.check_run_dir(smoke, run_dir)  # a new directory: anything goes, nothing written
    assert not os.path.exists(run_dir)
    record(smoke, run_dir)
    # Budget, evaluation and compute may change between runs of one directory ...
    classification.check_run_dir(dataclasses.replace(
        smoke, name="longer", iterations=40, eval_tasks=3, eval_inner_steps=5, task_parallelism="loop"), run_dir)
    # ... the model and its training may not.
    code = dataclasses.replace(smoke, authors_layers=True, loss_reduction="sum_over_shots")
    with pytest.raises(RunDirectoryMismatch) as error:
        classification.check_run_dir(code, run_dir)
    message = str(error.value)
    assert "authors_layers: False there, True now" in message
    assert "loss_reduction: 'mean' there, 'sum_over_shots' now" in message
    assert "--run-dir" in message and run_dir in message


@pytest.mark.parametrize("train", [True, False])
def test_table1_script_refuses_a_run_directory_of_other_hyperparameters(tmp_path, train):
    """A clean error before anything is trained or loaded, not a weight-loading trace."""
    smoke = presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")
    record(dataclasses.replace(smoke, inner_lr=0.123), str(tmp_path / "runs" / "5way1shot"))
    args = ["--preset", "smoke", "--setting", "5way1shot", "--run-dir", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path / "tfds"), "--out", str(tmp_path / "out"),
            *([] if train else ["--no-train"])]
    result = CliRunner().invoke(load_reproduce_script("table1_omniglot").main, args)
    assert result.exit_code == 1, result.output
    assert "inner_lr: 0.123 there, 0.4 now" in result.output and "Traceback" not in result.output
    assert not os.path.exists(tmp_path / "out")


def test_cli_train_refuses_a_run_directory_of_other_hyperparameters(tmp_path):
    run_dir = tmp_path / "run"
    smoke = presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")
    record(dataclasses.replace(smoke, seed=7), str(run_dir))
    result = CliRunner().invoke(maml_cli, ["train", "omniglot", "--preset", "smoke", "--setting", "5way1shot",
                                           "--run-dir", str(run_dir), "--data-dir", str(tmp_path / "tfds")])
    assert result.exit_code == 1 and "seed: 7 there, 0 now" in result.output, result.output
    assert sorted(os.listdir(run_dir)) == ["run.json"]  # its record was not rewritten
