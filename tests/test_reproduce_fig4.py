"""reproduce/fig4_navigation.py (Section 5.3, Figure 4) end to end with the smoke preset:
a run interrupted mid-training, then the same command resuming it to the results."""
import csv
import json
import os

import pytest
from click.testing import CliRunner
from conftest import PNG_MAGIC, load_reproduce_script

from maml_tf import presets
from maml_tf.experiments import rl
from maml_tf.experiments.runs import RunDirectory
from maml_tf.rl.maml_trpo import MAMLTRPO

METHODS = ("maml", "pretrained", "random", "oracle")
CONFIG = presets.get(presets.NAVIGATION, "smoke")
MAML_STEPS_PER_ITERATION = 2 * CONFIG.meta_batch_size * CONFIG.episodes_per_task * 100  # pre + post


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The first run stops (KeyboardInterrupt) in MAML's second iteration, after the
    checkpoint of the first; the second is the same command, uninterrupted."""
    script = load_reproduce_script("fig4_navigation")
    base = tmp_path_factory.mktemp("fig4")
    out, checkpoints = base / "results", base / "checkpoints"
    args = ["--preset", "smoke", "--out", str(out), "--run-dir", str(checkpoints)]
    original = MAMLTRPO.train_iteration

    def interrupted(self):
        if self.iteration == 1:
            raise KeyboardInterrupt
        return original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MAMLTRPO, "train_iteration", interrupted)
        first = CliRunner().invoke(script.main, args)
    first.left_results = os.path.exists(out / "metrics.json")
    first.maml_iteration = rl.run_directory(checkpoints).iteration("maml")
    second = CliRunner().invoke(script.main, args)
    return first, second, out, checkpoints


def _metrics(out):
    with open(out / "metrics.json") as f:
        return json.load(f)


def _rows(out):
    """The rows of ``out``/metrics.json by method."""
    return {row["method"]: row for row in _metrics(out)["rows"]}


@pytest.mark.slow
def test_the_interrupted_run_left_a_checkpoint_and_no_results(runs):
    first, _, out, checkpoints = runs
    assert first.exit_code == 1 and "Aborted!" in first.output  # click's answer to Ctrl-C
    assert "[maml] iteration 1/2" in first.output
    assert first.maml_iteration == 1 and not first.left_results


@pytest.mark.slow
def test_the_same_command_resumes_from_the_checkpoint(runs):
    _, second, out, checkpoints = runs
    assert second.exit_code == 0, second.output
    assert "[maml] iteration 1/" not in second.output
    assert "[maml] iteration 2/2" in second.output
    budgets = {m: row["budget"] for m, row in _rows(out).items()}
    assert {m: b["iterations"] for m, b in budgets.items()} == {"maml": 2, "pretrained": 2, "random": None,
                                                                "oracle": 2}
    assert budgets["maml"]["env_steps"] == CONFIG.iterations * MAML_STEPS_PER_ITERATION
    assert budgets["maml"]["seconds"] > 0 and budgets["random"]["seconds"] == 0
    assert [i for i, _, _ in _rows(out)["maml"]["curve"]["points"]] == [1, 2]
    with open(rl.log_path(checkpoints, "maml")) as f:
        assert [int(r["iteration"]) for r in csv.DictReader(f)] == [1, 2]
    for method in rl.TRAINED:  # training stopped: one checkpoint each, to commit
        assert [os.path.basename(p) for p in RunDirectory(checkpoints).checkpoints(method).saved()] == ["ckpt-2"]


@pytest.mark.slow
def test_every_training_run_is_recorded_interrupted_ones_too(runs):
    _, second, out, _ = runs
    assert second.exit_code == 0, second.output
    history = {m: row["training_history"] for m, row in _rows(out).items() if m != "random"}
    spans = {m: [(r["from_iteration"], r["to_iteration"]) for r in runs] for m, runs in history.items()}
    # MAML: the interrupted run's checkpointed iteration, then the resuming run's.
    assert spans == {"maml": [(0, 1), (1, 2)], "pretrained": [(0, 2)], "oracle": [(0, 2)]}
    table = (out / "table.md").read_text().split("Training runs behind each checkpoint")[1]
    assert "- 0 -> 1: `" in table and "- 1 -> 2: `" in table and "not recorded" not in table


@pytest.mark.slow
def test_metrics_json_has_every_method_after_0_to_3_steps(runs):
    _, second, out, _ = runs
    assert second.exit_code == 0, second.output
    metrics, rows = _metrics(out), _rows(out)
    assert (metrics["schema_version"], metrics["experiment"], metrics["kind"]) == (2, "fig4_navigation", "rl")
    assert set(rows) == set(METHODS)
    assert all((row["preset"], row["setting"]) == ("smoke", "navigation") for row in rows.values())
    assert all(row["test_step_sizes"] == list(CONFIG.test_step_sizes) for row in rows.values())
    steps = CONFIG.eval_inner_steps + 1
    for row in rows.values():
        assert len(row["metric"]["mean"]) == len(row["metric"]["ci95"]) == steps
        assert len(row["metric"]["per_task"]) == CONFIG.eval_tasks and row["metric"]["name"] == "return"
    assert rows["maml"]["paper"]["mean"] == [-40.4, -11.7, -3.3, -3.2]
    assert rows["oracle"]["paper"]["mean"] == [-2.3] and rows["oracle"]["paper"]["note"]
    assert rows["oracle"]["metric"]["headline_step"] == 0 and rows["maml"]["metric"]["headline_step"] == 3
    assert isinstance(metrics["command"], str) and metrics["command"]
    assert metrics["machine"]["cores"] >= 1


@pytest.mark.slow
def test_table_and_pngs(runs):
    _, second, out, _ = runs
    assert second.exit_code == 0, second.output
    table = (out / "table.md").read_text()
    assert "| maml |" in table and "-40.4 / -11.7 / -3.3 / -3.2" in table
    assert "reduced budget" in table  # smoke is smaller than the paper
    for png in ("fig4_returns.png", "fig4_paths.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_readme_builder_renders_the_result(runs):
    _, second, out, _ = runs
    assert second.exit_code == 0, second.output
    from maml_tf.report import schema, summary

    rows = summary.lines(schema.load(out / "metrics.json"), "table.md")
    assert len(rows) == 1  # MAML's; the baselines are in the table it links to
    assert all(row.count(" | ") == 4 for row in rows)
    assert "| maml |" in rows[0] and "| -3.2 |" in rows[0] and "smoke preset (reduced budget)" in rows[0]


@pytest.mark.parametrize("args, message", [
    (["--preset", "huge"], "Invalid value for '--preset'"),
    (["--time-limit", "-1"], "Invalid value for '--time-limit'"),
    (["--until", "-5"], "Invalid value for '--until'"),
    (["--seed", "1"], "No such option"),
])
def test_bad_options_are_click_errors(args, message):
    result = CliRunner().invoke(load_reproduce_script("fig4_navigation").main, args)
    assert result.exit_code == 2 and message in result.output


@pytest.fixture(scope="module")
def step_sizes(runs, tmp_path_factory):
    """reproduce/fig4_step_sizes.py on the smoke run's checkpoints, a 2 x 2 grid."""
    _, second, _, checkpoints = runs
    assert second.exit_code == 0, second.output
    out = tmp_path_factory.mktemp("fig4_step_sizes")
    args = ["--preset", "smoke", "--run-dir", str(checkpoints), "--out", str(out),
            "--first", "0.1", "--first", "0.3", "--later", "0.02", "--later", "0.05"]
    return CliRunner().invoke(load_reproduce_script("fig4_step_sizes").main, args), out


