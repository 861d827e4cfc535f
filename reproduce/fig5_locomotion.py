"""Figure 5 (Section 5.3): half-cheetah and ant locomotion with goal velocities or
directions, MAML vs pretrained, random initialisation, oracle.

    python reproduce/fig5_locomotion.py --task cheetah-vel                  # the paper's budget
    python reproduce/fig5_locomotion.py --task ant-dir --preset quick       # a reduced budget
    python reproduce/fig5_locomotion.py --task cheetah-dir --time-limit 120 # resumable
    python reproduce/fig5_locomotion.py --task cheetah-dir --preset code    # the authors' run

The robots are gymnasium's v5 MuJoCo models at rllab's time step (see
maml_tf/rl/envs/locomotion.py), not the paper's rllab models: absolute returns differ.
Writes results/fig5_<task>/ (metrics.json, table.md, fig5_returns.png); the latest
checkpoint of each method goes to checkpoints/fig5_<task>/<preset>/ and the same
command resumes from it. ``--preset code`` is the authors' evaluated configuration
(maml_tf/presets.py: iterations, trust region, trajectories and per-method test step
sizes of maml_rl's scripts, and their finite-difference TRPO).
"""
import os
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from maml_tf import presets  # noqa: E402
import rl_common  # noqa: E402



@click.command()
@click.option("--task", type=click.Choice(sorted(presets.LOCOMOTION)), required=True,
              help="The task distribution (robot and goal).")
@rl_common.options(sorted(presets.LOCOMOTION["cheetah-vel"]))
def main(task, preset, out, checkpoint_dir, time_limit, until):
    """Reproduce one panel of Figure 5 of Finn et al. (2017)."""
    table = presets.LOCOMOTION[task]
    _, _, _, out = rl_common.run("fig5", presets.get(table, preset), table["paper"], out,
                                 checkpoint_dir, time_limit, until)
    click.echo(f"wrote {out}/")


if __name__ == "__main__":
    main()
