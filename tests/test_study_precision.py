"""`maml study precision` (smoke preset, real Omniglot) and its page's numbers."""
import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import PNG_MAGIC, load_reproduce_script

from maml_tf.experiments import registry
from maml_tf.experiments.runs import RunDirectory
from maml_tf.studies import precision, precision_page


def _side(accuracies, seconds=1.0, iterations=10):
    accuracies = np.asarray(accuracies, dtype=float)
    ci = float(1.96 * accuracies.std(ddof=1) / np.sqrt(len(accuracies)))
    return {"iterations": iterations, "seconds_per_iteration": seconds, "curve": [],
            "test": {"accuracy": float(accuracies.mean()), "ci95": ci, "num_tasks": len(accuracies), "steps": 3,
                     "per_task": accuracies.tolist()}}


def test_the_comparison_is_paired_over_the_same_test_tasks():
    rng = np.random.default_rng(0)
    f32 = rng.uniform(0.2, 1.0, size=200)
    shifted = f32 - 0.01  # every task 1 point lower: a tiny CI on the paired difference
    c = precision_page.compare({"float32": _side(f32, 2.0), "mixed_bfloat16": _side(shifted, 1.0)})
    np.testing.assert_allclose(c["difference"], -0.01)
    assert c["difference_ci95"] < 1e-9 and not c["difference_ci_contains_zero"]
    assert c["within_float32_ci"] and c["training_seconds_ratio"] == 0.5
    far = precision_page.compare({"float32": _side(f32), "mixed_bfloat16": _side(f32 - 0.2)})
    assert not far["within_float32_ci"]
    assert precision_page.compare({"float32": _side(f32), "mixed_bfloat16": {"iterations": 5}}) is None


def test_departure_statistics_whole_and_per_layer():
    reference = [np.array([3.0, 4.0]), np.array([1.0])]
    grads = [np.array([3.0, 4.0]), np.array([-1.0])]
    out = precision.compare(grads, reference, ["conv", "head"])
    np.testing.assert_allclose(out["relative_l2"], 2 / np.sqrt(26))
    np.testing.assert_allclose(out["cosine"], 24 / 26)
    assert out["per_layer"]["conv"] == {"relative_l2": 0.0, "cosine": 1.0}
    np.testing.assert_allclose([out["per_layer"]["head"]["relative_l2"], out["per_layer"]["head"]["cosine"]], [2, -1])


def test_the_study_presets_train_both_precisions_from_the_paper_preset():
    full = precision.PRESETS["full"]
    for task in full.tasks:
        f32, bf16 = (full.config(task, p) for p in precision.PRECISIONS)
        assert dataclasses.replace(bf16, precision="float32") == f32
        paper = registry.preset(task, "paper", "5way1shot")
        assert (f32.meta_batch_size, f32.inner_steps, f32.seed) == (paper.meta_batch_size, paper.inner_steps, 0)
    assert full.config("omniglot", "float32").iterations == 1_000
    assert full.config("mini_imagenet", "float32").iterations == 2_000
    assert dict(((t, p), path) for t, p, path in full.reuse) == {
        ("mini_imagenet", "float32"): precision.CHECKPOINTS["mini_imagenet"]}


