"""reproduce/fig5_locomotion.py (Section 5.3, Figure 5) end to end with the smoke preset
on half-cheetah direction (gymnasium's MuJoCo model), and its option errors."""
import json

import pytest
from click.testing import CliRunner
from conftest import PNG_MAGIC, load_reproduce_script

from maml_tf import presets

CONFIG = presets.get(presets.LOCOMOTION["cheetah-dir"], "smoke")


@pytest.mark.slow
def test_smoke_run_writes_metrics_table_and_png(tmp_path):
    out = tmp_path / "results"
    result = CliRunner().invoke(load_reproduce_script("fig5_locomotion").main, [
        "--task", "cheetah-dir", "--preset", "smoke", "--out", str(out),
        "--run-dir", str(tmp_path / "checkpoints")])
    assert result.exit_code == 0, result.output
    assert "[pretrained] iteration 2/2: return" in result.output
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    rows = {row["method"]: row for row in metrics["rows"]}
    assert metrics["experiment"] == "fig5_cheetah_dir" and {r["setting"] for r in rows.values()} == {"cheetah-dir"}
    for key in ("mean", "ci95"):
        assert {m: len(r["metric"][key]) for m, r in rows.items()} == {
            m: CONFIG.eval_inner_steps + 1 for m in ("maml", "pretrained", "random", "oracle")}
    assert rows["maml"]["paper"]["mean"] == [-50.7, 293.2, 313.5, 315.7]
    assert metrics["paper_budget"]["meta_batch_size"] == 40
    steps = CONFIG.meta_batch_size * CONFIG.episodes_per_task * 200 * CONFIG.iterations
    assert {m: r["budget"]["env_steps"] for m, r in rows.items()} == {
        "maml": 2 * steps, "pretrained": steps, "random": 0, "oracle": steps}
    assert "HalfCheetah" in metrics["environment"]
    assert "Figure 5: half-cheetah, goal direction" in (out / "table.md").read_text()
    assert (out / "fig5_returns.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("args, message", [
    (["--preset", "smoke"], "pass --task"),
    (["--task", "walker-vel"], "Invalid value for '--task'"),
    (["--task", "ant-vel", "--preset", "tiny"], "Invalid value for '--preset'"),
    (["--task", "ant-vel", "--time-limit", "soon"], "Invalid value for '--time-limit'"),
    (["--task", "ant-vel", "--until", "1.5"], "Invalid value for '--until'"),
    (["--task", "ant-dir", "--preset", "authors"], "'authors' is not a preset of ant-dir"),
])
def test_bad_options_are_click_errors(args, message):
    result = CliRunner().invoke(load_reproduce_script("fig5_locomotion").main, args)
    assert result.exit_code == 2 and message in result.output


def test_a_preset_of_one_task_only_is_accepted_for_that_task(monkeypatch):
    """``--preset authors`` exists for cheetah-dir alone: checked against the chosen task."""
    from maml_tf.experiments import registry
    calls = []
    monkeypatch.setattr(registry, "runner", lambda target: lambda *a, **kw: calls.append((target, kw)))
    result = CliRunner().invoke(load_reproduce_script("fig5_locomotion").main,
                                ["--task", "cheetah-dir", "--preset", "authors"])
    assert result.exit_code == 0, result.output
    assert calls and calls[0][1]["preset"] == "authors" and calls[0][1]["setting"] == ("cheetah-dir",)


def test_step_sizes_are_named_per_method_only_when_they_differ():
    from maml_tf.report import tables

    code = presets.LOCOMOTION["cheetah-dir"]["code"]
    sizes = {m: list(code.step_sizes(m)) for m in ("maml", "pretrained", "random", "oracle")}
    assert tables.format_step_sizes(sizes) == ("maml 0.1/0.05, pretrained 0.2/0.1, random 1/0.5, "
                                                "oracle 0.1/0.05")
    assert tables.format_step_sizes(dict.fromkeys(sizes, [0.1, 0.05])) == "0.1, 0.05"


@pytest.mark.slow
def test_method_option_trains_and_reports_only_the_chosen_methods(tmp_path):
    """``--method maml --method random``: a page of those two rows; pretrained and oracle
    neither train (no checkpoint) nor appear."""
    out, run_dir = tmp_path / "results", tmp_path / "checkpoints"
    result = CliRunner().invoke(load_reproduce_script("fig5_locomotion").main, [
        "--task", "cheetah-vel", "--preset", "smoke", "--method", "maml", "--method", "random",
        "--out", str(out), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "[pretrained]" not in result.output and "[maml] iteration 2/2" in result.output
    with open(out / "metrics.json") as f:
        rows = json.load(f)["rows"]
    assert [r["method"] for r in rows] == ["maml", "random"]
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == ["maml"]
    table = (out / "table.md").read_text()
    assert "| maml |" in table and "| random |" in table and "| pretrained |" not in table and "| oracle |" not in table
    bad = CliRunner().invoke(load_reproduce_script("fig5_locomotion").main,
                             ["--task", "cheetah-vel", "--method", "reptile", "--run-dir", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "cheetah-vel has no method reptile; choose from maml, pretrained" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()
