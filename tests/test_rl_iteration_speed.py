"""The speed work on MAML-TRPO's iteration keeps its numbers: one meta-iteration from fixed
seeds ends at the weights the code before it (commit a715c40) reached
(tests/rl_iteration_reference.py wrote them), and the iteration's timers add up."""
import json
import os

import numpy as np
import pytest

from rl_iteration_reference import CONFIGS, weights_after_one_iteration

REFERENCE = os.path.join(os.path.dirname(__file__), "rl_iteration_reference.json")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_meta_iteration_ends_where_it_did_before_the_speed_work(name):
    with open(REFERENCE) as f:
        reference = json.load(f)[name]
    weights, stats = weights_after_one_iteration(**CONFIGS[name])
    # Equal to the last bit when this was written (the ant's physics is chaotic: a rounding
    # change in the inner step shows as another post-update return); the tolerance leaves
    # room only for another CPU's rounding.
    for key in ("pre_update_return", "post_update_return", "loss_after", "kl"):
        np.testing.assert_allclose(stats[key], reference["stats"][key], rtol=1e-5, atol=1e-7, err_msg=key)
    for got, expected in zip(weights, reference["weights"]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
