"""Figure 4 companion: how the meta-test step sizes shape the 2D-navigation returns.

The paper's text fine-tunes every method with alpha 0.1, then 0.05 (Section 5.3); the
authors' code with 0.5, then 0.25. This script trains nothing: it takes the checkpoints
of ``reproduce/fig4_navigation.py``, grid-searches the first and the later step size on
validation goals (drawn with another seed than the test goals), picks for each method
the pair with the best mean return over steps 1..3, and meta-tests that pair on the fixed
test goals, beside the preset's own step sizes and the paper's numbers.

    python reproduce/fig4_step_sizes.py                 # checkpoints of the paper preset
    python reproduce/fig4_step_sizes.py --preset code   # of the authors'-code preset

Writes results/fig4_step_sizes/ (or results/fig4_step_sizes_<preset>/): metrics.json,
table.md and step_sizes.png (validation return per step-size pair, per method).
"""
import os
import sys
import time

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from maml_tf import presets, reporting  # noqa: E402
import rl_common  # noqa: E402

METHODS = ("maml", "pretrained", "random")  # the oracle is reported without fine-tuning


@click.command()
@click.option("--preset", type=click.Choice(sorted(presets.NAVIGATION)), default="paper", show_default=True,
              help="Whose checkpoints, tasks and trajectory counts (maml_tf/presets.py).")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="Default checkpoints/fig4_navigation/<preset>, as fig4_navigation.py writes them.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Default results/fig4_step_sizes (results/fig4_step_sizes_<preset> for other presets).")
@click.option("--first", "first_sizes", type=float, multiple=True, default=(0.05, 0.1, 0.2, 0.5, 1.0),
              show_default=True, help="Candidate step sizes of the first gradient step.")
@click.option("--later", "later_sizes", type=float, multiple=True, default=(0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5),
              show_default=True, help="Candidate step sizes of the second and third steps.")
def main(preset, checkpoint_dir, out, first_sizes, later_sizes):
    """Select the meta-test step sizes of Figure 4 on validation goals; report them on the test goals."""
    from maml_tf.experiments import rl

    config = presets.get(presets.NAVIGATION, preset)
    checkpoint_dir = checkpoint_dir or os.path.join("checkpoints", "fig4_navigation", config.name)
    out = out or os.path.join("results", "fig4_step_sizes" + ("" if config.name == "paper" else f"_{config.name}"))
    missing = [m for m in rl.TRAINED if m in METHODS and not rl.has_checkpoint(checkpoint_dir, m)]
    if missing:
        raise click.UsageError(f"No checkpoint of {', '.join(missing)} in {checkpoint_dir}: train first with "
                               f"`python reproduce/fig4_navigation.py --preset {config.name}`.")
    with rl_common.refuse_other_checkpoints(checkpoint_dir):
        learners = {m: rl.load(config, m, checkpoint_dir) for m in METHODS}
    validation, test = rl.validation_tasks(config), rl.test_tasks(config)
    pairs = [(a, b) for a in first_sizes for b in later_sizes]
    started = time.time()
    grid = {}
    for method, learner in learners.items():
        grid[method] = {}
        for a, b in pairs:
            returns = rl.meta_test(config, learner, validation, (a, b))
            grid[method][_key(a, b)] = returns["mean"]
            click.echo(f"[{method}] validation, steps {a:g} then {b:g}: "
                       + " / ".join(f"{r:.1f}" for r in returns["mean"]))
    selected = {m: max(pairs, key=lambda p: _score(grid[m][_key(*p)])) for m in METHODS}
    results = {}
    for method, learner in learners.items():
        own = rl.meta_test(config, learner, test, config.step_sizes(method))
        chosen = rl.meta_test(config, learner, test, selected[method])
        results[method] = {"preset_step_sizes": {k: own[k] for k in ("mean", "ci95")},
                           "selected_step_sizes": {k: chosen[k] for k in ("mean", "ci95")}}
    metrics = {
        "experiment": "fig4_step_sizes", "task": config.env, "preset": config.name,
        "checkpoints": checkpoint_dir, "iterations": {m: learners[m].iteration for m in METHODS},
        "preset_step_sizes": {m: list(config.step_sizes(m)) for m in METHODS},
        "candidates": {"first": list(first_sizes), "later": list(later_sizes)},
        "selection": "best mean return over steps 1..3 on the validation goals",
        "validation_tasks": len(validation), "test_tasks": len(test),
        "episodes_per_task": config.eval_episodes_per_task,
        "validation_grid": grid, "selected": {m: list(p) for m, p in selected.items()},
        "test": results, "paper": {m: rl_common.PAPER[config.env][m] for m in METHODS},
        "seconds": round(time.time() - started, 1),
        "command": reporting.command(), "machine": reporting.machine(),
    }
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), metrics)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(markdown(metrics))
    plot_grid(metrics, os.path.join(out, "step_sizes.png"))
    click.echo(markdown(metrics))
    click.echo(f"wrote {out}/")


