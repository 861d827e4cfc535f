"""Table 1, Omniglot (Section 5.2): 5/20-way 1/5-shot with conv4, 5-way with the FC net.

    python reproduce/table1_omniglot.py --setting 5way1shot            # paper budget
    python reproduce/table1_omniglot.py --preset quick                 # every row, 2,000 it.
    python reproduce/table1_omniglot.py --setting 5way1shot --no-train # score the latest checkpoint

Data: the TFDS ``omniglot`` dataset, prepared offline once with
``maml data prepare omniglot`` (from ../shared/data/omniglot by default).
Writes results/table1_omniglot/ (metrics.json, table.md, accuracy.png); checkpoints go
to checkpoints/table1_omniglot/<preset>/<setting>, and the same command resumes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import reproduce_command  # noqa: E402

main = reproduce_command("table1-omniglot")  # the same command as `maml reproduce table1-omniglot`

if __name__ == "__main__":
    main()
