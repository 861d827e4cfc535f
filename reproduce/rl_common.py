"""What the two RL scripts (Figures 4 and 5, Section 5.3) share: train the four methods
with resumable checkpoints, meta-test them on fixed tasks, write results/<name>/
(metrics.json, table.md, the returns PNG)."""
import contextlib
import dataclasses
import os
import time

import click

from maml_tf import reporting

# Section 5.3, mean return after 0 / 1 / 2 / 3 gradient steps on 40 test tasks (the
# paper's table of Figures 4 and 5, as transcribed in PAPER.md). A single number: the
# oracle (not fine-tuned) or a random-initialisation curve the text gives as "about".
PAPER = {
    "navigation": {"maml": [-40.4, -11.7, -3.3, -3.2], "pretrained": [-40.8, -19.7, -11.7, -8.5],
                   "random": [-82.7, -58.0, -53.8, -46.8], "oracle": [-2.3]},
    "cheetah-vel": {"maml": [-129.5, -78.6, -66.6, -60.8], "pretrained": [-158.0, -135.4, -128.5, -133.6],
                    "random": [-255.0], "oracle": [-54.5]},
    "cheetah-dir": {"maml": [-50.7, 293.2, 313.5, 315.7], "pretrained": [-43.0, -24.8, -12.9, 19.6],
                    "random": [-35.7, 21.8, 62.3, 86.2], "oracle": [442.7]},
    "ant-vel": {"maml": [30.6, 96.7, 100.1, 101.4], "pretrained": [-1.8, 6.1, 8.5, 9.5],
                "random": [-79.0], "oracle": [107.9]},
    "ant-dir": {"maml": [8.7, 499.2, 500.7, 499.1], "pretrained": [3.2, 1.3, 6.5, 6.9],
                "random": [3.1, 9.3, 16.0, 26.1], "oracle": [524.8]},
}
PAPER_NOTES = {
    "oracle": "one number in the paper, without fine-tuning: compare with our 0-step return",
    "random": "the paper's text gives 'about' this value at every step",
}
TITLES = {"navigation": "Figure 4: 2D navigation", "cheetah-vel": "Figure 5: half-cheetah, goal velocity",
          "cheetah-dir": "Figure 5: half-cheetah, goal direction", "ant-vel": "Figure 5: ant, goal velocity",
          "ant-dir": "Figure 5: ant, goal direction"}
