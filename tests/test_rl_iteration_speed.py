"""The speed work on MAML-TRPO's iteration keeps its numbers: one meta-iteration from fixed
seeds ends at the weights the code before it (commit a715c40) reached
(tests/rl_iteration_reference.py wrote them) with the products compiled without XLA, and with
XLA its TRPO step is as close to float64's as that one."""
import json
import os

import numpy as np
import pytest

from rl_iteration_reference import (CONFIGS, small_policy, trpo_data_of_one_iteration, trpo_steps_against_float64,
                                    weights_after_one_iteration)

REFERENCE = os.path.join(os.path.dirname(__file__), "rl_iteration_reference.json")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_meta_iteration_ends_where_it_did_before_the_speed_work(name):
    with open(REFERENCE) as f:
        reference = json.load(f)[name]
    # XLA's products (the default) differ in the last bits, which conjugate gradient amplifies:
    # the next test compares them.
    weights, stats = weights_after_one_iteration(**CONFIGS[name], jit_compile=False)
    # Up to the TRPO step, equal to the last bit when this was written; the tolerance leaves room
    # only for another CPU's rounding (the ant's physics is chaotic: a rounding change in the
    # inner step shows as another post-update return).
    for key in ("pre_update_return", "post_update_return", "loss_before"):
        np.testing.assert_allclose(stats[key], reference["stats"][key], rtol=1e-5, atol=1e-7, err_msg=key)
    # The step itself is float32 conjugate gradient's, which amplifies the products' rounding: on
    # the ant it misses float64's by about 1% (next test), and another CPU's rounding moved its
    # loss by 0.3% (AMD EPYC against the Intel Xeon that wrote the reference). A wrong product
    # or step would miss by far more than these bounds.
    before = [w.ravel() for w in small_policy(CONFIGS[name]["env"])().get_weights()]
    step = np.concatenate([np.subtract(w, b) for w, b in zip(weights, before)])
    expected = np.concatenate([np.subtract(w, b) for w, b in zip(reference["weights"], before)])
    assert np.linalg.norm(step - expected) <= 0.05 * np.linalg.norm(expected)
    change, expected_change = (np.subtract(d["loss_after"], d["loss_before"]) for d in (stats, reference["stats"]))
    assert abs(change - expected_change) <= 0.05 * abs(expected_change) + 1e-7
    np.testing.assert_allclose(stats["kl"], reference["stats"]["kl"], rtol=0.1, err_msg="kl")


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in sorted(CONFIGS) if CONFIGS[name]["hvp"] == "exact"])
def test_xla_products_take_a_step_as_exact_as_the_graphs(name):
    """The first meta-iteration's TRPO step on its own data with XLA-compiled products and
    without, against a float64 twin of the policy: in float32 conjugate gradient amplifies
    the products' rounding (the graph's step misses float64's by about 1% on the ant), and
    XLA's lands as close; a wrong product would land far."""
    config = CONFIGS[name]
    data, before = trpo_data_of_one_iteration(**config)
    options = {"env": config["env"], "meta_batch_size": 2, "hvp": "exact"}
    steps = trpo_steps_against_float64(small_policy(config["env"]), data, before, options,
                                       {"xla": {"jit_compile": True}, "graph": {"jit_compile": False}})
    exact = steps["float64"]
    error = {k: np.linalg.norm(steps[k] - exact) / np.linalg.norm(exact) for k in ("xla", "graph")}
    assert error["xla"] < 0.05
    assert error["xla"] <= 3 * error["graph"] + 1e-5, error
