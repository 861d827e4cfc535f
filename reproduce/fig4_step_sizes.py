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
    from maml_tf.report import plots, records, render, schema

    config = presets.get(presets.NAVIGATION, preset)
    checkpoint_dir = checkpoint_dir or os.path.join("checkpoints", "fig4_navigation", config.name)
    name = "fig4_step_sizes"
    out = out or os.path.join("results", name + ("" if config.name == "paper" else f"_{config.name}"))
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
            grid[method][plots.grid_key(a, b)] = returns["mean"]
            click.echo(f"[{method}] validation, steps {a:g} then {b:g}: "
                       + " / ".join(f"{r:.1f}" for r in returns["mean"]))
    selected = {m: max(pairs, key=lambda p: plots.grid_score(grid[m][plots.grid_key(*p)])) for m in METHODS}
    rows = []
    for method, learner in learners.items():
        iterations = learner.iteration if method in rl.TRAINED else None
        for sizes, chosen in ((config.step_sizes(method), False), (selected[method], True)):
            result = rl.meta_test(config, learner, test, sizes)
            rows.append(records.rl(name, config, presets.NAVIGATION["paper"], method, result, sizes, iterations,
                                   summary=chosen, step_sizes_selected=chosen))
    search = {"checkpoints": checkpoint_dir, "candidates": {"first": list(first_sizes), "later": list(later_sizes)},
              "selection": "best mean return over steps 1..3 on the validation goals",
              "validation_tasks": len(validation), "episodes_per_task": config.eval_episodes_per_task,
              "validation_grid": grid}
    doc = schema.document(name, "rl", rows, command=reporting.command(), machine=reporting.machine(),
                          seconds=round(time.time() - started, 1), step_size_search=search)
    click.echo(render.write(doc, out))
    click.echo(f"wrote {out}/")


if __name__ == "__main__":
    main()
