"""The README's generated results summary: lines from metrics.json, the marker block
(on temporary copies of the README and results)."""
import os
import shutil
import sys

import pytest
from click.testing import CliRunner

from maml_tf.report import blocks

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "reproduce"))
import update_readme  # noqa: E402

START, END = update_readme.START, update_readme.END


def test_replace_block_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold row\n{END}\nafter\n")
    blocks.replace_block(readme, START, END, "new row")
    assert readme.read_text() == f"intro\n{START}\nnew row\n{END}\nafter\n"


def test_replace_block_appends_when_the_markers_are_missing(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n")
    blocks.replace_block(readme, START, END, "row")
    assert readme.read_text() == f"intro\n{START}\nrow\n{END}"


def test_replace_block_refuses_a_start_marker_without_end(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold row\n## Next section\nkept\n")
    with pytest.raises(ValueError, match="no '<!-- END GENERATED -->'"):
        blocks.replace_block(readme, START, END, "row")
    assert "## Next section\nkept" in readme.read_text()


def test_summary_of_the_committed_results_in_a_copy_of_the_readme(tmp_path):
    """One line per MAML result the paper reports (baselines stay in the linked tables),
    each linking to its table, between the markers of a copy of the README; the text
    around the block is kept."""
    readme = tmp_path / "README.md"
    shutil.copy(os.path.join(REPO_ROOT, "README.md"), readme)
    results = shutil.copytree(os.path.join(REPO_ROOT, "results"), tmp_path / "results")
    before = readme.read_text()
    out = CliRunner().invoke(update_readme.main, ["--readme", str(readme), "--results", str(results)])
    assert out.exit_code == 0, out.output
    text = readme.read_text()
    assert text.split(START)[0] == before.split(START)[0] and text.split(END)[1] == before.split(END)[1]
    lines = text.split(START)[1].split(END)[0].strip().splitlines()
    assert lines[:2] == update_readme.summary.HEADER
    assert all(line.count(" | ") == 4 for line in lines[2:])
    omniglot = [line for line in lines if "(results/table1_omniglot/table.md)" in line]
    names = [line.split(" | ")[0] for line in omniglot]  # in the paper table's order of settings
    one, twenty = (names.index(f"| [Omniglot {s}](results/table1_omniglot/table.md), accuracy % after 3 steps")
                   for s in ("5way1shot", "20way1shot"))
    assert one == 0 and twenty > one
    assert "| 95.27 ± 0.41 | 95.8 ± 0.3 | 60,000 it. × 16 tasks, paper preset |" in omniglot[twenty]
    # Figure 4 with step sizes chosen on validation goals: MAML's selected row, per preset.
    assert sum("step sizes selected" in line for line in lines) == 2
    assert all(line.split(" | ")[1] in update_readme.summary.MAML_METHODS for line in lines[2:])
    # Generated images check the pipeline, a quick preset beside the paper's is superseded:
    # neither in the README (docs/reproduction.md lists them).
    assert not [line for line in lines if "synthetic" in line]
    studies = text.split(update_readme.STUDIES_START)[1].split(END)[0]
    for name in os.listdir(results):
        # Every paper result has its line in the table; a study's (maml study) its line in the studies block.
        link = f"(results/{name}/table.md)"
        superseded = name.endswith("_quick") and os.path.isdir(results / name[:-len("_quick")])
        listed = not (update_readme.is_study(name) or "_synthetic" in name or superseded)
        assert (link in "\n".join(lines)) == listed, name
        assert (link in studies) == update_readme.is_study(name), name
    with_results = [s for s in update_readme.registry.STUDIES.values() if os.path.isdir(results / s.result_name)]
    assert [line[:4] for line in studies.strip().splitlines()] == ["- **"] * len(with_results)


def test_the_reproduction_document_beside_the_readme_lists_every_method(tmp_path):
    """docs/reproduction.md beside the README gets one line per method, baselines included,
    its links relative to docs/; the README keeps MAML's only."""
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    (tmp_path / "docs").mkdir()
    document = tmp_path / "docs" / "reproduction.md"
    document.write_text(f"# Reproducing\n{START}\n{END}\nFindings\n")
    results = shutil.copytree(os.path.join(REPO_ROOT, "results", "fig5_cheetah_vel"),
                              tmp_path / "results" / "fig5_cheetah_vel")
    out = CliRunner().invoke(update_readme.main, ["--readme", str(readme), "--results", str(results.parent)])
    assert out.exit_code == 0, out.output
    text = document.read_text()
    assert text.startswith(f"# Reproducing\n{START}\n") and text.endswith(f"{END}\nFindings\n")
    lines = text.split(START)[1].split(END)[0].strip().splitlines()[2:]
    assert [line.split(" | ")[1] for line in lines] == ["maml", "pretrained", "random", "oracle"]
    assert "return after 0 steps | oracle" in lines[3] and "| -54.5 |" in lines[3]
    assert "| about -255 |" in lines[2] and "| untrained, paper preset" in lines[2]
    assert all(line.startswith("| [Figure 5: half-cheetah, goal velocity](../results/fig5_cheetah_vel/table.md), ")
               for line in lines)
    assert len(readme.read_text().split(START)[1].split(END)[0].strip().splitlines()) == 3  # header + MAML


def test_smoke_results_stay_out_of_the_summary(tmp_path):
    results = tmp_path / "results"
    for name in ("fig3_sinusoid", "fig3_sinusoid_smoke"):
        shutil.copytree(os.path.join(REPO_ROOT, "results", "fig3_sinusoid"), results / name)
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    out = CliRunner().invoke(update_readme.main, ["--readme", str(readme), "--results", str(results)])
    assert out.exit_code == 0, out.output
    text = readme.read_text()
    assert "(results/fig3_sinusoid/table.md)" in text and "fig3_sinusoid_smoke" not in text


def test_a_results_file_of_another_schema_is_a_clean_error(tmp_path):
    results = tmp_path / "results"
    (results / "old").mkdir(parents=True)
    (results / "old" / "metrics.json").write_text('{"rows": [], "name": "table1_omniglot"}')
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    out = CliRunner().invoke(update_readme.main, ["--readme", str(readme), "--results", str(results)])
    assert out.exit_code == 1 and "schema version 1" in out.output and "Traceback" not in out.output
    assert readme.read_text() == f"{START}\n{END}\n"


def test_generated_data_results_are_listed_in_the_document_only(tmp_path):
    """Runs on generated images check the pipeline: docs/reproduction.md lists them, with no
    paper number beside them; the README's table keeps real-data results only."""
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\n")
    (tmp_path / "docs").mkdir()
    document = tmp_path / "docs" / "reproduction.md"
    document.write_text(f"{START}\n{END}\n")
    name = "table1_miniimagenet_synthetic_quick"
    results = shutil.copytree(os.path.join(REPO_ROOT, "results", name), tmp_path / "results" / name)
    out = CliRunner().invoke(update_readme.main, ["--readme", str(readme), "--results", str(results.parent)])
    assert out.exit_code == 0, out.output
    assert name not in readme.read_text()
    listed = [line for line in document.read_text().splitlines() if f"(../results/{name}/table.md)" in line]
    assert listed and all(line.split(" | ")[3] == "— (pipeline check)" for line in listed)
