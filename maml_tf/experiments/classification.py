"""Few-shot classification (Section 5.2, Table 1): train with resume, validation
curve, meta-test on fixed tasks. Shared by the reproduce scripts and the ``maml`` CLI."""
import csv
import os
import time

import keras
import numpy as np
import tensorflow as tf

from maml_tf import distribute, evaluation
from maml_tf.callbacks import ProgressLines, SaveCheckpoints, TimeLimit
from maml_tf.core import MAML, precision
from maml_tf.experiments import base
from maml_tf.experiments.checkpoints import log, resuming
from maml_tf.experiments.errors import raise_if_diverged
from maml_tf.experiments.runs import RunDirectory
from maml_tf.models import conv4, dense_kernel_initializer, fully_connected
from maml_tf.tasks.few_shot import FewShotTasks

# Seeds of the fixed task sets: every method and run is scored on the same tasks.
VALIDATION_SEED, TEST_SEED = 10_000, 20_000
EVAL_CHUNK = 50  # test tasks per compiled evaluation call (bounds memory)
PART, VALIDATION = "maml", "validation"  # the run directory's one part, its validation log
# Preset fields a run directory may change between runs: budget, evaluation and compute.
FREE_FIELDS = ("name", "iterations", "eval_tasks", "validation_tasks", "curve_steps", "eval_inner_steps",
               "task_parallelism", "precision")


def load_split(preset, split, data_dir=None):
    """uint8 ``[classes, examples, H, W, C]`` of one split of the preset's dataset."""
    if preset.dataset == "omniglot":
        from maml_tf.datasets import omniglot
        return omniglot.load(split, data_dir, size=preset.image_size,
                             resize="nearest" if preset.authors_images else "lanczos3")
    if preset.dataset == "mini_imagenet":
        from maml_tf.datasets import mini_imagenet
        return mini_imagenet.load(split, data_dir)[0]
    raise ValueError(f"Unknown dataset {preset.dataset!r}.")


def tasks(preset, split, data_dir=None):
    """The preset's N-way K-shot task distribution over one split."""
    return FewShotTasks(load_split(preset, split, data_dir), preset.ways, preset.shots, preset.query_shots, rotate=preset.rotate)


def build_model(preset, conv_bias=False):
    """The preset's network, built under its ``precision`` (the global policy restored after).
    ``conv_bias=True``: conv4 with the biases before BN that runs until 2026-12-05 have
    (:mod:`maml_tf.experiments.conv_bias` converts them)."""
    with precision.policy(preset.precision):
        return _network(preset, conv_bias)


def _network(preset, conv_bias=False):
    shape = (preset.image_size, preset.image_size, preset.channels)
    scale = not preset.authors_layers
    if preset.network == "fc":
        return fully_connected(preset.ways, input_shape=shape, batch_norm_scale=scale, activation=preset.activation,
                               kernel_initializer=dense_kernel_initializer(preset.authors_layers))
    # cbfinn/maml: the head of the strided (Omniglot) network is tf.random_normal, std 1;
    # the max-pool (MiniImagenet) one Glorot, as its conv kernels and Keras'.
    head = (keras.initializers.RandomNormal(stddev=1.0) if preset.authors_layers and preset.downsample == "stride"
            else "glorot_uniform")
    return conv4(preset.ways, input_shape=shape, filters=preset.filters, downsample=preset.downsample,
                 batch_norm_scale=scale, head_initializer=head, activation=preset.activation, conv_bias=conv_bias)


