"""The ``maml`` command (click), the front door of every experiment: train, evaluate, export,
prepare data, reproduce a figure or table of the paper.

A run directory (``maml_tf.experiments.runs``) holds everything of one training run:
``run.json`` (experiment, preset, every hyperparameter), the checkpoints and training
logs (one folder per method, resumed by running the same command again), TensorBoard logs
(``tensorboard/``) and ``metrics.json`` (meta-test). Experiments, presets and targets come
from ``maml_tf.experiments.registry``; TensorFlow is imported only when a command runs.
"""
import contextlib
import logging
import os
import sys

import click

from maml_tf import import_tensorflow_quietly
from maml_tf.distribute import STRATEGIES
from maml_tf.experiments import registry
from maml_tf.presets import PRECISIONS

DATASETS = ("omniglot", "mini_imagenet")
PRESETS_HELP = ("Budget and method (maml_tf/presets.py): paper | code (the authors' code's settings) | quick | "
                "smoke; authors: the code's settings on the authors' data too (Omniglot images), test "
                "(navigation) or environment (cheetah-dir); code_stream, authors_stream (navigation): code, "
                "authors with the authors' training sampler (a stream of episodes per task); code_exact, "
                "authors_exact (cheetah-dir): code, authors with exact TRPO products, 500 iterations.")


@click.group()
@click.version_option(package_name="maml-tf")
def main():
    """maml-tf: Model-Agnostic Meta-Learning for TensorFlow / Keras."""


# ----------------------------------------------------------------------------- the shared options
def preset_option(fn):
    return click.option("--preset", default="paper", show_default=True, help=PRESETS_HELP)(fn)


def run_dir_option(help_text):
    return click.option("--run-dir", type=click.Path(file_okay=False), default=None, help=help_text)


def with_options(fn, options):
    """``fn`` with the click ``options``, shown in ``--help`` in the order listed."""
    for option in reversed(options):
        fn = option(fn)
    return fn


time_limit_option = click.option(
    "--time-limit", type=click.FloatRange(min=0), default=None,
    help="Minutes of training; then stop at the next checkpoint (run again to resume).")


def training_options(fn):
    """--time-limit, --until, --strategy, --data-dir, --verbose: the same for every command that trains."""
    return with_options(fn, [
        time_limit_option,
        click.option("--until", type=click.IntRange(min=0), default=None,
                     help="Train only up to this many iterations in this run (default: the preset's); a "
                          "later run with a larger --until resumes."),
        click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
                     help="tf.distribute strategy: mirrored = every local GPU, multi-worker = the cluster "
                          "in TF_CONFIG (same command on every machine). RL trains on one device."),
        data_dir_option,
        click.option("--verbose", type=click.IntRange(0, 2), default=None, callback=_terminal_verbosity,
                     help="0 silent, 1 a progress bar per epoch, 2 one line per epoch (Table 1: and one a minute "
                          "within it) or per RL iteration; "
                          "default 1 on a terminal, 2 when the output goes to a file or pipe."),
    ])


def _terminal_verbosity(ctx, param, value):
    """--verbose unset: Keras' progress bar on a terminal, plain lines in a log file."""
    if value is not None:
        return value
    return 1 if sys.stdout.isatty() else 2


def data_dir_option(fn):
    return click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets).")(fn)


@contextlib.contextmanager
def library_errors(ctx=None):
    """The one translation of the library's errors into click errors: a user's bad name or
    value is a usage error (exit 2), the rest (missing dataset, run directory of another
    setup, diverged training, bad strategy) a one-line error (exit 1) saying what to do."""
    import_tensorflow_quietly()
    from maml_tf.experiments.base import StrategyError
    from maml_tf.experiments.runs import RunDirectoryMismatch
    try:
        with _library_messages():
            yield
    except registry.UsageProblem as error:
        if error.param:
            raise click.BadParameter(str(error), ctx, param_hint=f"'{error.param}'") from None
        raise click.UsageError(str(error), ctx) from None
    except (RunDirectoryMismatch, StrategyError, FileNotFoundError) as error:  # incl. DatasetNotFoundError
        raise click.ClickException(str(error)) from None
    except Exception as error:  # the errors of modules that import TensorFlow, checked once they are loaded
        from maml_tf.experiments.checkpoints import CheckpointMismatch, NoUsableCheckpoint
        from maml_tf.experiments.errors import TrainingDiverged
        from maml_tf.report.schema import SchemaError
        if isinstance(error, NoUsableCheckpoint):
            raise click.ClickException(str(error)) from None
        if isinstance(error, CheckpointMismatch):
            raise click.ClickException(f"{error} Use another --run-dir, or delete that run directory to "
                                       "start over.") from None
        if isinstance(error, (TrainingDiverged, SchemaError)):
            raise click.ClickException(str(error)) from None
        raise


