"""MAML-TRPO's outer step (Section 5.3): seconds per KL Hessian-vector product, the
product conjugate gradient calls 11 times per meta-iteration, at the paper's
locomotion batch (40 tasks x 20 trajectories x 200 steps; half-cheetah's 17
observations and 6 actions; 100-100 policy), computed four ways on the same data in
alternating rounds: double backprop through the second-order KL
(``trpo.hessian_vector_product``), and the Fisher form ``J^T M J`` through the policy
outputs (``trpo.kl_hessian_vector_product``) with ``J v`` by forward mode (the product
before XLA), by reverse over reverse, and by reverse over reverse compiled with XLA (what
the learners use). Each product's largest difference from the forward-mode one (relative
to that product's largest entry) and its first call (tracing, and compiling for XLA) are
recorded too. Random states and actions: the cost does not depend on them.

    python benchmarks/bench_trpo.py --out benchmarks/trpo.jsonl
    python benchmarks/bench_trpo.py --table benchmarks/trpo.jsonl   # README block
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from maml_tf import reporting  # noqa: E402
from maml_tf.report import blocks  # noqa: E402

START, END = "<!-- GENERATED: bench_trpo.py -->", "<!-- END GENERATED: bench_trpo.py -->"


REFERENCE = "forward + reverse"  # the product before XLA: the ratios and differences are against it


def products(tasks, samples_per_task, observation_dim, action_dim):
    """The compiled products of one MAML-TRPO problem, and their argument."""
    import tensorflow as tf

    from maml_tf.models.policy import gaussian_mlp_policy
    from maml_tf.rl.maml_trpo import MAMLTRPO
    from maml_tf.rl.trpo import hessian_vector_product

    rng = np.random.default_rng(0)
    model = gaussian_mlp_policy(observation_dim, action_dim)
    learners = {name: MAMLTRPO(model, env="cheetah-vel", inner_lr=0.1, jit_compile=xla)
                for name, xla in [(REFERENCE, False), ("reverse + reverse", False), ("reverse + reverse, XLA", True)]}
    learners[REFERENCE]._jvp = "forward"
    algo = learners[REFERENCE]

    def batch():
        shape = (tasks, samples_per_task)
        return (tf.constant(rng.normal(size=shape + (observation_dim,)), tf.float32),
                tf.constant(rng.normal(size=shape + (action_dim,)), tf.float32),
                tf.constant(rng.normal(size=shape), tf.float32),
                tf.ones(shape, tf.float32))  # valid: no padding (locomotion never terminates)

    pre, post = batch(), batch()
    centre = algo._policy_outputs(pre, post, None)
    variables = model.trainable_variables
    vector = [tf.constant(rng.normal(size=tuple(v.shape)), tf.float32) for v in variables]
    double_backprop = tf.function(
        lambda v: hessian_vector_product(lambda: algo._mean_kl(pre, post, centre), variables, v))
    fns = {"double backprop": double_backprop}
    for name, learner in learners.items():
        fns[name] = lambda v, learner=learner: learner._hvp(v, pre, post, centre)
    return fns, vector


def write_table(jsonl, readme):
    records = reporting.read_json_lines(jsonl)
    rows = [f"| run | batch | product | s per product | {REFERENCE} / this | max difference from {REFERENCE} "
            "| first call s | rounds | load (1 min) before, after | machine |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(records, 1):
        m, seconds = r["machine"], r["seconds"]
        for name, s in seconds.items():
            error = r.get("max_relative_difference", {}).get(name)
            first = r.get("first_seconds", {}).get(name)
            after = f", {r['load_after'][0]:.1f}" if "load_after" in r else ""
            rows.append(f"| {i} | {r['tasks']} tasks x {r['samples_per_task']} states | {name} | {s:.2f} | "
                        f"{seconds[REFERENCE] / s:.2f} | {'' if error is None else f'{error:.1e}'} | "
                        f"{'' if first is None else f'{first:.1f}'} | {r['rounds']} | "
                        f"{r['load_average'][0]:.1f}{after} | {m['cpu']}, {m['cores']} cores |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=40, help="tasks per meta-batch (paper 40)")
    ap.add_argument("--samples-per-task", type=int, default=4000, help="20 trajectories x 200 steps")
    ap.add_argument("--rounds", type=int, default=3)
    blocks.add_table_arguments(ap, __file__)
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    for name in ("tasks", "samples_per_task", "rounds"):
        if getattr(a, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    load = os.getloadavg()
    fns, vector = products(a.tasks, a.samples_per_task, 17, 6)
    first, results = {}, {}
    for name, fn in fns.items():  # trace (and compile) and warm up
        start = time.perf_counter()
        results[name] = np.concatenate([np.ravel(t.numpy()) for t in fn(vector)])
        first[name] = time.perf_counter() - start
    reference = results[REFERENCE]
    differences = {name: float(np.max(np.abs(r - reference)) / np.max(np.abs(reference)))
                   for name, r in results.items()}
    times = {name: [] for name in fns}
    for _ in range(a.rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(vector)[0].numpy()
            times[name].append(time.perf_counter() - start)
    seconds = {name: float(np.median(t)) for name, t in times.items()}
    record = {"benchmark": "trpo_hvp", "tasks": a.tasks, "samples_per_task": a.samples_per_task,
              "rounds": a.rounds, "seconds": seconds, "first_seconds": first,
              "max_relative_difference": differences,
              "ratio": seconds[REFERENCE] / seconds["double backprop"],
              "machine": reporting.machine(), "load_average": load, "load_after": os.getloadavg(),
              "command": reporting.command()}
    print(json.dumps(record))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
