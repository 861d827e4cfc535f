"""What the two Table 1 scripts share: run a setting, merge its row into
results/<name>/metrics.json, write table.md and the PNGs."""
import dataclasses
import os
import time

import click

from maml_tf import presets, reporting
from maml_tf.core.maml import TASK_PARALLELISM
from maml_tf.distribute import STRATEGIES
from maml_tf.experiments.runs import RunDirectoryMismatch


def options(table, default_run_root):
    """The click options both scripts take."""
    def decorate(fn):
        for option in reversed([
            click.option("--preset", "budget", type=click.Choice(sorted(presets.BUDGETS)), default="paper",
                         show_default=True, help="Budget (maml_tf/presets.py); the method is the paper's, except "
                              "'code': the authors' code's loss scale, layers, batch-norm handling and test steps."),
            click.option("--setting", "settings", multiple=True, type=click.Choice(sorted(table)),
                         help="Table 1 row(s) to run (repeatable); default: all."),
            click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                         help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets)."),
            click.option("--run-dir", type=click.Path(file_okay=False), default=None,
                         help=f"Checkpoints and logs, reused to resume (default {default_run_root}/<preset>)."),
            click.option("--out", type=click.Path(file_okay=False), default=None,
                         help="Where metrics.json, table.md and PNGs go."),
            click.option("--train/--no-train", default=True, show_default=True,
                         help="--no-train: evaluate the latest checkpoint of each setting as it is."),
            click.option("--time-limit", type=click.FloatRange(min=0), default=None,
                         help="Minutes of training per setting; then stop at a checkpoint and "
                              "evaluate what is there (run again to resume)."),
            click.option("--task-parallelism", type=click.Choice(TASK_PARALLELISM), default=None,
                         help="How a meta-batch's tasks run (speed and memory only; default: the "
                              "preset's, e.g. unrolled for 20-way 1-shot, which needs ~7 GB)."),
            click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
                         help="tf.distribute strategy for meta-training: mirrored = every local GPU, "
                              "multi-worker = the cluster in TF_CONFIG (same command on every machine)."),
            click.option("--verbose", type=click.IntRange(0, 2), default=2, show_default=True),
        ]):
            fn = option(fn)
        return fn
    return decorate


def run(name, table, budget, settings, data_dir, run_dir, out, train, time_limit, verbose,
        default_run_root, task_parallelism=None, strategy="default", data_note=None):
    """Train (resuming) and meta-test each setting; merge the rows into ``out``.

    ``data_note`` says what the data were when they are not the real dataset."""
    from maml_tf import distribute
    from maml_tf.experiments import classification
    from maml_tf.experiments.errors import TrainingDiverged
    from maml_tf.report import records, schema, tables

    strategy = _strategy(strategy)
    chosen = [presets.classification(table, setting, budget) for setting in settings or sorted(table)]
    try:  # before any training, so a bad meta-batch / replica pairing costs nothing
        for preset in chosen:
            distribute.check_meta_batch(preset.meta_batch_size, strategy)
    except ValueError as error:
        raise click.ClickException(str(error)) from None

    run_root = run_dir or os.path.join(default_run_root, budget)
    out = out or os.path.join("results", name + ("" if budget == "paper" else f"_{budget}"))
    metrics_path = os.path.join(out, "metrics.json")
    try:
        doc = (schema.load(metrics_path) if os.path.exists(metrics_path)
               else schema.document(name, "classification", []))
    except schema.SchemaError as error:
        raise click.ClickException(f"{error} Or choose another --out.") from None
    for preset in chosen:
        setting = preset.setting
        if task_parallelism:
            preset = dataclasses.replace(preset, task_parallelism=task_parallelism)
        setting_dir = os.path.join(run_root, setting)
        click.echo(f"[{setting}] {preset.iterations:,} iterations, meta-batch {preset.meta_batch_size}, "
                   f"{preset.inner_steps} step(s) alpha {preset.inner_lr}; checkpoints in {setting_dir}")
        try:
            if train:
                limit = None if time_limit is None else 60 * time_limit
                maml, done = classification.train(preset, setting_dir, data_dir, verbose, time_limit=limit,
                                                  strategy=strategy)
            else:
                maml = classification.load_latest(preset, setting_dir)
                done = classification.completed_iterations(setting_dir)
            started = time.time()
            result = classification.evaluate(preset, maml, data_dir)
        except (FileNotFoundError, RunDirectoryMismatch, TrainingDiverged) as error:  # incl. DatasetNotFoundError
            raise click.ClickException(str(error)) from None
        row = records.classification(
            name, preset, budget, result, done, classification.seconds_per_iteration(setting_dir),
            classification.validation_curve(setting_dir),
            reporting.training_history(setting_dir))
        row["budget"]["eval_seconds"] = round(time.time() - started, 1)
        doc["rows"] = schema.merge_rows(doc, [row])
        click.echo(f"[{setting}] {tables.mean_ci(row, preset.eval_inner_steps, 2)}% after "
                   f"{preset.eval_inner_steps} steps ({done:,} iterations; paper {tables.paper_accuracy(row)})")
        markdown = write(table, doc, out, data_note)  # after every row: a later one may be interrupted
    click.echo(markdown)
    click.echo(f"wrote {out}/")
    return doc


def _strategy(name):
    """The ``tf.distribute`` strategy called ``name``, or a clean click error."""
    from maml_tf import distribute
    try:
        return distribute.strategy(name)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def write(table, doc, out, data_note):
    """metrics.json, table.md and accuracy.png of the rows so far, in the table's order;
    returns the markdown."""
    from maml_tf.report import render
    order = list(table)
    doc["rows"].sort(key=lambda r: order.index(r["setting"]))
    doc.update(machine=reporting.machine(), command=reporting.command(), data=data_note or "real")
    return render.write(doc, out)
