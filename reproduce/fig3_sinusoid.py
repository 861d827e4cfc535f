"""Figure 2 / Figure 3 (Section 5.1): sinusoid regression, MAML vs pretrained vs oracle.

    python reproduce/fig3_sinusoid.py                 # the paper's budget (70,000 iterations)
    python reproduce/fig3_sinusoid.py --preset quick  # the demo (5,000 iterations)
    python reproduce/fig3_sinusoid.py --preset code   # the authors' code: inner_lr 0.001, their init

Writes results/fig3_sinusoid/ (metrics.json, table.md, fig3_curves.png,
fig2_examples.png). Training checkpoints go to --run-dir; an interrupted run resumes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import reproduce_command  # noqa: E402

main = reproduce_command("fig3")  # the same command as `maml reproduce fig3`

if __name__ == "__main__":
    main()
