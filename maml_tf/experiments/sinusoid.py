"""Sinusoid regression (Section 5.1): MAML vs pretrained vs oracle, Figure 2 and 3."""
import keras
import numpy as np
import tensorflow as tf

from maml_tf import baselines, distribute, evaluation
from maml_tf.callbacks import SaveCheckpoints, TimeLimit
from maml_tf.core import MAML, precision
from maml_tf.experiments import base
from maml_tf.experiments.checkpoints import log, resuming
from maml_tf.experiments.errors import raise_if_diverged
from maml_tf.experiments.runs import RunDirectory
from maml_tf.models import dense_kernel_initializer, mlp
from maml_tf.tasks import SinusoidTasks

EXPERIMENT = "sinusoid"
METHODS = ("maml", "pretrained", "oracle")  # the run directory's parts
# Preset fields a run directory may change between runs: budget and evaluation.
FREE_FIELDS = ("name", "iterations", "eval_shots", "eval_inner_steps", "eval_tasks", "eval_query_points",
               "precision")


def task_distribution(preset, shots=None, query=None, oracle=False):
    return SinusoidTasks(
        support_shots=shots or preset.support_shots, query_shots=query or preset.query_shots,
        amplitude_range=preset.amplitude_range, phase_range=preset.phase_range,
        input_range=preset.input_range, oracle=oracle)


def build_maml(preset, input_dim=1, steps_per_execution=50):
    with precision.policy(preset.precision):  # the global policy comes back after the build
        model = mlp(input_dim=input_dim, hidden=preset.hidden, activation=preset.activation,
                    kernel_initializer=dense_kernel_initializer(preset.authors_layers))
    maml = MAML(model, inner_lr=preset.inner_lr, inner_steps=preset.inner_steps,
                eval_inner_steps=preset.eval_inner_steps, first_order=preset.first_order)
    maml.compile(optimizer=keras.optimizers.Adam(preset.outer_lr), loss="mse",
                 steps_per_execution=steps_per_execution)
    return maml


def build_learner(preset, method):
    """``method``'s network in a MAML wrapper (which adapts with the paper's inner rule); the
    baselines' network is also compiled for plain regression."""
    maml = build_maml(preset, input_dim=task_distribution(preset, oracle=method == "oracle").input_dim)
    if method != "maml":
        maml.model.compile(optimizer=keras.optimizers.Adam(preset.outer_lr), loss="mse", steps_per_execution=50)
    return maml


def check_run_dir(preset, run_dir):
    """Raise ``RunDirectoryMismatch`` if ``run_dir`` holds a run of another network or
    training setup than ``preset``'s. Writes nothing."""
    RunDirectory(run_dir).check(EXPERIMENT, preset, FREE_FIELDS)


def _checkpoints(run, method, maml):
    """``method``'s checkpoints: the network (in ``maml``) and the optimizer that trains it."""
    optimizer, variables = ((maml.optimizer, maml.trainable_variables) if method == "maml"
                            else (maml.model.optimizer, maml.model.trainable_variables))
    optimizer.build(variables)  # Adam's slots exist before a restore fills them
    return run.checkpoints(method, model=maml, optimizer=optimizer)


def completed_iterations(run_dir, method="maml"):
    """Iterations ``method`` has trained so far according to ``run_dir``'s checkpoints."""
    return RunDirectory(run_dir).iteration(method)


def train(preset, method, run_dir, verbose=2, callbacks=(), strategy=None, deadline=None, until=None):
    """Train one method up to ``preset.iterations`` steps (or ``until``, rounded up to whole
    epochs), resuming from ``run_dir`` (also a finished run, when ``iterations`` has grown since).

    ``maml`` meta-trains; ``pretrained`` and ``oracle`` train the same network by
    plain regression on all tasks jointly (``oracle`` also sees amplitude and phase).
    ``strategy`` splits each meta-batch of ``maml`` over its replicas; ``deadline`` (a
    :class:`~maml_tf.experiments.base.Deadline`) stops at the first checkpoint after it.
    Returns ``(maml_wrapper, seconds, finished)``; ``finished`` is False when training
    stopped early (the checkpoint in ``run_dir`` resumes it). Raises ``TrainingDiverged``
    on a NaN or Inf loss, before any checkpoint of it is written.
    """
    run = RunDirectory(run_dir)
    run.start(EXPERIMENT, preset, FREE_FIELDS, parts=(method,))
    keras.utils.set_random_seed(preset.seed)
    tasks = task_distribution(preset, oracle=method == "oracle")
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        maml = build_learner(preset, method)
        checkpoints = _checkpoints(run, method, maml)
    done = started = checkpoints.restore()
    epochs = base.epochs_until(preset, until)
    if done < epochs * preset.steps_per_epoch:
        if done:
            resuming(run.part(method), done, epochs * preset.steps_per_epoch)
        epoch = done // preset.steps_per_epoch
        run.trim_log(method, "epoch", epoch - 1)  # rows of an epoch a kill cut before its checkpoint
        # Batch i of the stream is seeded by i: a resumed run sees the tasks it would have seen.
        data = tasks.dataset(preset.meta_batch_size, seed=preset.seed + METHODS.index(method), start=done)
        limit = [] if deadline is None else [TimeLimit(deadline)]
        fit = dict(epochs=epochs, initial_epoch=epoch, steps_per_epoch=preset.steps_per_epoch,
                   verbose=verbose, callbacks=[*limit, keras.callbacks.CSVLogger(run.log_path(method), append=True),
                                               *callbacks, SaveCheckpoints(checkpoints, preset.steps_per_epoch)])
        try:
            if method == "maml":
                with raise_if_diverged(run_dir):
                    maml.fit(distribute.shard_episodes(data, strategy), **fit)
            else:
                # Raises at a NaN or Inf loss, before the epoch's checkpoint could save the weights.
                fit["callbacks"].insert(0, keras.callbacks.TerminateOnNaN(raise_error=True))
                with raise_if_diverged(run_dir, f"{method} baseline"):
                    maml.model.fit(baselines.joint_training_dataset(data), shuffle=False, **fit)
        finally:  # an interrupted run's checkpointed epochs count too
            done = int(checkpoints.iteration.numpy())
            run.record_training(started, done, part=method, precision=preset.precision)
    return maml, float(checkpoints.seconds.numpy()), done >= preset.iterations


