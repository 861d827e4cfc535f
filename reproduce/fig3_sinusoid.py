"""Figure 2 / Figure 3 (Section 5.1): sinusoid regression, MAML vs pretrained vs oracle.

    python reproduce/fig3_sinusoid.py                 # the paper's budget (70,000 iterations)
    python reproduce/fig3_sinusoid.py --preset quick  # the demo (5,000 iterations)
    python reproduce/fig3_sinusoid.py --preset code   # the authors' code: inner_lr 0.001, their init

Writes results/fig3_sinusoid/ (metrics.json, table.md, fig3_curves.png,
fig2_examples.png). Training checkpoints go to --run-dir; an interrupted run resumes.
"""
import os
import sys
import time

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf import presets, reporting  # noqa: E402
from maml_tf.distribute import STRATEGIES  # noqa: E402

PAPER = {  # Section 5.1, K = 5, MSE after 1 / 5 / 10 gradient steps
    "maml": {"K5": {"1": 0.67, "5": 0.38, "10": 0.35}},
    "pretrained": {"K5": {"1": 2.41, "5": 2.23, "10": 2.19}},
}
COLORS = {"maml": "tab:blue", "pretrained": "tab:orange", "oracle": "tab:green"}


@click.command()
@click.option("--preset", type=click.Choice(sorted(presets.SINUSOID)), default="paper",
              show_default=True, help="Budget and settings (maml_tf/presets.py).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where metrics.json, table.md and the PNGs go "
                   "(default results/fig3_sinusoid, or results/fig3_sinusoid_<preset>).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Checkpoints and logs (default runs/fig3_sinusoid/<preset>); reused to resume.")
@click.option("--verbose", type=click.IntRange(0, 2), default=2, show_default=True,
              help="Keras progress: 0 silent, 1 bar, 2 one line per epoch.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
              help="tf.distribute strategy for meta-training MAML: mirrored = every local GPU, "
                   "multi-worker = the cluster in TF_CONFIG (same command on every machine).")
def main(preset, out, run_dir, verbose, strategy):
    """Reproduce Figures 2 and 3 of Finn et al. (2017)."""
    from maml_tf import distribute
    from maml_tf.experiments import sinusoid
    from maml_tf.experiments.runs import RunDirectoryMismatch
    from maml_tf.experiments.errors import TrainingDiverged

    try:
        strategy = distribute.strategy(strategy)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    config = presets.get(presets.SINUSOID, preset)
    run_dir = run_dir or os.path.join("runs", "fig3_sinusoid", preset)
    out = out or os.path.join("results", "fig3_sinusoid" + ("" if preset == "paper" else f"_{preset}"))
    try:
        sinusoid.check_run_dir(config, run_dir)
    except RunDirectoryMismatch as error:
        raise click.ClickException(str(error)) from None
    learners, seconds = {}, {}
    for method in sinusoid.METHODS:
        click.echo(f"[{method}] training {config.iterations} iterations, meta-batch "
                   f"{config.meta_batch_size} (checkpoints in {run_dir})")
        try:
            learners[method], seconds[method], _ = sinusoid.train(
                config, method, run_dir, verbose, strategy=strategy if method == "maml" else None)
        except TrainingDiverged as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"meta-test: {config.eval_tasks} tasks per K in {config.eval_shots}, "
               f"{config.eval_inner_steps} steps")
    started = time.time()
    stats = sinusoid.meta_test(config, learners)
    examples = sinusoid.example_fits(config, learners)
    metrics = {
        "command": reporting.command(), "preset": preset, "iterations": config.iterations,
        "meta_batch_size": config.meta_batch_size, "settings": _settings(config),
        # training (possibly in earlier, resumed or reused runs) + this meta-test
        "seconds": round(sum(seconds.values()) + time.time() - started, 1),
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "machine": reporting.machine(), **stats, "diverged_mse": sinusoid.DIVERGED_MSE, "paper": PAPER,
        "oracle_note": "the oracle is not fine-tuned: its 0-step MSE repeated over steps",
    }
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), metrics)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table(metrics))
    plot_curves(metrics, os.path.join(out, "fig3_curves.png"))
    plot_examples(examples, os.path.join(out, "fig2_examples.png"))
    click.echo(table(metrics))
    click.echo(f"wrote {out}/")


def _settings(config):
    import dataclasses
    return {k: v for k, v in dataclasses.asdict(config).items() if k != "name"}


