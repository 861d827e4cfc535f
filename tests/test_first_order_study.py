"""The first-order study (maml study first-order): its presets, the answer it generates from
the numbers, and a smoke run writing a results directory."""
import dataclasses
import json
import math

import pytest

from maml_tf.experiments import registry
from maml_tf.studies import first_order, first_order_page


def test_registered_with_presets_and_a_one_line_error():
    assert registry.STUDIES["first-order"].result_name == "first_order_activation"
    assert registry.study("first-order") is first_order
    assert set(first_order.PRESETS) == {"full", "quick", "smoke"}
    full = registry.study_preset("first-order", "full")
    assert len(full.seeds) >= 3 and set(full.activations) == {"relu", "silu"}
    with pytest.raises(registry.UsageProblem, match="choose one of full, quick, smoke"):
        registry.study_preset("first-order", "paper")
    # Every cell is a distinct run directory; one task's grid is activations x orders x seeds.
    names = {first_order.cell_name(*c) for c in first_order.cells(full)}
    assert len(names) == 2 * 2 * len(full.seeds)


def _summary(means, cis, metric):
    return {key: {"mean": m, "ci95": c, "finals": [m] * 3, "final_terms": {}}
            for key, m, c in zip(("relu_so", "relu_fo", "silu_so", "silu_fo"), means, cis)}


def _cells(metric, iterations=(10, 10, 10, 10)):
    return {f"cell{i}": {"metric": metric, "iterations": n} for i, n in enumerate(iterations)}


def test_answer_follows_the_numbers():
    # SiLU first order clearly worse (CIs apart), ReLU within the noise.
    metrics = {"budget": {"activations": ("relu", "silu"), "seeds": (0,)}, "tasks": {"sinusoid": {
        "cells": _cells("mse"), "config": {"iterations": 10},
        "summary": _summary([0.40, 0.41, 0.30, 0.60], [0.02, 0.02, 0.02, 0.03], "mse")}}}
    answer = first_order_page.answer(metrics)
    silu, relu = answer["comparisons"]["sinusoid"]["silu"], answer["comparisons"]["sinusoid"]["relu"]
    assert silu["difference"] == pytest.approx(0.30) and silu["first_order_worse"] and not silu["cis_overlap"]
    assert relu["cis_overlap"]
    assert answer["text"][0].startswith("Does first order still match") and "no on sinusoid" in answer["text"][0]
    # Accuracy: lower is worse.
    metrics["tasks"] = {"omniglot": {"cells": _cells("accuracy"), "config": {"iterations": 10},
                                     "summary": _summary([0.9, 0.9, 0.95, 0.94], [0.01] * 4, "accuracy")}}
    silu = first_order_page.answer(metrics)["comparisons"]["omniglot"]["silu"]
    assert silu["first_order_worse"] and silu["cis_overlap"]
    # Overlapping CIs, but every first-order seed worse: said, and not called a match.
    summary = metrics["tasks"]["omniglot"]["summary"]
    summary["silu_so"]["finals"], summary["silu_fo"]["finals"] = [0.95, 0.96, 0.94], [0.93, 0.935, 0.92]
    summary["silu_so"]["ci95"] = summary["silu_fo"]["ci95"] = 0.05
    answer = first_order_page.answer(metrics)
    silu = answer["comparisons"]["omniglot"]["silu"]
    assert silu["cis_overlap"] and silu["every_seed_worse"] and silu["ordering_p"] == pytest.approx(0.05)
    assert "no on omniglot" in answer["text"][0] and any("every first-order seed is worse" in t for t in answer["text"])
    # A grid cut short by the time limit says so first.
    metrics["tasks"]["omniglot"]["cells"] = _cells("accuracy", (10, 10, 10, 4))
    assert first_order_page.answer(metrics)["text"][0].startswith("PARTIAL (omniglot): 4 of 4 cells measured, 1 short")


def test_student_t_interval_is_wider_than_the_normal_one_for_few_seeds():
    values = [1.0, 2.0, 3.0]
    assert first_order_page.t_ci95(values) == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert first_order_page.t_ci95([1.0]) == 0.0


def _check_results(out, preset, tasks):
    for name in first_order_page.FILES:
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["command"] and metrics["machine"]["cores"] and metrics["preset"] == preset.name
    for task in tasks:
        result = metrics["tasks"][task]
        assert len(result["cells"]) == len(preset.activations) * 2 * len(preset.seeds)
        assert set(result["summary"]) == {f"{a}_{o}" for a in preset.activations for o in ("so", "fo")}
        for cell in result["cells"].values():
            assert math.isfinite(cell["final"]) and cell["final_ci95"] >= 0
            assert cell["iterations"] == result["config"]["iterations"]
            # The terms at initialisation and at every checkpoint.
            steps = result["config"]["steps_per_epoch"]
            assert [int(t["iteration"]) for t in cell["terms"]] == list(range(0, cell["iterations"] + 1, steps))
            assert all(-1 <= t["cosine"] <= 1 and math.isfinite(t["relative_difference"]) for t in cell["terms"])
        for c in metrics["answer"]["comparisons"][task].values():
            assert math.isfinite(c["difference"])
    table = (out / "table.md").read_text()
    assert table.rstrip().splitlines()[-1].startswith("- ") and "## Answer" in table
    return metrics


@pytest.mark.slow
def test_sinusoid_smoke_run_writes_results_and_resumes(tmp_path):
    preset = dataclasses.replace(first_order.PRESETS["smoke"], tasks=("sinusoid",))
    lines = []
    first = first_order.run(preset, tmp_path / "run", str(tmp_path / "out"), echo=lines.append)
    _check_results(tmp_path / "out", preset, ("sinusoid",))
    # The page regenerates from metrics.json alone, identically.
    before = (tmp_path / "out" / "table.md").read_text()
    first_order_page.rewrite(str(tmp_path / "out"))
    assert (tmp_path / "out" / "table.md").read_text() == before
    # Second-order SiLU differs from first order on the same weights at initialisation.
    cell = first["tasks"]["sinusoid"]["cells"]["silu_so_seed0"]
    assert cell["terms"][0]["relative_difference"] > 1e-3
    # Run again: nothing trains, the same test numbers come out (the terms up to float
    # reduction order).
    histories = sorted((tmp_path / "run").glob("sinusoid/*/commands.jsonl"))
    trained = [h.read_text() for h in histories]
    again = first_order.run(preset, tmp_path / "run", str(tmp_path / "out2"), echo=lines.append)
    assert len(histories) == 8 and [h.read_text() for h in histories] == trained  # no iteration trained
    for key, summary in first["tasks"]["sinusoid"]["summary"].items():
        repeated = again["tasks"]["sinusoid"]["summary"][key]
        assert repeated["finals"] == summary["finals"] and repeated["iterations"] == summary["iterations"]
        assert repeated["network_curvature_share"] == pytest.approx(summary["network_curvature_share"], rel=1e-3)


@pytest.mark.slow
def test_whole_smoke_preset(tmp_path, use_real_omniglot):
    preset = first_order.PRESETS["smoke"]
    first_order.run("smoke", tmp_path / "run", str(tmp_path / "out"), echo=print)
    _check_results(tmp_path / "out", preset, preset.tasks)
