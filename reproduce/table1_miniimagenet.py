"""Table 1, MiniImagenet (Section 5.2): 5-way 1/5-shot, second and first order.

    python reproduce/table1_miniimagenet.py --setting 5way1shot       # paper budget, real data
    python reproduce/table1_miniimagenet.py --synthetic --preset quick # the pipeline on generated images

Real data: prepare once with ``maml data prepare mini_imagenet --from DIR`` (DIR: the
Ravi & Larochelle images/ + CSVs, or the mini-imagenet-cache pickles). ``--synthetic``
generates a MiniImagenet-like folder (maml_tf.datasets.synthetic) and runs on it,
writing results/table1_miniimagenet_synthetic*/, clearly labelled: its numbers check
the pipeline, not the paper. Checkpoints: checkpoints/table1_miniimagenet/; the same
command resumes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import reproduce_command  # noqa: E402

main = reproduce_command("table1-miniimagenet")  # the same command as `maml reproduce table1-miniimagenet`

if __name__ == "__main__":
    main()