def load_latest(preset, run_dir, method="maml"):
    """``method``'s model at its latest checkpoint in ``run_dir``. Writes nothing."""
    run = RunDirectory(run_dir)
    run.check(EXPERIMENT, preset, FREE_FIELDS)
    maml = build_learner(preset, method)
    checkpoints = _checkpoints(run, method, maml)
    if not checkpoints.saved():
        raise FileNotFoundError(f"No {method} checkpoint in {run_dir}: train first.")
    checkpoints.restore()
    return maml


def test_tasks(preset, shots, oracle=False):
    """The fixed meta-test tasks for ``shots`` (identical for every method)."""
    tasks = task_distribution(preset, shots=shots, query=preset.eval_query_points, oracle=oracle)
    return tasks.sample(preset.eval_tasks, seed=[10_000 + preset.seed, shots])


# A test task whose MSE is above this (predictions off by more than 10 where |y| <= 5)
# or not finite has diverged: repeated inner steps overshoot.
DIVERGED_MSE = 100.0


def meta_test(preset, learners):
    """MSE after 0..eval_inner_steps steps for every method and K: mean (``curves``),
    95% CI and median over the test tasks, and how many tasks diverged.

    The oracle already knows the task, so it is not fine-tuned: its 0-step error is
    drawn flat across steps, as in the paper's Figure 3.
    """
    stats = {"curves": {}, "ci95": {}, "median": {}, "diverged": {}}
    total, done = len(learners) * len(preset.eval_shots) * preset.eval_tasks, 0
    for method, learner in learners.items():
        for table in stats.values():
            table[method] = {}
        for shots in preset.eval_shots:
            log.info("meta-test %s K=%d: test tasks %d-%d of %d", method, shots, done + 1, done + preset.eval_tasks,
                     total)
            done += preset.eval_tasks
            episodes, _ = test_tasks(preset, shots, oracle=(method == "oracle"))
            steps = 0 if method == "oracle" else preset.eval_inner_steps
            loss = evaluation.meta_test(learner, episodes, steps)["loss"]
            per_task = loss["per_task"]
            loss["diverged"] = (~(per_task <= DIVERGED_MSE)).sum(axis=0).tolist()  # NaN counts
            repeat = preset.eval_inner_steps + 1 - len(loss["mean"])
            for name, key in (("curves", "mean"), ("ci95", "ci95"), ("median", "median"),
                              ("diverged", "diverged")):
                stats[name][method][f"K{shots}"] = loss[key] + loss[key][-1:] * repeat
    return stats


def example_fits(preset, learners, shots=(5, 10), steps=(0, 1, 10), task_index=0):
    """Figure 2 data: one test task, predictions of each method after some steps."""
    grid = np.linspace(*preset.input_range, 200, dtype=np.float32)[:, None]
    out = []
    for k in shots:
        episodes, params = test_tasks(preset, k)
        a, p = float(params["amplitude"][task_index]), float(params["phase"][task_index])
        sx = episodes["support"][0][task_index]
        sy = episodes["support"][1][task_index]
        entry = {"shots": k, "amplitude": a, "phase": p, "support_x": sx.numpy()[:, 0],
                 "support_y": sy.numpy()[:, 0], "x": grid[:, 0], "true": a * np.sin(grid[:, 0] - p),
                 "predictions": {}}
        for method in ("maml", "pretrained"):
            learner = learners[method]
            entry["predictions"][method] = {
                str(s): learner.predict_with(learner.adapt(sx, sy, steps=s), grid).numpy()[:, 0]
                for s in steps}
        out.append(entry)
    return out


class SinusoidExperiment(base.Experiment):
    """Section 5.1: MAML and the two regression baselines, one run-directory part each."""

    METHODS = METHODS
    KIND = "regression"

    def check(self):
        check_run_dir(self.preset, self.run_dir)

    def train(self, until=None, time_limit=None, strategy=None, callbacks=()):
        self.check()  # before any work: a refused directory stays as it was
        deadline = base.Deadline.of(time_limit)
        chosen = base.resolve_strategy(strategy, self.preset.meta_batch_size)
        done = {}
        for method in self.methods:
            train(self.preset, method, self.run_dir, self.verbose, callbacks,
                  chosen if method == "maml" else None, deadline, until)
            done[method] = completed_iterations(self.run_dir, method)
        return base.Progress(done, self.preset.iterations)

    def learners(self):
        """Every method's model at its latest checkpoint."""
        return {method: load_latest(self.preset, self.run_dir, method) for method in self.methods}

    def evaluate(self, learners=None):
        from maml_tf.report import records
        run = RunDirectory(self.run_dir)
        stats = meta_test(self.preset, learners or self.learners())
        seconds = {m: round(run.counter(m, "seconds"), 1) for m in self.methods}
        return records.sinusoid(self.result_name, self.preset, stats, seconds, DIVERGED_MSE,
                                iterations=completed_iterations(self.run_dir, self.methods[0]))
