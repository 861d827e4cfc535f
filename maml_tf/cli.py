"""The ``maml`` command (click): train, evaluate, export, prepare data.

A run directory (``maml_tf.experiments.runs``) holds everything of one training run:
``run.json`` (experiment, preset, every hyperparameter), the checkpoints and training
logs (``maml/``, resumed by running the same ``maml train`` again), TensorBoard logs
(``tensorboard/``) and ``metrics.json`` (meta-test). Presets come from
``maml_tf/presets.py``, the same definitions the reproduce scripts use.
"""
import contextlib
import dataclasses
import os

import click

from maml_tf import presets
from maml_tf.distribute import STRATEGIES
from maml_tf.experiments.runs import RECORD, LegacyRunDirectory, RunDirectory, RunDirectoryMismatch, preset_of

DATASETS = ("omniglot", "mini_imagenet")
# Experiment -> its presets: the paper's sinusoid presets, or Table 1 rows at a budget.
EXPERIMENTS = {"sinusoid": presets.SINUSOID, "omniglot": presets.OMNIGLOT,
               "mini_imagenet": presets.MINI_IMAGENET}


@click.group()
@click.version_option(package_name="maml-tf")
def main():
    """maml-tf: Model-Agnostic Meta-Learning for TensorFlow / Keras."""


# ----------------------------------------------------------------------------- maml train
def _check_choices(ctx, experiment, preset, setting):
    """Usage errors for option values that depend on the experiment (before any work)."""
    if experiment == "sinusoid":
        if setting:
            raise click.UsageError("sinusoid has no --setting (its presets are "
                                   f"{', '.join(sorted(presets.SINUSOID))}).", ctx)
        if preset not in presets.SINUSOID:
            raise click.BadParameter(f"{preset!r} is not a sinusoid preset; choose one of "
                                     f"{', '.join(sorted(presets.SINUSOID))}.", ctx, param_hint="--preset")
        return
    if preset not in presets.BUDGETS:
        raise click.BadParameter(f"{preset!r} is not a preset of {experiment}; choose one of "
                                 f"{', '.join(sorted(presets.BUDGETS))}.", ctx, param_hint="--preset")
    if setting not in EXPERIMENTS[experiment]:
        raise click.BadParameter(f"{experiment} settings are {', '.join(sorted(EXPERIMENTS[experiment]))}"
                                 + ("" if setting else " (pass one with --setting)") + ".",
                                 ctx, param_hint="--setting")


def _preset(experiment, preset, setting):
    if experiment == "sinusoid":
        return presets.get(presets.SINUSOID, preset)
    return presets.classification(EXPERIMENTS[experiment], setting, preset)


@main.command()
@click.argument("experiment", type=click.Choice(sorted(EXPERIMENTS)))
@click.option("--preset", default="paper", show_default=True,
              help="Sinusoid: paper | code | quick | smoke. Omniglot / mini_imagenet: paper | code "
                   "(the authors' loss scale, layers and batch-norm handling) | quick | smoke.")
@click.option("--setting", default=None,
              help="Table 1 row for omniglot / mini_imagenet, e.g. 5way1shot, 20way1shot, 5way1shot_fo.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/<experiment>/<preset>[/<setting>]); reused to resume.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
              help="tf.distribute strategy: mirrored = every local GPU, multi-worker = the "
                   "cluster in TF_CONFIG (same command on every machine).")
@click.option("--time-limit", type=click.FloatRange(min=0), default=None,
              help="Minutes of training; then stop at the next checkpoint (run again to resume).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets).")
@click.option("--verbose", type=click.IntRange(0, 2), default=1, show_default=True,
              help="1: a progress bar per epoch; 2: one line per epoch.")