@pytest.mark.slow
def test_step_sizes_are_selected_on_validation_goals_and_reported_on_test_goals(step_sizes):
    result, out = step_sizes
    assert result.exit_code == 0, result.output
    metrics = _metrics(out)
    search = metrics["step_size_search"]
    steps = CONFIG.eval_inner_steps + 1
    rows = [(row["method"], row["step_sizes_selected"], row) for row in metrics["rows"]]
    assert [(m, chosen) for m, chosen, _ in rows] == [(m, chosen) for m in ("maml", "pretrained", "random")
                                                       for chosen in (False, True)]
    for method, chosen, row in rows:
        grid = search["validation_grid"][method]
        assert set(grid) == {"0.1,0.02", "0.1,0.05", "0.3,0.02", "0.3,0.05"}
        best = max(grid, key=lambda k: sum(grid[k][1:]))
        expected = best if chosen else ",".join(f"{a:g}" for a in CONFIG.test_step_sizes)
        assert ",".join(f"{a:g}" for a in row["test_step_sizes"]) == expected
        assert len(row["metric"]["mean"]) == steps and row["summary"] is chosen
    assert rows[0][2]["budget"]["iterations"] == CONFIG.iterations
    assert "| maml | 0.1/0.05 |" in (out / "table.md").read_text()
    assert (out / "step_sizes.png").read_bytes()[:8] == PNG_MAGIC
    from maml_tf.report import schema, summary

    lines = summary.lines(schema.load(out / "metrics.json"), "table.md")
    assert len(lines) == 1 and all(line.count(" | ") == 4 for line in lines)
    assert "| -3.2 |" in lines[0] and "step sizes selected on validation goals" in lines[0]


