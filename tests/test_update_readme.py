"""The README's generated results table: rows from metrics.json, the marker block."""
import json
import os
import shutil
import sys

import pytest
from click.testing import CliRunner

from maml_tf import reporting

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "reproduce"))
import update_readme  # noqa: E402

START, END = update_readme.START, update_readme.END


def _sinusoid_metrics(steps):
    """The committed Figure 3 result, its curves cut to ``steps`` inner steps (a smoke run's)."""
    with open(os.path.join(REPO_ROOT, "results", "fig3_sinusoid", "metrics.json")) as f:
        m = json.load(f)
    for key in ("curves", "ci95", "median", "diverged"):
        for method in m[key]:
            m[key][method] = {k: v[:steps + 1] for k, v in m[key][method].items()}
    return m


def test_sinusoid_row_shows_figure_3_steps():
    row = update_readme.sinusoid_rows(_sinusoid_metrics(10), "fig3_sinusoid")[0]
    assert "MSE after 1 / 5 / 10 steps" in row and "0.67 / 0.38 / 0.35" in row


def test_sinusoid_row_of_a_short_curve_keeps_the_steps_it_has():
    row = update_readme.sinusoid_rows(_sinusoid_metrics(3), "fig3_sinusoid_smoke")[0]
    assert "MSE after 1 steps" in row and "| 0.67 |" in row and row.count("|") == 7


def test_replace_block_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold row\n{END}\nafter\n")
    reporting.replace_block(readme, START, END, "new row")
    assert readme.read_text() == f"intro\n{START}\nnew row\n{END}\nafter\n"


def test_replace_block_appends_when_the_markers_are_missing(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n")
    reporting.replace_block(readme, START, END, "row")
    assert readme.read_text() == f"intro\n{START}\nrow\n{END}"


def test_replace_block_refuses_a_start_marker_without_end(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold row\n## Next section\nkept\n")
    with pytest.raises(ValueError, match="no '<!-- END GENERATED -->'"):
        reporting.replace_block(readme, START, END, "row")
    assert "## Next section\nkept" in readme.read_text()


def test_smoke_results_stay_out_of_the_table(tmp_path):
    results = tmp_path / "results"
    for name in ("fig3_sinusoid", "fig3_sinusoid_smoke"):
        shutil.copytree(os.path.join(REPO_ROOT, "results", "fig3_sinusoid"), results / name)
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    out = CliRunner().invoke(update_readme.main, ["--readme", str(readme), "--results", str(results)])
    assert out.exit_code == 0, out.output
    text = readme.read_text()
    assert "[results/fig3_sinusoid]" in text and "fig3_sinusoid_smoke" not in text


def test_step_size_rows_give_the_meta_batch_of_the_checkpoints_scored():
    with open(os.path.join(REPO_ROOT, "results", "fig4_step_sizes", "metrics.json")) as f:
        m = json.load(f)
    with open(os.path.join(REPO_ROOT, m["checkpoints"], "run.json")) as f:
        meta_batch = json.load(f)["hyperparameters"]["meta_batch_size"]
    rows = {row.split(" | ")[1]: row for row in update_readme.step_size_rows(m, "fig4_step_sizes")}
    assert f"{m['iterations']['maml']:,} it. × {meta_batch} tasks (paper preset)" in rows["maml"]
    assert "untrained; test steps" in rows["random"]
    m["checkpoints"] = "checkpoints/nowhere"  # scored elsewhere: no meta-batch rather than a wrong one
    assert f"{m['iterations']['maml']:,} it. (paper preset)" in update_readme.step_size_rows(m, "x")[0]
