"""Figure 5 (Section 5.3): half-cheetah and ant locomotion with goal velocities or
directions, MAML vs pretrained, random initialisation, oracle.

    python reproduce/fig5_locomotion.py --task cheetah-vel                  # the paper's budget
    python reproduce/fig5_locomotion.py --task ant-dir --preset quick       # a reduced budget
    python reproduce/fig5_locomotion.py --task cheetah-dir --time-limit 120 # resumable
    python reproduce/fig5_locomotion.py --task cheetah-dir --preset code    # the authors' run

The robots are gymnasium's v5 MuJoCo models at rllab's time step, the ant with rllab's
contacts and start pose (maml_tf/rl/envs/locomotion.py), not the paper's rllab models:
absolute returns differ.
Writes results/fig5_<task>/ (metrics.json, table.md, fig5_returns.png); the latest
checkpoint of each method goes to checkpoints/fig5_<task>/<preset>/ and the same
command resumes from it. ``--preset code`` is the authors' evaluated configuration
(maml_tf/presets.py: iterations, trust region, trajectories and per-method test step
sizes of maml_rl's scripts, and their finite-difference TRPO).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import reproduce_command  # noqa: E402

main = reproduce_command("fig5")  # the same command as `maml reproduce fig5`

if __name__ == "__main__":
    main()