def build_maml(preset, conv_bias=False):
    maml = MAML(build_model(preset, conv_bias), inner_lr=preset.inner_lr, inner_steps=preset.inner_steps,
                eval_inner_steps=preset.eval_inner_steps, first_order=preset.first_order,
                adapt=preset.adapt, batch_norm=preset.batch_norm,
                loss_reduction=preset.loss_reduction, task_parallelism=preset.task_parallelism)
    maml.compile(optimizer=keras.optimizers.Adam(preset.outer_lr),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return maml


def meta_test(maml, distribution, num_tasks, steps, seed, progress=None):
    """Accuracy and loss after 0..steps inner steps on ``num_tasks`` fixed tasks."""
    return evaluation.meta_test(maml, distribution.fixed_tasks(num_tasks, seed, EVAL_CHUNK), steps, progress)


class ValidationCurve(keras.callbacks.Callback):
    """Scores fixed validation tasks after every epoch and appends a row to a CSV, so
    that the accuracy-vs-iterations curve survives interruptions."""

    FIELDS = ("iteration", "accuracy", "ci95", "seconds")

    def __init__(self, distribution, preset, path):
        super().__init__()
        self.distribution, self.preset, self.path = distribution, preset, path
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = time.time() - self._started
        result = meta_test(self.model, self.distribution, self.preset.validation_tasks,
                           self.preset.eval_inner_steps, VALIDATION_SEED + self.preset.seed)
        step = self.preset.eval_inner_steps
        row = {"iteration": (epoch + 1) * self.preset.steps_per_epoch,
               "accuracy": result["accuracy"]["mean"][step], "ci95": result["accuracy"]["ci95"][step],
               "seconds": round(train_seconds, 2)}
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, self.FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        if logs is not None:
            logs["val_accuracy"] = row["accuracy"]


def validation_curve(run_dir):
    """The run's validation rows (dicts of ``ValidationCurve.FIELDS``), by iteration."""
    path = RunDirectory(run_dir).log_path(PART, VALIDATION)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = {int(r["iteration"]): {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)}
    return [rows[i] for i in sorted(rows)]


def _checkpoints(run, maml):
    maml.optimizer.build(maml.trainable_variables)  # Adam's slots exist before a restore fills them
    return run.checkpoints(PART, model=maml, optimizer=maml.optimizer)


def completed_iterations(run_dir):
    """Meta-iterations done so far according to the run's checkpoints (0 for a fresh run)."""
    return RunDirectory(run_dir).iteration(PART)


def check_run_dir(preset, run_dir):
    """Raise ``RunDirectoryMismatch`` if ``run_dir`` holds a run of another model or
    training setup than ``preset``'s. Writes nothing."""
    RunDirectory(run_dir).check(preset.dataset, preset, FREE_FIELDS)


def train(preset, run_dir, data_dir=None, verbose=2, deadline=None, callbacks=(), strategy=None, until=None):
    """Meta-train one Table 1 setting up to ``preset.iterations`` (or ``until``, rounded up
    to whole epochs), resuming from ``run_dir`` (checkpoint after every ``steps_per_epoch``
    iterations; a finished run trains on when ``iterations`` has grown since).

    Stops early at the first checkpoint after ``deadline`` (a
    :class:`~maml_tf.experiments.base.Deadline`); ``strategy`` (a ``tf.distribute.Strategy``)
    splits each meta-batch over its replicas. Returns ``(maml, iterations_done)``. Raises
    ``TrainingDiverged`` on a NaN or Inf meta-loss.
    """
    run = RunDirectory(run_dir)
    run.start(preset.dataset, preset, FREE_FIELDS, parts=(PART,))
    keras.utils.set_random_seed(preset.seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        maml = build_maml(preset)
        checkpoints = _checkpoints(run, maml)
    done = started = checkpoints.restore()
    epochs = base.epochs_until(preset, until)
    if done >= epochs * preset.steps_per_epoch:
        return maml, done
    if done:
        resuming(run.part(PART), done, epochs * preset.steps_per_epoch)
    epoch = done // preset.steps_per_epoch
    run.trim_log(PART, "epoch", epoch - 1)  # rows of an epoch a kill cut before its checkpoint
    run.trim_log(PART, "iteration", done, VALIDATION)
    train_tasks = tasks(preset, "train", data_dir)
    validation = tasks(preset, "validation", data_dir)
    # Batch i of the stream is seeded by i: a resumed run sees the tasks it would have seen.
    data = distribute.shard_episodes(
        train_tasks.dataset(preset.meta_batch_size, seed=preset.seed, start=done), strategy)
    limit = [] if deadline is None else [TimeLimit(deadline)]
    progress = [ProgressLines(preset.steps_per_epoch)] if verbose == 2 else []  # a log file's lines
    try:
        with raise_if_diverged(run_dir):
            maml.fit(data, epochs=epochs, initial_epoch=epoch,
                     steps_per_epoch=preset.steps_per_epoch, verbose=verbose,
                     callbacks=[*limit, *progress, ValidationCurve(validation, preset, run.log_path(PART, VALIDATION)),
                                keras.callbacks.CSVLogger(run.log_path(PART), append=True), *callbacks,
                                SaveCheckpoints(checkpoints, preset.steps_per_epoch)])
    finally:  # an interrupted run's checkpointed epochs count too
        done = int(checkpoints.iteration.numpy())
        run.record_training(started, done, precision=preset.precision)
    return maml, done


def load_latest(preset, run_dir):
    """The model at the run's latest checkpoint. Writes nothing."""
    run = RunDirectory(run_dir)
    run.check(preset.dataset, preset, FREE_FIELDS)
    maml = build_maml(preset)
    checkpoints = _checkpoints(run, maml)
    if not checkpoints.saved():
        raise FileNotFoundError(f"No checkpoint in {run_dir}: train first (the same command without --no-train).")
    checkpoints.restore()
    return maml


def evaluate(preset, maml, data_dir=None):
    """Meta-test on the fixed test tasks: accuracy after every step up to
    ``curve_steps`` (mean, 95% CI, per task) and the headline number at
    ``eval_inner_steps``."""
    distribution = tasks(preset, "test", data_dir)
    steps = max(preset.curve_steps, preset.eval_inner_steps)
    result = meta_test(maml, distribution, preset.eval_tasks, steps, TEST_SEED + preset.seed,
                       lambda done: log.info("meta-test: %d/%d test tasks", done, preset.eval_tasks))
    accuracy = result["accuracy"]
    return {"accuracy": accuracy["mean"][preset.eval_inner_steps],
            "ci95": accuracy["ci95"][preset.eval_inner_steps],
            "accuracy_per_step": accuracy["mean"], "ci95_per_step": accuracy["ci95"],
            "loss_per_step": result["loss"]["mean"], "num_tasks": result["num_tasks"]}


def seconds_per_iteration(run_dir):
    """Median training seconds per meta-iteration over the epochs logged so far."""
    rows = validation_curve(run_dir)
    if not rows:
        return None
    per_epoch = np.diff([0] + [r["iteration"] for r in rows])
    return float(np.median([r["seconds"] / n for r, n in zip(rows, per_epoch)]))


class ClassificationExperiment(base.Experiment):
    """Section 5.2: one Table 1 row (the dataset is the preset's), trained by MAML."""

    KIND = "classification"

    def check(self):
        check_run_dir(self.preset, self.run_dir)

    def train(self, until=None, time_limit=None, strategy=None, callbacks=()):
        self.check()  # before any work: a refused directory stays as it was
        chosen = base.resolve_strategy(strategy, self.preset.meta_batch_size)
        _, done = train(self.preset, self.run_dir, self.data_dir, self.verbose, base.Deadline.of(time_limit),
                        callbacks, chosen, until)
        return base.Progress({PART: done}, self.preset.iterations)

    def learners(self):
        return {PART: load_latest(self.preset, self.run_dir)}

    def evaluate(self, learners=None):
        from maml_tf import reporting
        from maml_tf.report import records
        started = time.time()
        result = evaluate(self.preset, (learners or self.learners())[PART], self.data_dir)
        row = records.classification(
            self.result_name, self.preset, self.preset.name, result, completed_iterations(self.run_dir),
            seconds_per_iteration(self.run_dir), validation_curve(self.run_dir),
            reporting.training_history(self.run_dir))
        row["budget"]["eval_seconds"] = round(time.time() - started, 1)
        return [row]

    def stored_evaluation(self):
        """The meta-test row ``maml train`` / ``maml evaluate`` stored in RUN_DIR/metrics.json if
        it is of the latest checkpoint under the same settings (compute aside), else None: a
        MiniImagenet meta-test takes many minutes on 2 cores. Writes nothing."""
        from maml_tf import presets
        from maml_tf.report import records, schema
        path = self.metrics_path
        try:
            rows = schema.load(path)["rows"] if os.path.exists(path) else []
        except (schema.SchemaError, ValueError, OSError):
            return None
        wanted = _evaluation_key(records.settings(self.preset))
        # Fields added to the presets later are missing from older rows: they had the default.
        defaults = records.settings(presets.ClassificationPreset())
        older = {field: defaults[field] for field in presets.ADDED_LATER["ClassificationPreset"]}
        latest = completed_iterations(self.run_dir) if rows else None
        for row in rows:
            if (row["setting"] == self.preset.setting and row["preset"] == self.preset.name
                    and row["budget"]["iterations"] == latest
                    and _evaluation_key({**older, **row.get("settings", {})}) == wanted):
                return [row]
        return None


def _evaluation_key(settings):
    # How tasks are spread over devices or vectorised never changes the numbers.
    return {k: v for k, v in settings.items() if k != "task_parallelism"}