@click.pass_context
def train(ctx, experiment, preset, setting, run_dir, strategy, time_limit, data_dir, verbose):
    """Meta-train EXPERIMENT (resuming its run directory), then meta-test it."""
    _check_choices(ctx, experiment, preset, setting)
    config = _preset(experiment, preset, setting)
    run_dir = run_dir or os.path.join("runs", experiment, preset, *([setting] if setting else []))
    from maml_tf.experiments import classification, sinusoid
    try:  # before any work: a refused directory stays as it was
        (sinusoid if experiment == "sinusoid" else classification).check_run_dir(config, run_dir)
    except RunDirectoryMismatch as error:
        raise click.ClickException(str(error)) from None

    import keras
    from maml_tf import distribute
    from maml_tf.callbacks import TimeLimit

    try:
        chosen = distribute.strategy(strategy)
        distribute.check_meta_batch(config.meta_batch_size, chosen)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    extra = [keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"))]
    limit = None if time_limit is None else 60 * time_limit
    with _run_errors():
        if experiment == "sinusoid":
            extra += [] if limit is None else [TimeLimit(limit)]
            maml, _, finished = sinusoid.train(config, "maml", run_dir, verbose, extra, chosen)
        else:
            maml, done = classification.train(config, run_dir, data_dir, verbose, limit, extra, chosen)
            finished = done >= config.iterations
        click.echo(f"{'finished' if finished else 'stopped at a checkpoint (run again to resume)'}: {run_dir}")
        _report(run_dir, _meta_test(experiment, config, maml, data_dir))


# ----------------------------------------------------------------------------- maml evaluate
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--tasks", type=click.IntRange(min=1), default=None,
              help="Fixed test tasks to score (default: the preset's, 600 for the paper).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets).")
def evaluate(run_dir, tasks, data_dir):
    """Meta-test the latest weights of RUN_DIR on the fixed test tasks; writes metrics.json."""
    experiment, config = _read_config(run_dir)
    if tasks:
        config = dataclasses.replace(config, eval_tasks=tasks)
    with _run_errors():
        _report(run_dir, _meta_test(experiment, config, _load(experiment, config, run_dir), data_dir))