def test_validation_goals_are_not_the_test_goals():

    validation, test = rl.validation_tasks(CONFIG), rl.test_tasks(CONFIG)
    assert len(validation) == len(test) == CONFIG.eval_tasks
    assert not any((v["goal"] == t["goal"]).all() for v in validation for t in test)


def test_step_sizes_without_checkpoints_says_what_to_run(tmp_path):
    result = CliRunner().invoke(load_reproduce_script("fig4_step_sizes").main,
                                ["--preset", "smoke", "--run-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "No checkpoint of maml, pretrained" in result.output
    assert "maml reproduce fig4 --preset smoke" in result.output


def test_a_checkpoint_dir_of_another_preset_is_refused(tmp_path):
    """The smoke preset's record; the quick preset samples more: exit 1 naming what
    differs, no traceback, nothing written."""
    checkpoints = tmp_path / "checkpoints"
    RunDirectory(checkpoints).start(CONFIG.env, CONFIG, rl.FREE_FIELDS)
    record = (checkpoints / "run.json").read_text()
    result = CliRunner().invoke(load_reproduce_script("fig4_navigation").main, [
        "--preset", "quick", "--run-dir", str(checkpoints), "--out", str(tmp_path / "results")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "meta_batch_size: 2 there, 10 now" in result.output and "episodes_per_task" in result.output
    assert "--run-dir" in result.output and "Traceback" not in result.output
    assert os.listdir(checkpoints) == ["run.json"] and (checkpoints / "run.json").read_text() == record
    assert not (tmp_path / "results").exists()


def test_step_sizes_on_another_policys_checkpoints_is_refused(tmp_path):
    """Checkpoints of a narrower policy than the preset's (a directory without a record)."""
    from maml_tf.models.policy import gaussian_mlp_policy
    from maml_tf.rl.learner import PolicyLearner

    narrow = PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8, 8)))
    for method in ("maml", "pretrained"):
        narrow.checkpoint(rl.checkpoint_path(tmp_path, method))
    result = CliRunner().invoke(load_reproduce_script("fig4_step_sizes").main, [
        "--preset", "smoke", "--run-dir", str(tmp_path), "--out", str(tmp_path / "results")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "shape (2, 8)" in result.output and "holds another architecture's variables" in result.output
    assert "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["maml", "pretrained"]
