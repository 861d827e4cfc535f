"""Issue 31: can Table 1 rows meta-train in mixed bfloat16 without losing accuracy?

    python reproduce/precision.py                  # the results page's budget
    python reproduce/precision.py --preset quick   # minutes (Omniglot only)
    python reproduce/precision.py --preset smoke   # seconds, for tests

float32 against mixed_bfloat16 on Omniglot and MiniImagenet 5-way 1-shot (paper presets, same
seed, same budget; the MiniImagenet float32 side reuses the committed paper run at 2,000): test
accuracy on the same tasks, seconds per iteration, and the meta-gradient departure. Writes
results/precision/ (metrics.json, table.md, validation_curves.png); trainings go to --run-dir,
one folder per task and precision, and an interrupted study resumes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import study_command  # noqa: E402

main = study_command("precision")  # the same command as `maml study precision`

if __name__ == "__main__":
    main()
