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

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from maml_tf import presets  # noqa: E402
import table1_common  # noqa: E402

RUN_ROOT = os.path.join("checkpoints", "table1_omniglot")


@click.command()
@table1_common.options(presets.OMNIGLOT, RUN_ROOT)
def main(**kwargs):
    """Reproduce the Omniglot half of Table 1 of Finn et al. (2017)."""
    table1_common.run("table1_omniglot", presets.OMNIGLOT, default_run_root=RUN_ROOT, **kwargs)


if __name__ == "__main__":
    main()
