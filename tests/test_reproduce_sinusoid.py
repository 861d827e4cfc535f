"""reproduce/fig3_sinusoid.py end to end with the smoke preset (seconds, not hours)."""
import dataclasses
import json
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import PNG_MAGIC, load_reproduce_script

from maml_tf import paper, presets
from maml_tf.experiments.runs import RunDirectory


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    script = load_reproduce_script("fig3_sinusoid")
    base = tmp_path_factory.mktemp("fig3")
    out, run_dir = base / "results", base / "runs"
    result = CliRunner().invoke(script.main, ["--preset", "smoke", "--out", str(out),
                                              "--run-dir", str(run_dir), "--verbose", "0"])
    return script, result, out, run_dir


@pytest.mark.slow
def test_smoke_run_exits_cleanly(smoke_run):
    _, result, out, _ = smoke_run
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    assert f"wrote {out}/" in result.output


@pytest.mark.slow
def test_metrics_json(smoke_run):
    script, result, out, _ = smoke_run
    assert result.exit_code == 0, result.output
    config = presets.get(presets.SINUSOID, "smoke")
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert isinstance(metrics["command"], str) and metrics["command"]
    assert (metrics["schema_version"], metrics["experiment"], metrics["kind"]) == (2, "fig3_sinusoid", "regression")
    assert metrics["seconds"] > 0
    machine = metrics["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["tensorflow"] and machine["keras"]
    rows = {(row["setting"], row["method"]): row for row in metrics["rows"]}
    assert set(rows) == {(k, m) for k in ("K5", "K10", "K20") for m in ("maml", "pretrained", "oracle")}
    for (k, method), row in rows.items():
        assert row["preset"] == "smoke" and row["budget"]["iterations"] == config.iterations == 300
        assert row["budget"]["meta_batch_size"] == config.meta_batch_size
        assert row["paper"] == paper.sinusoid(method, int(k[1:]))
        assert row["summary"] is (row["paper"] is not None)
        for key in ("mean", "ci95", "median", "diverged"):
            values = row["metric"][key]
            assert len(values) == config.eval_inner_steps + 1, (key, method, k)
            assert all(v >= 0 for v in values), (key, method, k)
    assert rows["K5", "maml"]["paper"]["mean"] == [0.67, 0.38, 0.35]
    assert rows["K5", "pretrained"]["paper"]["mean"] == [2.41, 2.23, 2.19]
    # Even 300 meta-iterations meta-learn something: adapting helps MAML.
    for k in ("K5", "K10", "K20"):
        curve = rows[k, "maml"]["metric"]["mean"]
        assert curve[-1] < curve[0], (k, curve)


@pytest.mark.slow
def test_table_and_figures(smoke_run):
    _, result, out, _ = smoke_run
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert table.startswith("# Sinusoid regression")
    for k in (5, 10, 20):
        for method in ("maml", "pretrained", "oracle"):
            assert f"| {k} | {method} |" in table
    assert "0.67 / 0.38 / 0.35" in table and "2.41 / 2.23 / 2.19" in table
    for name in ("fig3_curves.png", "fig2_examples.png"):
        path = out / name
        assert path.exists(), name
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000, name


# ----------------------------------------------------------------------------- the authors' code
def test_the_code_preset_is_the_paper_with_the_authors_step_size_and_weights():
    """cbfinn/maml's sinusoid run: update_lr 0.001 and its own initialisation; every
    other hyperparameter and the budget as the paper."""
    paper, code = (dataclasses.asdict(presets.get(presets.SINUSOID, n)) for n in ("paper", "code"))
    assert {k: code[k] for k in paper if paper[k] != code[k]} == {
        "name": "code", "inner_lr": 0.001, "authors_layers": True}


def test_the_authors_weights():
    """construct_fc_weights: kernels truncated normal (std 0.01, cut at 2 std), biases
    zero; the paper preset keeps Keras' Glorot uniform."""
    from maml_tf.experiments import sinusoid
    keras.utils.set_random_seed(0)
    paper, code = (sinusoid.build_maml(presets.get(presets.SINUSOID, n)).model for n in ("paper", "code"))
    for ours, authors in zip(paper.layers[1:], code.layers[1:]):
        kernel = authors.kernel.numpy()
        assert np.abs(kernel).max() <= 0.02 and not authors.bias.numpy().any(), authors.name
        if kernel.size > 100:  # hidden_1: 1600 draws; N(0, 0.01) cut at 2 std has std 0.0088
            assert abs(kernel.std() / 0.0088 - 1) < 0.15
            glorot_std = np.sqrt(2.0 / sum(kernel.shape))
            assert abs(ours.kernel.numpy().std() / glorot_std - 1) < 0.1


def _record(preset, run_dir):
    """Record ``preset`` in ``run_dir`` as training does."""
    from maml_tf.experiments import sinusoid
    RunDirectory(run_dir).start(sinusoid.EXPERIMENT, preset, sinusoid.FREE_FIELDS)


def test_a_sinusoid_run_directory_refuses_other_hyperparameters(tmp_path):
    from maml_tf.experiments import runs, sinusoid
    smoke = presets.get(presets.SINUSOID, "smoke")
    run_dir = str(tmp_path / "run")
    _record(smoke, run_dir)
    sinusoid.check_run_dir(dataclasses.replace(smoke, iterations=600, eval_tasks=7), run_dir)  # budget, evaluation
    with pytest.raises(runs.RunDirectoryMismatch) as error:
        sinusoid.check_run_dir(dataclasses.replace(smoke, authors_layers=True), run_dir)
    assert "authors_layers: False there, True now" in str(error.value)


def test_fig3_script_refuses_a_run_directory_of_other_hyperparameters(tmp_path):
    """A clean error before anything is trained, not old weights reused for a new preset."""
    run_dir = tmp_path / "runs"
    _record(presets.get(presets.SINUSOID, "code"), str(run_dir))
    result = CliRunner().invoke(load_reproduce_script("fig3_sinusoid").main, [
        "--preset", "smoke", "--run-dir", str(run_dir), "--out", str(tmp_path / "out"), "--verbose", "0"])
    assert result.exit_code == 1, result.output
    assert "inner_lr: 0.001 there, 0.01 now" in result.output and "Traceback" not in result.output
    assert sorted(os.listdir(run_dir)) == ["run.json"] and not os.path.exists(tmp_path / "out")


# ----------------------------------------------------------------------------- interruptions
TINY = dataclasses.replace(presets.SINUSOID["smoke"], iterations=150, steps_per_epoch=50, meta_batch_size=5)


def _epochs_logged(run_dir, method="maml"):
    import csv
    with open(RunDirectory(run_dir).log_path(method)) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


@pytest.mark.slow
def test_an_extended_run_stopped_and_resumed_matches_an_uninterrupted_one(tmp_path):
    """Finished at 50 iterations, extended to 150, stopped at 100 by a time limit, resumed:
    the same weights as 150 iterations in one go (the task stream continues where it
    stopped), one checkpoint kept at every stop, each epoch logged once."""
    from maml_tf.callbacks import TimeLimit
    from maml_tf.experiments import sinusoid
    whole, _, finished = sinusoid.train(TINY, "maml", str(tmp_path / "whole"), verbose=0)
    assert finished

    run_dir = str(tmp_path / "parts")
    run = RunDirectory(run_dir)
    assert sinusoid.train(dataclasses.replace(TINY, iterations=50), "maml", run_dir, verbose=0)[2]
    assert not sinusoid.train(TINY, "maml", run_dir, verbose=0, callbacks=[TimeLimit(0)])[2]
    assert [os.path.basename(p) for p in run.checkpoints("maml").saved()] == ["ckpt-100"]
    parts, seconds, finished = sinusoid.train(TINY, "maml", run_dir, verbose=0)
    assert finished and _epochs_logged(run_dir) == [0, 1, 2] and seconds > 0
    assert [os.path.basename(p) for p in run.checkpoints("maml").saved()] == ["ckpt-150"]
    assert [(h["from_iteration"], h["to_iteration"]) for h in run.training_history("maml")] == [
        (0, 50), (50, 100), (100, 150)]
    for a, b in zip(whole.model.get_weights(), parts.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(parts.get_weights(), sinusoid.load_latest(TINY, run_dir).get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_diverging_maml_run_stops_with_a_clear_error(tmp_path, monkeypatch):
    """A NaN meta-loss: one line saying what to change and where the checkpoints are,
    nothing saved from the diverged weights, no TensorFlow traceback."""
    monkeypatch.setitem(presets.SINUSOID, "smoke", dataclasses.replace(TINY, inner_lr=1e30))
    run_dir = tmp_path / "runs"
    result = CliRunner().invoke(load_reproduce_script("fig3_sinusoid").main, [
        "--preset", "smoke", "--run-dir", str(run_dir), "--out", str(tmp_path / "out"), "--verbose", "0"])
    assert result.exit_code == 1, result.output
    message = result.output
    assert "lower inner_lr" in message and str(run_dir) in message, message
    assert "Traceback" not in message and "InvalidArgumentError" not in message and "node" not in message.lower()
    assert not RunDirectory(run_dir).has_checkpoint("maml")


def test_a_diverging_baseline_saves_no_checkpoint(tmp_path):
    from maml_tf.experiments import sinusoid
    from maml_tf.experiments.errors import TrainingDiverged
    run_dir = str(tmp_path / "runs")
    with pytest.raises(TrainingDiverged) as error:
        sinusoid.train(dataclasses.replace(TINY, outer_lr=1e30), "pretrained", run_dir, verbose=0)
    assert "lower outer_lr" in str(error.value) and run_dir in str(error.value)
    assert not RunDirectory(run_dir).has_checkpoint("pretrained")
