"""Regenerate the results summaries from results/*/metrics.json (never typed by hand): the
README's, one line per MAML result the paper reports, and docs/reproduction.md's beside it,
one line per method (baselines included); each line links to its table.md. The README's
studies block has one line per study (maml_tf/studies/), its answer in numbers.

    python reproduce/update_readme.py
"""
import json
import os
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf import import_tensorflow_quietly  # noqa: E402
from maml_tf.cli import library_errors  # noqa: E402
from maml_tf.experiments import registry  # noqa: E402

import_tensorflow_quietly()  # before maml_tf.report imports it
from maml_tf.report import blocks, schema, summary  # noqa: E402

START, END = "<!-- GENERATED: reproduce/update_readme.py -->", "<!-- END GENERATED -->"
STUDIES_START = "<!-- GENERATED studies: reproduce/update_readme.py -->"


def is_study(name):
    """Whether results/``name`` is a study's (``maml study``; its own page and summary line,
    not a paper result of the schema), at any preset."""
    return any(name == s.result_name or name.startswith(s.result_name + "_") for s in registry.STUDIES.values())


def summary_lines(results, readme, methods=summary.MAML_METHODS, everything=False):
    """The summary table of every paper result under ``results`` except smoke runs (which
    check that the pipeline runs; their numbers are not results) and the studies' results
    (:func:`is_study`); unless ``everything``, also without runs on generated data and
    quick-preset results of an experiment that has paper-preset ones. Rows of ``methods``
    (None: all), links relative to ``readme``."""
    lines = list(summary.HEADER)
    names = sorted(os.listdir(results))
    for name in names:
        path = os.path.join(results, name, "metrics.json")
        superseded = name.endswith("_quick") and name[:-len("_quick")] in names
        if (os.path.exists(path) and not name.endswith("_smoke") and not is_study(name)
                and (everything or not ("_synthetic" in name or superseded))):
            doc = schema.load(path)
            link = os.path.relpath(os.path.join(results, name, "table.md"), os.path.dirname(os.path.abspath(readme)))
            lines += summary.lines(doc, link, methods)
    return lines


def study_lines(results, readme):
    """One line per study with results under ``results``: its answer (the study module's
    ``summary(metrics)``), linking to its table.md."""
    lines = []
    for name, study in registry.STUDIES.items():
        path = os.path.join(results, study.result_name, "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                metrics = json.load(f)
            link = os.path.relpath(os.path.join(results, study.result_name, "table.md"),
                                   os.path.dirname(os.path.abspath(readme)))
            lines.append(f"- {registry.study(name).summary(metrics)} ([results]({link}))")
    return lines


@click.command()
@click.option("--readme", default="README.md", show_default=True)
@click.option("--results", default="results", show_default=True)
def main(readme, results):
    """Rewrite the block between the GENERATED markers of the README, and of
    docs/reproduction.md beside it when there is one."""
    with library_errors():
        blocks.publish_table(readme, START, END, summary_lines(results, readme))
        blocks.publish_table(readme, STUDIES_START, END, study_lines(results, readme))
        document = os.path.join(os.path.dirname(os.path.abspath(readme)), "docs", "reproduction.md")
        if os.path.exists(document):
            blocks.replace_block(document, START, END, "\n".join(summary_lines(results, document, methods=None,
                                                                     everything=True)))


if __name__ == "__main__":
    main()
