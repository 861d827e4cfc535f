"""Issue 30, part 3: the evaluation suite (sinusoid and Omniglot): MAML against the pretrained
baseline and training from scratch, out of distribution, adaptation speed, sample efficiency and
robustness, with 95% CIs.

    python reproduce/evaluation_suite.py                  # the results page's budget (preset full)
    python reproduce/evaluation_suite.py --preset quick   # minutes
    python reproduce/evaluation_suite.py --time-limit 25  # stop training after 25 min; run again to resume

Writes results/evaluation_suite/ (metrics.json, table.md, one PNG per axis). Trainings go to
--run-dir (default checkpoints/evaluation_suite/<preset>); an interrupted run resumes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import study_command  # noqa: E402

main = study_command("evaluation-suite")  # the same command as `maml study evaluation-suite`

if __name__ == "__main__":
    main()
