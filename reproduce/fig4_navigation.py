"""Figure 4 (Section 5.3): 2D navigation, MAML vs pretrained, random initialisation, oracle.

    python reproduce/fig4_navigation.py                  # the paper's budget (500 meta-iterations)
    python reproduce/fig4_navigation.py --preset quick   # a reduced budget
    python reproduce/fig4_navigation.py --time-limit 60  # train an hour, evaluate, resume later

Writes results/fig4_navigation/ (metrics.json, table.md, fig4_returns.png,
fig4_paths.png); the latest checkpoint of each method goes to
checkpoints/fig4_navigation/<preset>/ and the same command resumes from it.
"""
import os
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from maml_tf import presets  # noqa: E402
import rl_common  # noqa: E402

PATH_TASKS = 4  # test goals drawn in fig4_paths.png


@click.command()
@rl_common.options(sorted(presets.NAVIGATION))
def main(preset, out, checkpoint_dir, time_limit, until):
    """Reproduce Figure 4 of Finn et al. (2017)."""
    from maml_tf.experiments import rl

    config = presets.get(presets.NAVIGATION, preset)
    metrics, learners, tasks, out = rl_common.run("fig4", config, presets.NAVIGATION["paper"], out,
                                                  checkpoint_dir, time_limit, until)
    goals = tasks[:PATH_TASKS]
    drawn = {m: rl.paths(config, learners[m], goals, config.step_sizes(m), seed=config.seed)
             for m in ("maml", "pretrained")}
    plot_paths(drawn, [g["goal"] for g in goals], config.eval_inner_steps, metrics["iterations"],
               os.path.join(out, "fig4_paths.png"))
    click.echo(f"wrote {out}/")


def plot_paths(drawn, goals, steps, iterations, path):
    """One panel per method: each goal's pre-update (dotted) and adapted (solid) path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(drawn), figsize=(5 * len(drawn), 4.6))
    colors = plt.get_cmap("tab10").colors
    for ax, (method, paths) in zip(axes, drawn.items()):
        for i, goal in enumerate(goals):
            color = colors[i % len(colors)]
            ax.plot(*paths["pre"][i].T, ":", color=color, lw=1.2)
            ax.plot(*paths["post"][i].T, "-", color=color, lw=1.5)
            ax.plot(*goal, "*", color=color, ms=14, mec="k")
        ax.plot(0, 0, "ko", ms=4)
        ax.plot([], [], "k:", label="pre-update")
        ax.plot([], [], "k-", label=f"{steps} gradient steps")
        ax.plot([], [], "k*", ls="none", label="goal")
        ax.set(title=f"{method} ({iterations[method]} training iterations)", aspect="equal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("2D navigation: one sampled trajectory per test goal, from the origin")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
