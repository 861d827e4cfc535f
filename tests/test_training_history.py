"""The training history a checkpoint directory keeps (maml_tf/reporting.py): which
command trained which iterations, so a result resumed over many runs names them all
(rendered by maml_tf/report/tables.py)."""
import sys

from maml_tf import reporting
from maml_tf.report.tables import history_lines


def test_runs_are_appended_in_order_per_part(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["reproduce/fig5_locomotion.py", "--until", "100"])
    reporting.record_training(tmp_path, 0, 100, part="maml")
    reporting.record_training(tmp_path, 0, 40, part="oracle")
    monkeypatch.setattr(sys, "argv", ["reproduce/fig5_locomotion.py", "--until", "200"])
    reporting.record_training(tmp_path, 100, 200, part="maml")
    maml = reporting.training_history(tmp_path, "maml")
    assert [(r["from_iteration"], r["to_iteration"]) for r in maml] == [(0, 100), (100, 200)]
    assert [r["command"] for r in maml] == ["reproduce/fig5_locomotion.py --until 100",
                                            "reproduce/fig5_locomotion.py --until 200"]
    assert all(r["date"].endswith("UTC") for r in maml)
    assert [r["to_iteration"] for r in reporting.training_history(tmp_path, "oracle")] == [40]
    assert reporting.training_history(tmp_path) == []  # no part "" recorded


def test_a_run_that_trained_nothing_is_not_recorded(tmp_path):
    reporting.record_training(tmp_path, 50, 50)
    assert not (tmp_path / reporting.TRAINING_HISTORY).exists()
    assert reporting.training_history(tmp_path) == []


def test_commands_with_commas_and_quotes_survive(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["maml", "train", "--note", 'a, "b"'])
    reporting.record_training(tmp_path, 0, 1)
    assert reporting.training_history(tmp_path)[0]["command"] == 'maml train --note a, "b"'


def test_history_lines_name_every_span_including_unrecorded_ones():
    run = lambda a, b, c: {"from_iteration": a, "to_iteration": b, "command": c, "date": "d"}
    lines = history_lines([run(500, 1000, "x"), run(1500, 2000, "y")], 2500)
    assert lines[0].startswith("- 0 -> 500: command not recorded")
    assert lines[1] == "- 500 -> 1,000: `x` (d)"
    assert lines[2].startswith("- 1,000 -> 1,500: command not recorded")
    assert lines[3] == "- 1,500 -> 2,000: `y` (d)"
    assert lines[4].startswith("- 2,000 -> 2,500: command not recorded")
    assert len(lines) == 5
    assert history_lines([], 0) == []
    assert history_lines([run(0, 10, "z")], 10) == ["- 0 -> 10: `z` (d)"]


def test_each_run_records_its_machine_and_the_table_names_where_a_row_trained(tmp_path, monkeypatch):
    from maml_tf.report.tables import trained_on
    monkeypatch.setattr(reporting, "cpu_name", lambda: "Intel Xeon")
    reporting.record_training(tmp_path, 0, 100)
    monkeypatch.setattr(reporting, "cpu_name", lambda: "AMD EPYC")
    reporting.record_training(tmp_path, 100, 200)
    runs = reporting.training_history(tmp_path)
    assert [r["machine"].split(",")[0] for r in runs] == ["Intel Xeon", "AMD EPYC"]
    assert history_lines(runs, 200)[1].endswith(f"UTC, AMD EPYC, {runs[1]['machine'].split(', ')[1]})")
    doc = {"machine": {"cpu": "page's"}}
    assert trained_on({"training_history": runs, "machine": {"cpu": "evaluator"}}, doc) == "Intel Xeon, AMD EPYC"
    older = [{k: v for k, v in r.items() if k != "machine"} for r in runs]  # kept before machines were
    assert trained_on({"training_history": older, "machine": {"cpu": "evaluator"}}, doc) == "evaluator"
    assert trained_on({"training_history": None, "machine": None}, doc) == "page's"


def test_the_cli_is_recorded_as_maml_from_any_checkout_or_worktree(tmp_path, monkeypatch):
    """``python -m maml_tf.cli`` from a worktree and the installed script record what a user
    types (``maml``), and so do records made before: the pages render them the same."""
    for script in ("/work/wt/train/maml_tf/cli.py", "/repo/.venv/bin/maml", "maml"):
        monkeypatch.setattr(sys, "argv", [script, "train", "ant-vel", "--until", "100"])
        assert reporting.command() == "maml train ant-vel --until 100"
    monkeypatch.setattr(sys, "argv", ["/elsewhere/reproduce/fig5_locomotion.py", "--task", "ant-dir"])
    assert reporting.command() == "/elsewhere/reproduce/fig5_locomotion.py --task ant-dir"  # not a file here
    assert reporting.as_typed("../wt/train2/maml_tf/cli.py train ant-vel --until 100") == "maml train ant-vel --until 100"
    assert reporting.as_typed("reproduce/fig4_navigation.py") == "reproduce/fig4_navigation.py"
    old = {"from_iteration": 0, "to_iteration": 100, "command": "../wt/train/maml_tf/cli.py train ant-vel", "date": "d"}
    assert history_lines([old], 100) == ["- 0 -> 100: `maml train ant-vel` (d)"]
