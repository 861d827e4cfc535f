"""Reinforcement learning (Section 5.3, Figures 4 and 5): MAML-TRPO and the paper's three
baselines, trained with resumable checkpoints and meta-tested on fixed test tasks.

- ``maml``: :class:`~maml_tf.rl.maml_trpo.MAMLTRPO`.
- ``pretrained``: one policy trained with TRPO on all tasks jointly
  (:class:`~maml_tf.rl.joint_trpo.JointTRPO`), then fine-tuned.
- ``random``: a freshly initialised policy, fine-tuned.
- ``oracle``: ``JointTRPO`` whose observations carry the task parameters (goal
  position, goal velocity or direction). The paper reports it without fine-tuning:
  our step-0 return; the later steps apply the same inner rule.
"""
import csv
import os
import time

import keras
import numpy as np

from maml_tf.core.arguments import one_of
from maml_tf.evaluation import mean_ci95
from maml_tf.experiments import base
from maml_tf.experiments.checkpoints import log, resuming
from maml_tf.experiments.runs import RunDirectory
from maml_tf.models.policy import gaussian_mlp_policy
from maml_tf.rl import envs
from maml_tf.rl.joint_trpo import JointTRPO
from maml_tf.rl.learner import PolicyLearner
from maml_tf.rl.maml_trpo import MAMLTRPO

METHODS = ("maml", "pretrained", "random", "oracle")
TRAINED = ("maml", "pretrained", "oracle")
LOG_FIELDS = ("iteration", "return", "pre_update_return", "kl", "accepted", "seconds")
# Preset fields a checkpoint directory may change between runs: the budget and the meta-test.
FREE_FIELDS = ("name", "iterations", "eval_tasks", "eval_episodes_per_task", "eval_inner_steps",
               "test_step_sizes", "method_test_step_sizes", "eval_sampling", "eval_task_source", "sampling_workers")


def build(preset, method):
    """The learner of ``method`` with a fresh policy initialised from ``preset.seed``: every
    method starts from the same weights (the oracle's first layer is wider) and draws the
    same training tasks and action noise."""
    one_of("method", method, METHODS)
    env_kwargs = {**dict(preset.env_options), **({"oracle": True} if method == "oracle" else {})}
    probe = envs.make(preset.env, **env_kwargs)
    observation_dim, action_dim = probe.observation_spec().shape[0], probe.action_spec().shape[0]
    probe.close()
    keras.utils.set_random_seed(preset.seed)
    model = gaussian_mlp_policy(observation_dim, action_dim, hidden=preset.hidden)
    common = dict(env=preset.env, episodes_per_task=preset.episodes_per_task, inner_lr=preset.inner_lr,
                  first_order=preset.first_order, gamma=preset.gamma, gae_lambda=preset.gae_lambda,
                  seed=preset.seed, env_kwargs=env_kwargs, sampling=preset.sampling,
                  sampling_workers=preset.sampling_workers)
    if method == "random":
        return PolicyLearner(model, **common)
    trpo = dict(meta_batch_size=preset.meta_batch_size, max_kl=preset.max_kl, hvp=preset.hvp)
    return (MAMLTRPO if method == "maml" else JointTRPO)(model, **trpo, **common)


def run_directory(checkpoint_dir):
    """The RL experiment's run directory; parts: ``TRAINED``."""
    return RunDirectory(checkpoint_dir)


def checkpoint_path(checkpoint_dir, method):
    """The folder of ``method``'s checkpoints in ``checkpoint_dir``."""
    return run_directory(checkpoint_dir).part(method)


def has_checkpoint(checkpoint_dir, method):
    return run_directory(checkpoint_dir).has_checkpoint(method)


def log_path(checkpoint_dir, method):
    """The per-iteration training log (CSV) of ``method``."""
    return run_directory(checkpoint_dir).log_path(method)


