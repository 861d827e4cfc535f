"""What the two RL scripts (Figures 4 and 5, Section 5.3) share: train the four methods
with resumable checkpoints, meta-test them on fixed tasks, write results/<name>/
(metrics.json, table.md, the returns PNG)."""
import contextlib
import os
import time

import click

from maml_tf import reporting


def result_name(figure, env):
    """``fig4_navigation``, ``fig5_cheetah_vel``, ..."""
    return f"{figure}_{env.replace('-', '_')}"


def options(preset_names):
    """The click options both scripts take."""
    def decorate(fn):
        for option in reversed([
            click.option("--preset", type=click.Choice(preset_names), default="paper", show_default=True,
                         help="Budget (maml_tf/presets.py); only sampling and training amounts differ."),
            click.option("--out", type=click.Path(file_okay=False), default=None,
                         help="Where metrics.json, table.md and the PNGs go "
                              "(default results/<name>, or results/<name>_<preset>)."),
            click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
                         help="The latest checkpoint and training log of each method (default "
                              "checkpoints/<name>/<preset>); the same command resumes from it."),
            click.option("--time-limit", type=click.FloatRange(min=0), default=None,
                         help="Minutes of training in this run, all methods together; then stop at "
                              "an iteration boundary and meta-test what is there (run again to resume)."),
            click.option("--until", type=click.IntRange(min=0), default=None,
                         help="Train each method only up to this many iterations in this run (default: "
                              "the preset's), so that a budget too small for all is shared: e.g. "
                              "--until 100, later --until 200. Results mark unfinished runs."),
        ]):
            fn = option(fn)
        return fn
    return decorate


def run(figure, preset, paper_preset, out, checkpoint_dir, time_limit, until=None):
    """Train (resuming) and meta-test every method; write metrics.json, table.md and
    ``<figure>_returns.png`` into ``out``. Returns ``(results file, learners, test tasks, out)``."""
    from maml_tf.experiments import rl
    from maml_tf.report import records, render, schema, tables

    name = result_name(figure, preset.env)
    checkpoint_dir = checkpoint_dir or os.path.join("checkpoints", name, preset.name)
    out = out or os.path.join("results", name + ("" if preset.name == "paper" else f"_{preset.name}"))
    deadline = None if time_limit is None else time.time() + 60 * time_limit
    learners = {}
    with refuse_other_checkpoints(checkpoint_dir):
        for method in rl.METHODS:
            if method in rl.TRAINED:
                click.echo(f"[{method}] {preset.iterations} iterations of {preset.meta_batch_size} tasks x "
                           f"{preset.episodes_per_task} trajectories; checkpoint "
                           f"{rl.checkpoint_path(checkpoint_dir, method)}")
            learners[method] = learner = rl.train(preset, method, checkpoint_dir, deadline,
                                                  _progress(method, preset), until)
            if method in rl.TRAINED:
                click.echo(f"[{method}] at {learner.iteration}/{preset.iterations} iterations: "
                           f"{learner.seconds:.0f} s of training, {learner.env_steps:,} environment steps")
    unfinished = [m for m in rl.TRAINED if learners[m].iteration < preset.iterations]
    if unfinished:
        click.echo(f"{', '.join(unfinished)} stopped before {preset.iterations} iterations (time limit or "
                   "--until); run again to resume.")
    tasks = rl.test_tasks(preset)
    step_sizes = {method: list(preset.step_sizes(method)) for method in rl.METHODS}
    click.echo(f"meta-test: {len(tasks)} tasks x {preset.eval_episodes_per_task} trajectories, "
               f"0..{preset.eval_inner_steps} steps of sizes {tables.format_step_sizes(step_sizes)}")
    started = time.time()
    results = {method: rl.meta_test(preset, learners[method], tasks, step_sizes[method]) for method in rl.METHODS}
    eval_seconds = round(time.time() - started, 1)
    rows = [records.rl(name, preset, paper_preset, method, results[method], step_sizes[method],
                       learners[method].iteration if method in rl.TRAINED else None,
                       learners[method].env_steps, round(learners[method].seconds, 1),
                       rl.training_curve(checkpoint_dir, method) if method in rl.TRAINED else (),
                       reporting.training_history(checkpoint_dir, method) if method in rl.TRAINED else None)
            for method in rl.METHODS]
    doc = schema.document(name, "rl", rows, command=reporting.command(), machine=reporting.machine(),
                          environment=rl.environment_note(preset.env), eval_seconds=eval_seconds,
                          paper_budget={k: getattr(paper_preset, k) for k in records.RL_BUDGET_FIELDS})
    click.echo(render.write(doc, out))
    return doc, learners, tasks, out


@contextlib.contextmanager
def refuse_other_checkpoints(checkpoint_dir):
    """Checkpoints of other settings or of another policy as a click error saying what to do."""
    from maml_tf.experiments.runs import RunDirectoryMismatch
    from maml_tf.rl.learner import CheckpointMismatch

    try:
        yield
    except RunDirectoryMismatch as error:
        raise click.ClickException(str(error)) from None
    except CheckpointMismatch as error:
        raise click.ClickException(f"{error} {checkpoint_dir} holds another policy's checkpoints: use another "
                                   f"--checkpoint-dir, or delete {checkpoint_dir} to start over.") from None


def _progress(method, preset):
    def report(stats):
        if "post_update_return" in stats:
            returns = (f"post-update return {stats['post_update_return']:.1f} "
                       f"(pre-update {stats['pre_update_return']:.1f})")
        else:
            returns = f"return {stats['return']:.1f}"
        click.echo(f"[{method}] iteration {stats['iteration']}/{preset.iterations}: {returns}, "
                   f"{stats['seconds']:.1f} s")
    return report