def _key(first, later):
    return f"{first:g},{later:g}"


def _score(returns):
    """What the selection maximises: the mean return after steps 1..3."""
    return sum(returns[1:]) / len(returns[1:])


def _at_edge(metrics, method):
    """Whether a selected step size is the largest or smallest candidate (a wider grid may do better)."""
    candidates = metrics["candidates"]
    return any(size in (min(candidates[k]), max(candidates[k]))
               for size, k in zip(metrics["selected"][method], ("first", "later")))


def markdown(metrics):
    m = metrics["machine"]
    lines = [
        "# Figure 4, 2D navigation: meta-test step sizes selected on validation goals",
        "",
        f"Command: `{metrics['command']}`  ",
        f"Checkpoints `{metrics['checkpoints']}` (preset `{metrics['preset']}`; training iterations "
        + ", ".join(f"{k} {v}" for k, v in metrics["iterations"].items() if k != "random")
        + "). Candidates: first step " + ", ".join(f"{a:g}" for a in metrics["candidates"]["first"])
        + "; second and third step " + ", ".join(f"{b:g}" for b in metrics["candidates"]["later"])
        + f". Selected per method by the {metrics['selection']} ({metrics['validation_tasks']} goals, "
        f"drawn with another seed than the test goals), then meta-tested on the {metrics['test_tasks']} fixed test "
        f"goals; {metrics['episodes_per_task']} trajectories per step; mean ± 95% CI over goals.  ",
        f"Machine: {m['cpu']}, {m['cores']} cores; {metrics['seconds']:.0f} s.",
        "",
        "| method | step sizes | return after 0 / 1 / 2 / 3 steps (test goals) | paper |",
        "|---|---|---|---|",
    ]
    for method, result in metrics["test"].items():
        preset_sizes = "/".join(f"{a:g}" for a in metrics["preset_step_sizes"][method])
        paper = metrics["paper"][method]
        paper_cell = " / ".join(f"{v:g}" for v in paper) if len(paper) > 1 else f"about {paper[0]:g}"
        selected = "/".join(f"{a:g}" for a in metrics["selected"][method]) + " (selected" + (
            ", at the edge of the candidates)" if _at_edge(metrics, method) else ")")
        for label, sizes in (("preset_step_sizes", preset_sizes), ("selected_step_sizes", selected)):
            r = result[label]
            cells = " / ".join(f"{v:.1f} ± {c:.1f}" for v, c in zip(r["mean"], r["ci95"]))
            lines.append(f"| {method} | {sizes} | {cells} | {paper_cell} |")
    return "\n".join(lines) + "\n"


def plot_grid(metrics, path):
    """One heat map per method: validation mean return over steps 1..3 per step-size pair."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    first, later = metrics["candidates"]["first"], metrics["candidates"]["later"]
    methods = list(metrics["validation_grid"])
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8))
    for ax, method in zip(np.atleast_1d(axes), methods):
        scores = np.array([[_score(metrics["validation_grid"][method][_key(a, b)]) for b in later]
                           for a in first])
        # The colours span the better three quarters; the worst pairs (divergent steps) saturate.
        image = ax.imshow(scores, cmap="viridis", aspect="auto", vmin=np.quantile(scores, 0.25))
        for i in range(len(first)):
            for j in range(len(later)):
                ax.text(j, i, f"{scores[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
        a, b = metrics["selected"][method]
        ax.add_patch(plt.Rectangle((later.index(b) - 0.5, first.index(a) - 0.5), 1, 1, fill=False, ec="r", lw=2))
        ax.set(xticks=range(len(later)), xticklabels=[f"{b:g}" for b in later], yticks=range(len(first)),
               yticklabels=[f"{a:g}" for a in first], xlabel="second and third step size",
               ylabel="first step size", title=f"{method}")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("2D navigation: validation mean return over steps 1..3 (red: selected)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