def load(preset, method, checkpoint_dir):
    """The learner of ``method``, restored from its latest checkpoint when there is one.

    Raises ``RunDirectoryMismatch`` if the directory records other settings,
    ``CheckpointMismatch`` if the checkpoint is another policy's. Writes nothing.
    """
    run = run_directory(checkpoint_dir)
    run.check(preset.env, preset, FREE_FIELDS)
    learner = build(preset, method)
    if method in TRAINED:
        learner.restore(run.part(method))
    return learner


def train(preset, method, checkpoint_dir, deadline=None, callback=None, until=None):
    """Train ``method`` up to ``preset.iterations`` (or ``until``, if fewer), resuming
    from ``checkpoint_dir``.

    Checkpoints after every iteration (an interruption loses at most the running one)
    and appends the iteration's diagnostics to the CSV log. Stops early, at an
    iteration boundary, once ``deadline`` (a :class:`~maml_tf.experiments.base.Deadline`)
    has passed. ``callback(stats)``
    after each iteration. Returns the learner; ``learner.iteration`` tells how far it got.
    A recorded run with nothing left to train is left as it is (its record unchanged).
    """
    learner = load(preset, method, checkpoint_dir)
    if method not in TRAINED:
        return learner
    run = run_directory(checkpoint_dir)
    target = preset.iterations if until is None else min(int(until), preset.iterations)
    started = saved = learner.iteration
    stop = lambda: learner.iteration >= target or (deadline is not None and deadline.passed())  # noqa: E731
    if stop() and run.record() is not None:
        # Nothing to train: the record stays the training run's (e.g. a finished run scored
        # with another meta-test, as --preset authors scores navigation's code run).
        return learner
    run.start(preset.env, preset, FREE_FIELDS, parts=(method,))
    run.trim_log(method, "iteration", learner.iteration)  # rows a kill cut before their checkpoint
    if started and not stop():
        resuming(run.part(method), started, target)
    try:
        last = stop()
        while not last:
            stats = learner.train_iteration()
            _log(run.log_path(method), stats)  # before the checkpoint: a resume trims what it does not hold
            last = stop()
            learner.checkpoint(run.part(method), last=last)  # the last one kept alone
            saved = learner.iteration
            if callback is not None:
                callback(stats)
    finally:  # an interrupted run's checkpointed iterations count too
        run.record_training(started, saved, part=method)
    return learner


def _log(path, stats):
    row = {"return": stats.get("post_update_return", stats.get("return")), **stats}
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def training_curve(checkpoint_dir, method, column="return"):
    """``[[iteration, value], ...]`` of a column of the training log: ``return`` (post-update
    for MAML) or ``pre_update_return`` (MAML's only; empty for the others); a resumed run's
    iterations appear once, the latest record winning."""
    path = log_path(checkpoint_dir, method)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        curve = {int(r["iteration"]): float(r[column]) for r in csv.DictReader(f) if r.get(column)}
    return [[k, curve[k]] for k in sorted(curve)]


def test_tasks(preset):
    """The fixed meta-test tasks, the same for every method: drawn from ``10_000 + seed``,
    or the authors' test scripts' (``preset.eval_task_source``)."""
    with envs.make(preset.env) as env:
        if preset.eval_task_source == "authors":
            return env.authors_test_tasks(preset.eval_tasks)
        return env.sample_tasks(preset.eval_tasks, seed=10_000 + preset.seed)


def validation_tasks(preset):
    """As many tasks as the test, drawn with another seed: for choosing meta-test
    settings without looking at the test tasks."""
    with envs.make(preset.env) as env:
        return env.sample_tasks(preset.eval_tasks, seed=20_000 + preset.seed)


