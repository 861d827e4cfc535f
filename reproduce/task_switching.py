"""Issue 30, part 2: can MAML switch back and forth between tasks?

    python reproduce/task_switching.py                 # the results page's budget (full preset)
    python reproduce/task_switching.py --preset quick  # fewer chains, the sinusoid at 5,000 iterations
    python reproduce/task_switching.py --preset smoke  # seconds (tests)

Chains A -> B -> A -> C ... adapted with and without reset to the meta-learned weights, on the
sinusoid (MAML trained into --run-dir, resumable), Omniglot 5-way 1-shot and 2D navigation (the
committed checkpoints, read only). Writes results/task_switching/ (metrics.json, table.md, PNGs).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import study_command  # noqa: E402

main = study_command("task-switching")  # the same command as `maml study task-switching`

if __name__ == "__main__":
    main()
