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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import reproduce_command  # noqa: E402

main = reproduce_command("fig4")  # the same command as `maml reproduce fig4`

if __name__ == "__main__":
    main()