def meta_test(preset, learner, tasks, step_sizes):
    """Per-task mean return after 0..``eval_inner_steps`` steps of ``step_sizes``
    (``preset.step_sizes(method)``), ``[tasks, steps + 1]``, with its mean and 95% CI
    over tasks; for a robot also its ``movement`` in the same episodes (:func:`movement`)."""
    per_task, moved = learner.meta_test(tasks, steps=preset.eval_inner_steps,
                                        episodes_per_task=preset.eval_episodes_per_task, step_sizes=step_sizes,
                                        seed=preset.seed, sampling=preset.eval_sampling, with_movement=True)
    mean, ci = mean_ci95(per_task)
    result = {"mean": mean.tolist(), "ci95": ci.tolist(), "per_task": per_task.tolist()}
    return {**result, "movement": movement(tasks, moved)} if moved is not None else result


def _directions(tasks):
    """The forward (direction +1) and backward (-1) test tasks as boolean masks; None for
    tasks without a direction."""
    if not tasks or "direction" not in tasks[0]:
        return None
    directions = np.array([t["direction"] for t in tasks])
    return {"forward": directions == 1.0, "backward": directions == -1.0}


def per_direction(tasks, per_task):
    """Mean return after 0..k steps over the forward (direction +1) and the backward (-1)
    test tasks, ``{"forward": {"tasks": n, "mean": [...]}, "backward": ...}``; None for
    tasks without a direction."""
    groups, per_task = _directions(tasks), np.asarray(per_task)
    if groups is None:
        return None
    return {name: {"tasks": int(np.sum(mask)), "mean": per_task[mask].mean(axis=0).tolist() if mask.any() else None}
            for name, mask in groups.items()}


def movement(tasks, moved):
    """The robot's movement after 0..k steps, averaged over the test tasks (``moved``: per
    task, as :meth:`PolicyLearner.meta_test` measures it with ``with_movement``), over all
    tasks and, for direction tasks, per direction: ``{"all": {"tasks": n, "displacement":
    [...], "distance": [...], "forward": [...]}, "forward": ..., "backward": ...}``."""
    groups = {"all": np.ones(len(tasks), bool), **(_directions(tasks) or {})}
    return {name: {"tasks": int(np.sum(mask)),
                   **{key: np.asarray(values)[mask].mean(axis=0).tolist() if mask.any() else None
                      for key, values in moved.items()}}
            for name, mask in groups.items()}


def paths(preset, learner, tasks, step_sizes, seed=0):
    """One episode's states per task before and after ``eval_inner_steps`` adaptation
    steps of ``step_sizes``: ``{"pre": [tasks, T + 1, obs], "post": [tasks, T + 1, obs]}``
    (see :func:`_first_episode`; Figure 4's picture: in navigation the observation is
    the position)."""
    sampling = preset.eval_sampling or learner.sampling
    pre = learner.sample(tasks, seed, episodes_per_task=1, sampling=sampling)
    weights, _ = learner.adapt(tasks, preset.eval_inner_steps, step_sizes,
                               preset.eval_episodes_per_task, seed, sampling=sampling)
    post = learner.sample(tasks, seed, weights, episodes_per_task=1, sampling=sampling)
    restarts = sampling != "episodes"
    return {"pre": _first_episode(pre, restarts), "post": _first_episode(post, restarts)}


def _first_episode(samples, restarts=False):
    """The states of the first episode of each task's first row, ``[tasks, T + 1, obs]``:
    its start, the state after each of its moves, then the last one repeated.

    With ``restarts`` (rows restarting on termination, which hold more episodes) the
    environment reports the next episode's start in place of the state an episode's
    final move reached, so that state is not known: the path ends one move short."""
    states = np.concatenate([samples["observations"][:, 0], samples["final_observations"][:, 0, None]], axis=1)
    moves = np.argmax(samples["ends"][:, 0] > 0, axis=-1) + 1  # every row's first episode ends within it
    last = moves - 1 if restarts else moves
    steps = np.minimum(np.arange(states.shape[1])[None], last[:, None])
    return np.take_along_axis(states, steps[..., None], axis=1)


