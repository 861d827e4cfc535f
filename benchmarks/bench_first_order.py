"""First- versus second-order MAML (Section 5.2): seconds per meta-iteration of both on
the same Table 1 setting and real episodes, timed in alternating rounds in one process
so that a change of machine load hits both alike; with ``--activations relu silu`` every
(activation, order) cell alternates in the same rounds (issue 30's first-order study).

    python benchmarks/bench_first_order.py --setting 5way1shot --out benchmarks/first_order.jsonl
    python benchmarks/bench_first_order.py --setting 5way1shot --activations relu silu --out benchmarks/first_order.jsonl
    python benchmarks/bench_first_order.py --table benchmarks/first_order.jsonl

Prints one JSON line per setting and activation (appended to --out); --table writes the
recorded runs into the README's generated block.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from maml_tf import presets, reporting  # noqa: E402
from maml_tf.report import blocks  # noqa: E402
from maml_tf.experiments import classification  # noqa: E402

START, END = "<!-- GENERATED: bench_first_order.py -->", "<!-- END GENERATED: bench_first_order.py -->"


def timed_rounds(runs, rounds, steps):
    """Median seconds per step of each ``name: (learner, data)``, alternating ``rounds``
    rounds of ``steps``, so that a change of machine load hits every run alike."""
    for maml, data in runs.values():
        maml.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # trace and warm up
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (maml, data) in runs.items():
            start = time.perf_counter()
            maml.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
            times[name].append((time.perf_counter() - start) / steps)
    return {name: float(np.median(t)) for name, t in times.items()}


def write_table(jsonl, readme):
    records = reporting.read_json_lines(jsonl)
    rows = ["| setting | activation | meta-batch | inner steps | rounds x steps | SO s / it. | FO s / it. | FO / SO | "
            "load (1 min) before | machine |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        m = r["machine"]
        rows.append(f"| {r['dataset']} {r['setting']} | {r.get('activation', 'relu')} | {r['meta_batch_size']} | "
                    f"{r['inner_steps']} | "
                    f"{r['rounds']} x {r['steps']} | {r['second_order_s']:.3f} | {r['first_order_s']:.3f} | "
                    f"{r['first_over_second']:.2f} | {r['load_average'][0]:.1f} | {m['cpu']}, {m['cores']} cores |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    ap.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"))
    ap.add_argument("--dataset", choices=("omniglot", "mini_imagenet"), default="omniglot")
    ap.add_argument("--setting", default="5way1shot", help="a second-order Table 1 row")
    ap.add_argument("--activations", nargs="+", default=["relu"], metavar="NAME",
                    help="hidden activations (Keras names), timed in the same alternating rounds")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    table = presets.OMNIGLOT if a.dataset == "omniglot" else presets.MINI_IMAGENET
    second = presets.classification(table, a.setting)
    if second.first_order:
        ap.error(f"--setting {a.setting} is first order; name its second-order row.")
    if a.rounds < 1 or a.steps < 1:
        ap.error("--rounds and --steps must be >= 1.")
    data = classification.tasks(second, "train", a.data_dir).dataset(second.meta_batch_size, seed=0)
    learners = {}
    for activation in a.activations:
        try:
            cell = dataclasses.replace(second, activation=activation)
            so, fo = (classification.build_maml(dataclasses.replace(cell, first_order=f)) for f in (False, True))
        except ValueError as error:
            ap.error(str(error))
        fo.model.set_weights(so.model.get_weights())
        learners[(activation, "second_order_s")], learners[(activation, "first_order_s")] = so, fo
    load = os.getloadavg()
    times = timed_rounds({name: (maml, data) for name, maml in learners.items()}, a.rounds, a.steps)
    for activation in a.activations:
        record = {"dataset": a.dataset, "setting": a.setting, "activation": activation,
                  "meta_batch_size": second.meta_batch_size, "inner_steps": second.inner_steps,
                  "rounds": a.rounds, "steps": a.steps,
                  **{order: times[(activation, order)] for order in ("second_order_s", "first_order_s")},
                  "load_average": load, "machine": reporting.machine(), "command": reporting.command()}
        record["first_over_second"] = record["first_order_s"] / record["second_order_s"]
        print(json.dumps(record))
        if a.out:
            reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