# ----------------------------------------------------------------------------- maml export
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Inner steps at serving time (default: the run's eval_inner_steps).")
def export(run_dir, out, steps):
    """Write RUN_DIR's model to OUT as a SavedModel that adapts at serving time
    (signatures adapt_and_predict, adapt, predict, config)."""
    from maml_tf import export as saved_model

    experiment, config = _read_config(run_dir)
    if os.path.exists(out) and os.listdir(out):
        raise click.UsageError(f"{out} exists and is not empty: choose a new directory "
                               "(TF Serving expects <model>/<version>/).")
    saved_model.save(_load(experiment, config, run_dir), out, steps=steps)
    click.echo(f"SavedModel in {out} (serve it with TF Serving; see the README, Export and serve)")


# ----------------------------------------------------------------------------- maml data prepare
@main.group()
def data():
    """Prepare datasets offline from local files."""


@data.command("prepare")
@click.argument("name", type=click.Choice(DATASETS))
@click.option("--from", "source", type=click.Path(file_okay=False), default=None,
              help="Folder with the source files, read offline. Omniglot: the four upstream zips "
                   "(without --from, TFDS downloads them). MiniImagenet (required): images/, with "
                   "or without train/val/test.csv, or the three mini-imagenet-cache-*.pkl files.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets).")
def prepare(name, source, data_dir):
    """Build dataset NAME for tensorflow-datasets (offline with --from)."""
    with _run_errors():
        if name == "omniglot":
            from maml_tf.datasets import omniglot
            if source is None:  # TFDS retries for minutes before it gives up offline
                click.echo("omniglot: downloading through TFDS (offline: --from DIR)", err=True)
            out = omniglot.prepare(source, data_dir)
            images = omniglot.load_characters(out)  # decode once now, cached for training
            click.echo(f"omniglot: {images.shape[0]} characters x {images.shape[1]} drawings in {out}")
        else:
            if source is None:
                raise click.UsageError("mini_imagenet needs --from DIR (its images are not shipped).")
            from maml_tf.datasets import mini_imagenet
            out = mini_imagenet.prepare(source, data_dir)
            for split in ("train", "validation", "test"):
                images, _ = mini_imagenet.load(split, out)
                click.echo(f"mini_imagenet {split}: {images.shape[0]} classes x {images.shape[1]} images")
            click.echo(f"prepared in {out}")


# ----------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _run_errors():
    """A missing dataset or a diverging run becomes a clean click error (its message says
    what to do: how to prepare the data, which hyperparameter to lower)."""
    from maml_tf.datasets import DatasetNotFoundError
    from maml_tf.experiments.errors import TrainingDiverged
    try:
        yield
    except (DatasetNotFoundError, TrainingDiverged) as error:
        raise click.ClickException(str(error)) from None


def _read_config(run_dir):
    path = os.path.join(run_dir, RECORD)
    try:
        saved = RunDirectory(run_dir).record()
    except LegacyRunDirectory as error:
        raise click.ClickException(str(error)) from None
    except RunDirectoryMismatch as error:
        raise click.UsageError(str(error)) from None
    if saved is None:
        raise click.UsageError(f"{run_dir} is not a run directory (no {RECORD}): make one with "
                               "`maml train EXPERIMENT --run-dir DIR`.")
    try:
        return saved["experiment"], preset_of(saved)
    except (ValueError, KeyError, TypeError, AttributeError) as error:  # JSONDecodeError is a ValueError
        raise click.UsageError(
            f"{path} is not a config this version of maml_tf can read ({type(error).__name__}: {error}); "
            "it was edited by hand or written by another version: train again into a new run "
            "directory, or restore the file.") from None


def _load(experiment, config, run_dir):
    try:
        if experiment == "sinusoid":
            from maml_tf.experiments import sinusoid
            return sinusoid.load_latest(config, run_dir)
        from maml_tf.experiments import classification
        return classification.load_latest(config, run_dir)
    except (FileNotFoundError, RunDirectoryMismatch) as error:
        raise click.ClickException(str(error)) from None


def _meta_test(experiment, config, maml, data_dir):
    """The experiment's meta-test: accuracy (classification) or MSE (sinusoid) per step,
    returned with what :func:`_report` needs to make result records of it."""
    if experiment == "sinusoid":
        from maml_tf.experiments import sinusoid
        return experiment, config, sinusoid.meta_test(config, {"maml": maml})
    from maml_tf.experiments import classification
    return experiment, config, classification.evaluate(config, maml, data_dir)


def _report(run_dir, evaluation):
    """Write a meta-test's result records (maml_tf.report's schema, as the reproduce scripts
    write them) to RUN_DIR/metrics.json and print them."""
    from maml_tf import reporting
    from maml_tf.report import records, schema, tables
    experiment, config, result = evaluation
    name = {"sinusoid": "fig3_sinusoid", "omniglot": "table1_omniglot",
            "mini_imagenet": "table1_miniimagenet"}[experiment]
    if experiment == "sinusoid":
        from maml_tf.experiments import sinusoid
        rows = records.sinusoid(name, config, result, diverged_above=sinusoid.DIVERGED_MSE,
                                iterations=sinusoid.completed_iterations(run_dir))
        for row in rows:
            click.echo(f"meta-test MSE {row['setting']}: " + " ".join(f"{m:.3f}" for m in row["metric"]["mean"]))
        kind = "regression"
    else:
        from maml_tf.experiments import classification
        row = records.classification(
            name, config, config.name, result, classification.completed_iterations(run_dir),
            classification.seconds_per_iteration(run_dir),
            classification.validation_curve(run_dir), reporting.training_history(run_dir))
        rows, kind = [row], "classification"
        click.echo(f"meta-test accuracy {tables.mean_ci(row, config.eval_inner_steps, 2)}% after "
                   f"{config.eval_inner_steps} steps ({row['metric']['tasks']} tasks)")
    path = os.path.join(run_dir, "metrics.json")
    schema.save(path, schema.document(name, kind, rows, command=reporting.command(), machine=reporting.machine()))
    click.echo(f"wrote {path}")

if __name__ == "__main__":
    main()
