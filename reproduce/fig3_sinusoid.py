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
    from maml_tf.report import plots, records, render, schema

    try:
        strategy = distribute.strategy(strategy)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    config = presets.get(presets.SINUSOID, preset)
    run_dir = run_dir or os.path.join("runs", "fig3_sinusoid", preset)
    name = "fig3_sinusoid"
    out = out or os.path.join("results", name + ("" if preset == "paper" else f"_{preset}"))
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
    # training (possibly in earlier, resumed or reused runs) + this meta-test
    total = round(sum(seconds.values()) + time.time() - started, 1)
    rows = records.sinusoid(name, config, stats, {k: round(v, 1) for k, v in seconds.items()},
                            sinusoid.DIVERGED_MSE)
    doc = schema.document(name, "regression", rows, command=reporting.command(), machine=reporting.machine(),
                          seconds=total)
    click.echo(render.write(doc, out))
    plots.sinusoid_examples(examples, os.path.join(out, "fig2_examples.png"))
    click.echo(f"wrote {out}/")


if __name__ == "__main__":
    main()
