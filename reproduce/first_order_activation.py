"""Issue 30, part 1: does first-order MAML still match second order with a smooth activation?

    python reproduce/first_order_activation.py                  # the results page's budget
    python reproduce/first_order_activation.py --preset quick   # minutes
    python reproduce/first_order_activation.py --preset smoke   # seconds, for tests

{ReLU, SiLU} x {first, second order} x seeds on the sinusoid and Omniglot 5-way 1-shot, the
dropped second-order term along training, and on MiniImagenet episodes. Writes
results/first_order_activation/ (metrics.json, table.md, curves.png, terms.png); trainings go
to --run-dir, one folder per cell, and an interrupted grid resumes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import study_command  # noqa: E402

main = study_command("first-order")  # the same command as `maml study first-order`

if __name__ == "__main__":
    main()