class _Echo(logging.Handler):
    """The library's log lines (resuming, a damaged checkpoint skipped, meta-test progress) on
    the command's output: warnings on stderr, the rest on stdout."""

    def emit(self, record):
        warning = record.levelno >= logging.WARNING
        click.echo(("warning: " if warning else "") + record.getMessage(), err=warning)


@contextlib.contextmanager
def _library_messages():
    logger, handler = logging.getLogger("maml_tf"), _Echo()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False  # printed once, not again by a handler of the root logger
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


# ----------------------------------------------------------------------------- maml train
sampling_workers_option = click.option(
    "--sampling-workers", type=click.IntRange(min=1), default=None,
    help="RL only: processes stepping the environments in parallel (default: the preset's, 1); the "
         "same trajectories for any number, so a run may resume with another.")


@main.command()
@click.argument("experiment", type=click.Choice(list(registry.EXPERIMENTS)))
@preset_option
@click.option("--setting", default=None,
              help="Table 1 row for omniglot / mini_imagenet, e.g. 5way1shot, 20way1shot, 5way1shot_fo.")
@click.option("--method", "methods", multiple=True, default=("maml",), show_default=True,
              help="Method(s) to train (repeatable): maml; sinusoid also pretrained, oracle; RL also "
                   "pretrained, random, oracle.")
@run_dir_option("Run directory (default checkpoints/<figure>/<preset>[/<setting>]); reused to resume.")
@training_options
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="Compute precision (default: the preset's, float32): mixed_bfloat16 runs the layers in "
                   "bfloat16 (weights, inner updates, losses in float32), faster only on CPUs with native "
                   "bfloat16 (amx_bf16 / avx512_bf16). Sinusoid and Table 1 only; a run may resume in another.")
@sampling_workers_option
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed (default: the preset's, 0): initial weights, training tasks, sampling, and the test "
                   "tasks drawn from it (not the authors' fixed ones). Another seed trains into "
                   "checkpoints/<figure>/<preset>_seed<N>[/<setting>] unless --run-dir is given; a run "
                   "directory resumes only with its own seed.")
@click.pass_context
def train(ctx, experiment, preset, setting, methods, run_dir, time_limit, until, strategy, data_dir, verbose,
          precision, sampling_workers, seed):
    """Train EXPERIMENT (resuming its run directory), then meta-test it into RUN_DIR/metrics.json."""
    with library_errors(ctx):
        if seed is not None and seed != registry.preset(experiment, preset, setting).seed and run_dir is None:
            run_dir = registry.default_run_dir(experiment, f"{preset}_seed{seed}", setting)
        if precision and registry.spec(experiment).implementation.startswith("rl:"):
            raise registry.UsageProblem(f"--precision is for sinusoid, omniglot and mini_imagenet, not {experiment} "
                                        "(RL trains in float32).", "--precision")
        if sampling_workers and not registry.spec(experiment).implementation.startswith("rl:"):
            raise registry.UsageProblem(f"--sampling-workers is for the RL experiments, not {experiment}.",
                                        "--sampling-workers")
        run = registry.create(experiment, preset, setting, run_dir, data_dir, methods, verbose,
                              **({"precision": precision} if precision else {}),
                              **({"sampling_workers": sampling_workers} if sampling_workers else {}),
                              **({"seed": seed} if seed is not None else {}))
        run.check()  # before any work: a refused directory stays as it was
        progress = run.train(until, time_limit, strategy, callbacks=_callbacks(run))
        click.echo(f"{'finished' if progress.finished else 'stopped at a checkpoint (run again to resume)'}: "
                   f"{run.run_dir}")
        _write_metrics(run)