COLORS = {"maml": "tab:blue", "pretrained": "tab:orange", "random": "tab:gray", "oracle": "tab:green"}
# What a preset may make smaller than the paper's: compared field by field in table.md.
BUDGET_FIELDS = ("iterations", "meta_batch_size", "episodes_per_task", "eval_tasks", "eval_episodes_per_task")


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
    ``<figure>_returns.png`` into ``out``. Returns ``(metrics, learners, test tasks, out)``."""
    from maml_tf.experiments import rl

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
               f"0..{preset.eval_inner_steps} steps of sizes {_fmt_step_sizes(step_sizes)}")
    started = time.time()
    results = {method: rl.meta_test(preset, learners[method], tasks, step_sizes[method]) for method in rl.METHODS}
    metrics = {
        "experiment": name, "task": preset.env, "preset": preset.name,
        "returns": {m: r["mean"] for m, r in results.items()},
        "ci95": {m: r["ci95"] for m, r in results.items()},
        "per_task": {m: r["per_task"] for m, r in results.items()},
        "paper": PAPER[preset.env],
        "paper_notes": {m: PAPER_NOTES[m] for m, v in PAPER[preset.env].items() if len(v) == 1},
        "iterations": {m: learners[m].iteration for m in rl.METHODS},
        "env_steps": {m: learners[m].env_steps for m in rl.METHODS},
        "seconds": {m: round(learners[m].seconds, 1) for m in rl.METHODS},
        "eval_seconds": round(time.time() - started, 1),
        "training_curve": {m: rl.training_curve(checkpoint_dir, m) for m in rl.TRAINED},
        "training_history": {m: reporting.training_history(checkpoint_dir, m) for m in rl.TRAINED},
        "test_step_sizes": step_sizes,
        "settings": _settings(preset),
        "paper_budget": {k: getattr(paper_preset, k) for k in BUDGET_FIELDS},
        "environment": rl.environment_note(preset.env),
        "command": reporting.command(), "machine": reporting.machine(),
    }
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), metrics)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(markdown(metrics))
    plot_returns(metrics, os.path.join(out, f"{figure}_returns.png"))
    click.echo(markdown(metrics))
    return metrics, learners, tasks, out


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


def _settings(preset):
    return {k: v for k, v in dataclasses.asdict(preset).items() if k != "name"}


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


def budget_mark(metrics, method):
    """``""``, ``"unfinished run"`` (fewer iterations than the preset's) or ``"reduced
    budget"`` (a preset smaller than the paper's) for ``method``."""
    settings, paper = metrics["settings"], metrics["paper_budget"]
    if method == "random":
        smaller = any(settings[k] < paper[k] for k in ("eval_tasks", "eval_episodes_per_task"))
        return "reduced budget" if smaller else ""
    if metrics["iterations"][method] < settings["iterations"]:
        return "unfinished run"
    return "reduced budget" if any(settings[k] < paper[k] for k in BUDGET_FIELDS) else ""


def _fmt_step_sizes(step_sizes):
    """``0.1, 0.05`` if every method fine-tunes alike, else ``maml 0.1/0.05, pretrained ...``."""
    distinct = {tuple(sizes) for sizes in step_sizes.values()}
    if len(distinct) == 1:
        return ", ".join(f"{a:g}" for a in distinct.pop())
    return ", ".join(f"{m} " + "/".join(f"{a:g}" for a in sizes) for m, sizes in step_sizes.items())


def _fmt_paper(values):
    return " / ".join(f"{v:g}" for v in values)


def markdown(metrics):
    s, paper_budget, m = metrics["settings"], metrics["paper_budget"], metrics["machine"]
    steps = len(next(iter(metrics["returns"].values())))
    lines = [
        f"# {TITLES[metrics['task']]}: mean return after 0..{steps - 1} gradient steps",
        "",
        f"Command: `{metrics['command']}`  ",
        f"Preset `{metrics['preset']}`: {s['iterations']} iterations of {s['meta_batch_size']} tasks x "
        f"{s['episodes_per_task']} trajectories (paper: {paper_budget['iterations']} of "
        f"{paper_budget['meta_batch_size']} x {paper_budget['episodes_per_task']}; the pretrained and oracle "
        "baselines train as many TRPO iterations on as many tasks, a budget the paper does not give); "
        f"test: {s['eval_tasks']} fixed tasks x {s['eval_episodes_per_task']} trajectories (paper: "
        f"{paper_budget['eval_tasks']} x {paper_budget['eval_episodes_per_task']}), inner step sizes "
        f"{_fmt_step_sizes(metrics['test_step_sizes'])} (the last repeated; MAML meta-trained with "
        f"{s['inner_lr']:g}); TRPO Hessian-vector products {s['hvp']}; "
        + ("trajectories counted as a budget of steps per task (trajectories x horizon), an episode that "
           "ends early restarting within it, returns averaged over complete episodes (rllab's sampler); "
           if s.get("sampling") == "steps" else "")
        + "mean ± 95% CI over tasks. "
        "Bold: fewer iterations than the preset's (unfinished: the same command resumes) or a "
        "budget smaller than the paper's.  ",
        f"Environment: {metrics['environment']}.  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['gpus'] or 'no'} GPU; training seconds "
        + ", ".join(f"{k} {v:.0f}" for k, v in metrics["seconds"].items() if k != "random")
        + f"; meta-test {metrics['eval_seconds']:.0f} s.",
        "",
        "| method | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in range(steps))
        + " | paper | iterations | env steps |",
        "|---|" + "---|" * steps + "---|---|---|",
    ]
    for method, returns in metrics["returns"].items():
        cells = [f"{r:.1f} ± {c:.1f}" for r, c in zip(returns, metrics["ci95"][method])]
        paper = metrics["paper"][method]
        note = metrics["paper_notes"].get(method)
        paper_cell = _fmt_paper(paper) + (f" ({note})" if note else "")
        iterations = "—" if method == "random" else str(metrics["iterations"][method])
        mark = budget_mark(metrics, method)
        if mark:
            iterations = f"**{iterations}, {mark}**"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {paper_cell} | {iterations} | "
                     f"{metrics['env_steps'][method]:,} |")
    if "training_history" in metrics:  # results written before the history was kept have none
        lines += ["", "Training runs behind each checkpoint (the command above evaluated them all):"]
        for method, history in metrics["training_history"].items():
            lines += ["", f"{method}:", ""] + reporting.history_lines(history, metrics["iterations"][method])
    return "\n".join(lines) + "\n"


def plot_returns(metrics, path):
    """Return against gradient steps (Figures 4 and 5), beside the training curves."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for method, returns in metrics["returns"].items():
        color = COLORS[method]
        mean, ci = np.array(returns), np.array(metrics["ci95"][method])
        steps = np.arange(len(mean))
        left.set_xticks(steps)
        left.plot(steps, mean, "o-", color=color, label=f"{method} (ours)")
        left.fill_between(steps, mean - ci, mean + ci, color=color, alpha=0.2)
        paper = metrics["paper"][method]
        if len(paper) == 1:
            left.axhline(paper[0], color=color, ls=":", lw=1, label=f"{method} (paper)")
        else:
            left.plot(range(len(paper)), paper, "x:", color=color, label=f"{method} (paper)")
    left.set(xlabel="gradient steps at meta-test", ylabel="mean return",
             title=f"{TITLES[metrics['task']]} (± 95% CI over {metrics['settings']['eval_tasks']} tasks)")
    for method, curve in metrics["training_curve"].items():
        if curve:
            it, ret = np.array(curve).T
            label = "maml (post-update)" if method == "maml" else method
            right.plot(it, ret, color=COLORS[method], label=label)
    right.set(xlabel="training iteration", ylabel="mean return of the iteration's trajectories",
              title="Training")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
