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
    from maml_tf.report import plots

    config = presets.get(presets.NAVIGATION, preset)
    doc, learners, tasks, out = rl_common.run("fig4", config, presets.NAVIGATION["paper"], out,
                                              checkpoint_dir, time_limit, until)
    goals = tasks[:PATH_TASKS]
    drawn = {m: rl.paths(config, learners[m], goals, config.step_sizes(m), seed=config.seed)
             for m in ("maml", "pretrained")}
    iterations = {r["method"]: r["budget"]["iterations"] for r in doc["rows"]}
    plots.navigation_paths(drawn, [g["goal"] for g in goals], config.eval_inner_steps, iterations,
                           os.path.join(out, "fig4_paths.png"))
    click.echo(f"wrote {out}/")


if __name__ == "__main__":
    main()
