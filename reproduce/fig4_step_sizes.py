"""Figure 4 companion: how the meta-test step sizes shape the 2D-navigation returns.

The paper's text fine-tunes every method with alpha 0.1, then 0.05 (Section 5.3); the
authors' code with 0.5, then 0.25. This script trains nothing: it takes the checkpoints
of ``reproduce/fig4_navigation.py``, grid-searches the first and the later step size on
validation goals (drawn with another seed than the test goals), picks for each method
the pair with the best mean return over steps 1..3, and meta-tests that pair on the fixed
test goals, beside the preset's own step sizes and the paper's numbers.

    python reproduce/fig4_step_sizes.py                 # checkpoints of the paper preset
    python reproduce/fig4_step_sizes.py --preset code   # of the authors'-code preset

Writes results/fig4_step_sizes/ (or results/fig4_step_sizes_<preset>/): metrics.json,
table.md and step_sizes.png (validation return per step-size pair, per method).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf.cli import reproduce_command  # noqa: E402

main = reproduce_command("fig4-step-sizes")  # the same command as `maml reproduce fig4-step-sizes`

if __name__ == "__main__":
    main()