def table(metrics):
    """Markdown: ours beside the paper, K=5 after 1/5/10 steps, plus all K."""
    c, ci = metrics["curves"], metrics["ci95"]
    lines = [
        "# Sinusoid regression (Figure 3), MSE after 1 / 5 / 10 gradient steps",
        "",
        f"Command: `{metrics['command']}`  ",
        f"Preset `{metrics['preset']}`: inner_lr {metrics['settings']['inner_lr']}, "
        f"{metrics['settings']['inner_steps']} inner step(s), K={metrics['settings']['support_shots']} in training"
        + ("; the authors' weights: kernels truncated normal (std 0.01), biases zero"
           if metrics["settings"].get("authors_layers") else "") + ".  ",
        f"Budget: {metrics['iterations']:,} meta-iterations (paper: 70,000), meta-batch "
        f"{metrics['meta_batch_size']}; {metrics['settings']['eval_tasks']} test tasks per K, "
        f"{metrics['settings']['eval_query_points']} query points each; mean ± 95% CI over tasks "
        "(median in brackets). The oracle is not fine-tuned (flat, as in the paper).  ",
        f"Machine: {metrics['machine']['cpu']}, {metrics['machine']['cores']} cores, no GPU; "
        f"{metrics['seconds']:.0f} s in total.",
        "",
        "| K | method | ours: 1 step | 5 steps | 10 steps | paper: 1 / 5 / 10 |",
        "|---|---|---|---|---|---|",
    ]
    for k in metrics["settings"]["eval_shots"]:
        for method in ("maml", "pretrained", "oracle"):
            row = c[method][f"K{k}"]
            err = ci[method][f"K{k}"]
            med = metrics["median"][method][f"K{k}"]
            cells = [f"{_fmt(row[s])} ± {_fmt(err[s])} (median {_fmt(med[s])})" if s < len(row) else "—"
                     for s in (1, 5, 10)]
            paper = PAPER.get(method, {}).get(f"K{k}")
            paper_cell = " / ".join(f"{paper[s]:.2f}" for s in ("1", "5", "10")) if paper else "—"
            lines.append(f"| {k} | {method} | " + " | ".join(cells) + f" | {paper_cell} |")
    diverged = metrics.get("diverged", {})
    notes = [f"{method} K={k[1:]}: {counts[1]} / {counts[5]} / {counts[10]}"
             for method, by_k in diverged.items() for k, counts in by_k.items() if any(counts)]
    if notes:
        lines += ["", f"Test tasks that diverged (MSE above {metrics['diverged_mse']:g} or not finite) after "
                  f"1 / 5 / 10 steps, of {metrics['settings']['eval_tasks']}: " + "; ".join(notes)
                  + ". They dominate the mean; the median is robust to them."]
    return "\n".join(lines) + "\n"


def _fmt(value):
    return f"{value:.3f}" if 1e-2 <= abs(value) < 1e4 else f"{value:.2e}"


def plot_curves(metrics, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shots = metrics["settings"]["eval_shots"]
    fig, axes = plt.subplots(1, len(shots), figsize=(4.2 * len(shots), 3.4), sharey=True)
    for ax, k in zip(np.atleast_1d(axes), shots):
        for method, color in COLORS.items():
            mean = np.array(metrics["curves"][method][f"K{k}"])
            err = np.array(metrics["ci95"][method][f"K{k}"])
            steps = np.arange(len(mean))
            ax.plot(steps, mean, "o-", ms=3, color=color, label=method)
            ax.fill_between(steps, mean - err, mean + err, color=color, alpha=0.2)
            ax.plot(steps, metrics["median"][method][f"K{k}"], "--", color=color, lw=1,
                    label=f"{method} (median)")
        paper = PAPER["maml"].get(f"K{k}")
        if paper:
            ax.plot([1, 5, 10], [paper["1"], paper["5"], paper["10"]], "x", color="k", label="paper MAML")
        ax.set_title(f"K = {k} (solid: mean ± 95% CI over tasks)")
        ax.set_xlabel("gradient steps at meta-test")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean squared error")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(f"Sinusoid, {metrics['iterations']:,} meta-iterations ({metrics['preset']} preset)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_examples(examples, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 2, figsize=(9, 3.2 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        for ax, method in zip(row, ("maml", "pretrained")):
            ax.plot(ex["x"], ex["true"], "r-", label="ground truth")
            ax.plot(ex["support_x"], ex["support_y"], "^", color="purple", label=f"{ex['shots']} points used for gradient")
            for (steps, pred), style in zip(ex["predictions"][method].items(), (":", "--", "-")):
                ax.plot(ex["x"], pred, style, color="tab:green",
                        label="pre-update" if steps == "0" else f"{steps} grad step" + ("s" if steps != "1" else ""))
            ax.set_title(f"{'MAML' if method == 'maml' else 'pretrained'}, K = {ex['shots']}")
            ax.set_ylim(-5.5, 5.5)
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
