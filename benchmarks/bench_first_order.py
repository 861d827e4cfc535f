"""First- versus second-order MAML (Section 5.2): seconds per meta-iteration of both on
the same Table 1 setting and real episodes, timed in alternating rounds in one process
so that a change of machine load hits both alike.

    python benchmarks/bench_first_order.py --setting 5way1shot --out benchmarks/first_order.jsonl
    python benchmarks/bench_first_order.py --table benchmarks/first_order.jsonl

Prints one JSON line per setting (appended to --out); --table writes the recorded runs
into the README's generated block.
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


def timed_rounds(learners, data, rounds, steps):
    """Median seconds per step of each learner, alternating ``rounds`` rounds of ``steps``."""
    for maml in learners.values():
        maml.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # trace and warm up
    times = {name: [] for name in learners}
    for _ in range(rounds):
        for name, maml in learners.items():
            start = time.perf_counter()
            maml.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
            times[name].append((time.perf_counter() - start) / steps)
    return {name: float(np.median(t)) for name, t in times.items()}


def write_table(jsonl, readme):
    records = reporting.read_json_lines(jsonl)
    rows = ["| setting | meta-batch | inner steps | rounds x steps | SO s / it. | FO s / it. | FO / SO | "
            "load (1 min) before | machine |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        m = r["machine"]
        rows.append(f"| {r['dataset']} {r['setting']} | {r['meta_batch_size']} | {r['inner_steps']} | "
                    f"{r['rounds']} x {r['steps']} | {r['second_order_s']:.3f} | {r['first_order_s']:.3f} | "
                    f"{r['first_over_second']:.2f} | {r['load_average'][0]:.1f} | {m['cpu']}, {m['cores']} cores |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    ap.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"))
    ap.add_argument("--dataset", choices=("omniglot", "mini_imagenet"), default="omniglot")
    ap.add_argument("--setting", default="5way1shot", help="a second-order Table 1 row")
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
    data = classification.tasks(second, "train", a.data_dir).dataset(second.meta_batch_size, seed=0)
    learners = {name: classification.build_maml(dataclasses.replace(second, first_order=fo))
                for name, fo in (("second_order_s", False), ("first_order_s", True))}
    learners["first_order_s"].model.set_weights(learners["second_order_s"].model.get_weights())
    load = os.getloadavg()
    record = {"dataset": a.dataset, "setting": a.setting, "meta_batch_size": second.meta_batch_size,
              "inner_steps": second.inner_steps, "rounds": a.rounds, "steps": a.steps,
              **timed_rounds(learners, data, a.rounds, a.steps), "load_average": load,
              "machine": reporting.machine(), "command": reporting.command()}
    record["first_over_second"] = record["first_order_s"] / record["second_order_s"]
    print(json.dumps(record))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