def environment_note(env, options=()):
    """Which simulation a result used (the paper's returns come from rllab's models);
    ``options``: the preset's ``env_options``."""
    if env == "navigation":
        return ("2D point navigation (NumPy, as maml_rl's point_env_randgoal: an episode ends within 0.01 "
                "of the goal or at the horizon)")
    robot = envs.make(env, **dict(options))
    try:
        note = (f"gymnasium {type(robot.robot).__name__} v5 on MuJoCo, frame_skip "
                f"{robot.robot.frame_skip} (dt {robot.dt:g} s), horizon {robot.horizon}")
        if options:
            note += (f", observation {robot.observation} ({robot.observation_spec().shape[0]} numbers), "
                     f"velocity {robot.velocity}, reset noise {robot.reset_noise}")
            if len(robot.physics_models) > 1:  # the ant
                note += f", physics {robot.physics} (MuJoCo step {robot.model.opt.timestep:g})"
        return note + "; rllab's models in the paper: returns not comparable one to one"
    finally:
        robot.close()



class RLExperiment(base.Experiment):
    """Section 5.3: MAML-TRPO and the paper's three baselines in one environment (the
    preset's), one run-directory part per trained method."""

    METHODS = METHODS
    KIND = "rl"

    def __init__(self, name, preset, run_dir, **kwargs):
        super().__init__(name, preset, run_dir, **kwargs)
        from maml_tf.experiments import registry
        self.paper_preset = registry.paper_preset(name)

    def check(self):
        run_directory(self.run_dir).check(self.preset.env, self.preset, FREE_FIELDS)

    def train(self, until=None, time_limit=None, strategy=None, callbacks=()):
        """Train the methods in turn under one deadline; ``callbacks``: ``f(method, stats)``
        after every iteration."""
        self.check()
        if strategy not in (None, "default"):
            raise base.StrategyError("The RL experiments train on one device: leave --strategy at default.")
        deadline = base.Deadline.of(time_limit)
        done = {}
        for method in self.methods:
            if method in TRAINED:
                report = lambda stats, m=method: [f(m, stats) for f in callbacks]  # noqa: E731
                done[method] = train(self.preset, method, self.run_dir, deadline, report, until).iteration
        return base.Progress(done, self.preset.iterations)

    def learners(self):
        return {method: load(self.preset, method, self.run_dir) for method in self.methods}

    def evaluate(self, learners=None):
        from maml_tf import reporting
        from maml_tf.report import records
        learners = learners or self.learners()
        tasks = test_tasks(self.preset)
        started = time.time()
        rows = []
        for number, (method, learner) in enumerate(learners.items(), 1):
            log.info("meta-test %s: %d tasks (%d of %d methods)", method, self.preset.eval_tasks, number, len(learners))
            trained = method in TRAINED
            sizes = list(self.preset.step_sizes(method))
            result = meta_test(self.preset, learner, tasks, sizes)
            directions = per_direction(tasks, result["per_task"])
            rows.append(records.rl(
                self.result_name, self.preset, self.paper_preset, method,
                result, sizes,
                learner.iteration if trained else None, learner.env_steps, round(learner.seconds, 1),
                training_curve(self.run_dir, method) if trained else (),
                reporting.training_history(self.run_dir, method) if trained else None,
                pre_update_curve=training_curve(self.run_dir, method, "pre_update_return") if trained else (),
                **({"per_direction": directions} if directions else {}),
                **({"movement": result["movement"]} if "movement" in result else {})))
        self.eval_seconds = round(time.time() - started, 1)
        self.test_directions = [t["direction"] for t in tasks] if "direction" in tasks[0] else None
        return rows

    def shared(self):
        from maml_tf.report import records
        return {"environment": environment_note(self.preset.env, self.preset.env_options),
                "eval_seconds": getattr(self, "eval_seconds", None),
                # Direction tasks: each test task's direction, in the order of the rows' per_task.
                **({"test_directions": self.test_directions} if getattr(self, "test_directions", None) else {}),
                "paper_budget": {k: getattr(self.paper_preset, k) for k in records.RL_BUDGET_FIELDS}}