@pytest.mark.slow  # ~2 minutes: four conv4 trainings of 4 iterations and their meta-tests
def test_precision_study_smoke_end_to_end_and_reuse(tmp_path, use_real_omniglot):
    out, run_dir = tmp_path / "out", tmp_path / "runs"
    result = CliRunner().invoke(load_reproduce_script("precision").main,
                                ["--preset", "smoke", "--run-dir", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    omniglot = metrics["tasks"]["omniglot"]
    assert set(omniglot["sides"]) == {"float32", "mixed_bfloat16"}
    for p, side in omniglot["sides"].items():
        assert side["iterations"] == 4 and side["test"]["num_tasks"] == 8
        assert [h["precision"] for h in side["training_history"]] == [p]
    model = omniglot["departure"]["models"]["initialisation"]
    assert 0 < model["bf16"]["relative_l2"] < 2 and -1 <= model["bf16"]["cosine"] <= 1
    assert set(model["bf16_per_layer"]) >= {"conv_0", "head"}
    kept = json.loads((run_dir / "omniglot" / "departure.json").read_text())  # a resumed study reads it back
    assert kept["result"] == omniglot["departure"]
    assert omniglot["timing"]["float32"] > 0 and omniglot["comparison"] is not None
    assert (out / "validation_curves.png").read_bytes()[:8] == PNG_MAGIC
    table = (out / "table.md").read_text()
    assert "## Answer" in table and "trained by this study" in table
    assert metrics["machine"]["bfloat16_native"] in (True, False)

    # Reuse: the float32 side copied from that run, not trained again.
    reused = dataclasses.replace(precision.PRESETS["smoke"], name="smoke_reuse", timing_rounds=0,
                                 reuse=(("omniglot", "float32", str(run_dir / "omniglot" / "float32")),))
    again = precision.run(reused, str(tmp_path / "again"), str(tmp_path / "again_out"), echo=lambda s: None)
    side = again["tasks"]["omniglot"]["sides"]["float32"]
    assert side["reused_from"] and side["test"] == omniglot["sides"]["float32"]["test"]  # the same weights
    assert RunDirectory(str(tmp_path / "again" / "omniglot" / "float32")).training_history() == \
        RunDirectory(str(run_dir / "omniglot" / "float32")).training_history()  # no new training
    assert "reused: a copy of" in (tmp_path / "again_out" / "table.md").read_text()

    # A reused run past the study's budget would compare unequal budgets: refused before a meta-test.
    past = dataclasses.replace(reused, name="smoke_past", changes=(
        ("omniglot", (("iterations", 2), ("steps_per_epoch", 2), ("meta_batch_size", 2),
                      ("validation_tasks", 4), ("eval_tasks", 8))),))
    with pytest.raises(ValueError, match="at iteration 4, past the study's 2"):
        precision.run(past, str(tmp_path / "past"), str(tmp_path / "past_out"), echo=lambda s: None)


def test_a_task_not_yet_trained_says_its_accuracy_is_pending():
    config = dataclasses.asdict(precision.PRESETS["smoke"].config("omniglot", "float32"))
    metrics = {"command": "c", "preset": "smoke", "tasks": {"omniglot": {"config": config, "departure": {}}},
               "machine": {"cpu": "x", "cores": 2, "tensorflow": "2", "bfloat16_native": False}}
    assert "Omniglot 5-way 1-shot accuracy not measured yet" in precision_page.summary(metrics)
    assert "Accuracy: not measured yet" in precision_page.table(metrics)
    rng = np.random.default_rng(0)
    sides = {"float32": _side(rng.uniform(size=20)), "mixed_bfloat16": _side(rng.uniform(size=20))}
    metrics["tasks"]["omniglot"].update(sides=sides, comparison=precision_page.compare(sides))
    assert "not measured yet" not in precision_page.summary(metrics)
    assert "not measured yet" not in precision_page.table(metrics)
    assert "meta-gradient" not in precision_page.summary(metrics)  # no departure measured yet
    metrics["tasks"]["omniglot"]["departure"] = {"models": {"initialisation": {"bf16": {"relative_l2": 0.5}},
                                                            "trained": {"bf16": {"relative_l2": 0.059}}}}
    assert precision_page.summary(metrics).endswith("points), meta-gradient 5.9% from float32's.")


@pytest.mark.parametrize("study_verbose, keras_verbose", [(0, 0), (1, 0), (2, 2)])
def test_a_study_never_gives_its_trainings_the_progress_bar(study_verbose, keras_verbose):
    from maml_tf.studies import training_verbose
    assert training_verbose(study_verbose) == keras_verbose  # 1 would be Keras' bar, a line per step in a log