def _callbacks(run):
    """TensorBoard logs for the Keras experiments; a line per iteration for RL."""
    if run.KIND == "rl":
        from maml_tf.experiments.targets import print_progress
        return [print_progress(run.preset, click.echo)] if run.verbose else []
    import keras
    return [keras.callbacks.TensorBoard(os.path.join(run.run_dir, "tensorboard"))]


# ----------------------------------------------------------------------------- maml evaluate
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--tasks", type=click.IntRange(min=1), default=None,
              help="Fixed test tasks to score (default: the preset's, 600 for the paper).")
@data_dir_option
@click.pass_context
def evaluate(ctx, run_dir, tasks, data_dir):
    """Meta-test the latest weights of RUN_DIR on the fixed test tasks; writes metrics.json."""
    with library_errors(ctx):
        _write_metrics(registry.open(run_dir, data_dir, **({"eval_tasks": tasks} if tasks else {})))


def _write_metrics(run):
    """Meta-test ``run`` into RUN_DIR/metrics.json (the schema every result uses); print its rows."""
    from maml_tf.report.summary import console
    for row in run.evaluate_and_store():
        click.echo(console(row))
    click.echo(f"wrote {run.metrics_path}")


# ----------------------------------------------------------------------------- maml export
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Inner steps at serving time (default: the run's eval_inner_steps).")
@click.pass_context
def export(ctx, run_dir, out, steps):
    """Write RUN_DIR's MAML model to OUT as a SavedModel that adapts at serving time
    (signatures adapt_and_predict, adapt, predict, config)."""
    with library_errors(ctx):
        run = registry.open(run_dir)
        if run.KIND == "rl":
            raise registry.UsageProblem(f"{run_dir} is an RL run: its policies are not exported as a SavedModel.")
        from maml_tf import export as saved_model
        try:
            saved_model.check_destination(out)
        except FileExistsError as error:
            raise registry.UsageProblem(str(error)) from None
        saved_model.save(run.learners()["maml"], out, steps=steps)
    click.echo(f"SavedModel in {out} (serve it with TF Serving; see docs/serving.md)")


# ----------------------------------------------------------------------------- maml data prepare
@main.group()
def data():
    """Prepare datasets offline from local files."""


@data.command("prepare")
@click.argument("name", type=click.Choice(DATASETS))
@click.option("--from", "source", type=click.Path(file_okay=False), default=None,
              help="Folder with the source files, read offline. Omniglot: the four upstream zips "
                   "(without --from, TFDS downloads them). MiniImagenet (required): the images, in images/ or in "
                   "class folders at any depth, with or without train/val/test.csv (the bundled Ravi & Larochelle "
                   "split otherwise), or the three mini-imagenet-cache-*.pkl files.")
@data_dir_option
@click.pass_context
def prepare(ctx, name, source, data_dir):
    """Build dataset NAME for tensorflow-datasets (offline with --from)."""
    with library_errors(ctx):
        if name == "omniglot":
            from maml_tf.datasets import omniglot
            if source is None:  # TFDS retries for minutes before it gives up offline
                click.echo("omniglot: downloading through TFDS (offline: --from DIR)", err=True)
            out = omniglot.prepare(source, data_dir)
            images = omniglot.load_characters(out)  # decode once now, cached for training
            click.echo(f"omniglot: {images.shape[0]} characters x {images.shape[1]} drawings in {out}")
        else:
            if source is None:
                raise registry.UsageProblem("mini_imagenet needs --from DIR (its images are not shipped).")
            from maml_tf.datasets import mini_imagenet
            out = mini_imagenet.prepare(source, data_dir, echo=lambda line: click.echo(line, err=True))
            for split in ("train", "validation", "test"):
                images, _ = mini_imagenet.load(split, out)
                click.echo(f"mini_imagenet {split}: {images.shape[0]} classes x {images.shape[1]} images")
            click.echo(f"prepared in {out}")


# ----------------------------------------------------------------------------- maml reproduce
# Options only some targets take (the shared ones: reproduce_command).
TARGET_OPTIONS = {
    "table1": [
        click.option("--train/--no-train", default=True, show_default=True,
                     help="--no-train: evaluate the latest checkpoint of each setting as it is."),
        click.option("--task-parallelism", default=None,
                     help="How a meta-batch's tasks run, as MAML(task_parallelism=): auto | vectorized | loop | "
                          "unrolled (speed and memory only; default: the preset's, e.g. unrolled for 20-way "
                          "1-shot, which needs ~7 GB)."),
    ],
    "rl": [sampling_workers_option,
           click.option("--method", "methods", multiple=True,
                        help="Method(s) to train and meta-test (repeatable; default all four: maml, pretrained, "
                             "random, oracle): e.g. --method maml for a preset that studies MAML alone; the page "
                             "holds these rows only.")],
    "step_sizes": [
        click.option("--first", type=float, multiple=True, default=(0.05, 0.1, 0.2, 0.5, 1.0), show_default=True,
                     help="Candidate step sizes of the first gradient step."),
        click.option("--later", type=float, multiple=True, default=(0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5),
                     show_default=True, help="Candidate step sizes of the second and third steps."),
    ],
}
EXTRA_OPTIONS = {"table1-miniimagenet": [click.option(
    "--synthetic", is_flag=True, help="Run on generated MiniImagenet-like images (64/16/20 classes x 20 images).")]}


def reproduce_command(target):
    """The click command of reproduce target ``target``: ``maml reproduce TARGET`` and
    ``reproduce/<script>.py`` are this command."""
    spec = registry.TARGETS[target]
    setting_names = ["--setting"] + (["--task"] if len(spec.experiments) > 1 else [])

    @click.pass_context
    def command(ctx, preset, setting, **options):
        with library_errors(ctx):
            chosen = [s for s in setting if s in spec.experiments]  # fig5's --task: its own presets
            registry.check_preset_name(chosen[0] if len(chosen) == 1 else spec.experiments[0], preset)  # before any work
            registry.runner(target)(target, preset=preset, setting=setting, echo=click.echo, **options)

    command = with_options(command, [
        preset_option,
        click.option(*setting_names, "setting", multiple=True,
                     help="Which rows / task to run (repeatable): " + ", ".join(
                         registry.settings(spec.experiments[0]) or (spec.experiments if len(spec.experiments) > 1
                                                                     else ["none"])) + "."),
        run_dir_option("Checkpoints and logs, reused to resume (default checkpoints/<figure>/<preset>, one "
                       "folder per setting for Table 1)."),
        click.option("--out", type=click.Path(file_okay=False), default=None,
                     help="Where metrics.json, table.md and the PNGs go (default results/<name>[_<preset>])."),
        training_options,
        *TARGET_OPTIONS.get(spec.runner, []), *EXTRA_OPTIONS.get(target, []),
    ])
    return click.command(target, help=spec.doc)(command)


@main.group()
def reproduce():
    """Reproduce a figure or table of the paper into results/<name>/ (resumable)."""


for _name in registry.TARGETS:
    reproduce.add_command(reproduce_command(_name))


# ----------------------------------------------------------------------------- maml study
def study_command(name):
    """The click command of study ``name``: ``maml study NAME`` and ``reproduce/<name>.py``."""
    study = registry.STUDIES[name]

    @click.pass_context
    def command(ctx, preset, run_dir, out, time_limit, verbose):
        with library_errors(ctx):
            registry.study_preset(name, preset)  # before any work
            suffix = "" if preset == "full" else f"_{preset}"
            registry.study(name).run(
                preset, run_dir=run_dir or os.path.join(registry.RUN_ROOT, study.result_name, preset),
                out=out or os.path.join("results", study.result_name + suffix), time_limit=time_limit,
                verbose=verbose, echo=click.echo)

    command = with_options(command, [
        click.option("--preset", default="full", show_default=True,
                     help="Budget (maml_tf/studies/): full (the results page's) | quick | smoke (seconds, for tests)."),
        run_dir_option(f"Checkpoints of the study's trainings, reused to resume (default "
                       f"checkpoints/{study.result_name}/<preset>)."),
        click.option("--out", type=click.Path(file_okay=False), default=None,
                     help=f"Where metrics.json, table.md and the PNGs go (default results/{study.result_name}"
                          "[_<preset>])."),
        time_limit_option,
        click.option("--verbose", type=click.IntRange(0, 2), default=1, show_default=True,
                     help="0 silent, 1 one line per training run and measurement, 2 also per epoch."),
    ])
    return click.command(name, help=study.doc)(command)


@main.group()
def study():
    """Answer an open question about MAML by experiment into results/<name>/ (resumable)."""


for _name in registry.STUDIES:
    study.add_command(study_command(_name))


if __name__ == "__main__":
    main()
