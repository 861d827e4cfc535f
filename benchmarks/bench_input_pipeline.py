"""Is the episode pipeline ever the bottleneck? Meta-training step time with real
episodes (FewShotTasks.dataset over the decoded images) against the same step fed one
constant batch of tensors, plus the pipeline's own throughput.

    python benchmarks/bench_input_pipeline.py --dataset omniglot --setting 5way1shot
    python benchmarks/bench_input_pipeline.py --dataset mini_imagenet --synthetic
    python benchmarks/bench_input_pipeline.py --table RESULTS.jsonl --readme benchmarks/README.md

Prints one JSON line per measurement and appends it to --out (JSON lines); --table
writes every recorded run as a markdown table into the README's generated block.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

from maml_tf import presets, reporting  # noqa: E402
from maml_tf.report import blocks  # noqa: E402
from maml_tf.experiments import classification  # noqa: E402
from bench_first_order import timed_rounds  # noqa: E402  (alternating rounds, shared)


def pipeline_throughput(data, batches):
    iterator = iter(data)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - start) / batches


START, END = "<!-- GENERATED: bench_input_pipeline.py -->", "<!-- END GENERATED: bench_input_pipeline.py -->"


def write_table(jsonl, readme):
    records = reporting.read_json_lines(jsonl)
    cpu = records[0]["machine"]["cpu"] if records else "?"
    rows = [f"Runs recorded in `{jsonl}` ({cpu}, {records[0]['machine']['cores'] if records else '?'} cores), "
            "one line per run, in order:", "",
            "| data | setting | meta-batch | pipeline s / meta-batch | step s, constant batch | "
            "step s, real episodes | real / constant | load (1 min) before, after |",
            "|---|---|---|---|---|---|---|---|"]
    for r in records:
        load = (f"{r['load_before']:.1f}, {r['load_after']:.1f}" if "load_before" in r else "not recorded")
        rows.append(f"| {r['dataset']} | {r['setting']} | {r['meta_batch_size']} | "
                    f"{r['pipeline_s_per_batch']:.4f} | {r['step_s_constant']:.3f} | "
                    f"{r['step_s_real']:.3f} | {r['real_over_constant']:.2f} | {load} |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    ap.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"))
    ap.add_argument("--dataset", choices=("omniglot", "mini_imagenet"), default="omniglot")
    ap.add_argument("--setting", default="5way1shot")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per stream")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (constant, real) they are split in")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--synthetic", action="store_true",
                    help="mini_imagenet: generated images (runs/bench_synthetic), real ones are not here")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    table = presets.OMNIGLOT if a.dataset == "omniglot" else presets.MINI_IMAGENET
    preset = presets.classification(table, a.setting)
    data_dir = a.data_dir
    if a.synthetic:
        from maml_tf.datasets import mini_imagenet, synthetic
        root = os.path.join("runs", "bench_synthetic")
        if not os.path.isdir(os.path.join(root, "source", "images")):
            synthetic.write_mini_imagenet_like(os.path.join(root, "source"))
        data_dir = mini_imagenet.prepare(os.path.join(root, "source"), os.path.join(root, "tfds"))
    start = time.perf_counter()
    distribution = classification.tasks(preset, "train", data_dir)
    load_seconds = time.perf_counter() - start
    real = distribution.dataset(preset.meta_batch_size, seed=0)
    constant = tf.data.Dataset.from_tensors(distribution.sample(preset.meta_batch_size, [0, 0])).repeat()
    maml = classification.build_maml(preset)
    load_before = os.getloadavg()[0]
    record = {
        "dataset": a.dataset + (" (synthetic)" if a.synthetic else ""), "setting": a.setting,
        "meta_batch_size": preset.meta_batch_size, "load_seconds": round(load_seconds, 2),
        "pipeline_s_per_batch": pipeline_throughput(real, 50),
        **timed_rounds({"step_s_constant": (maml, constant), "step_s_real": (maml, real)},
                       a.rounds, max(1, a.steps // a.rounds)),
        "machine": reporting.machine(), "load_before": load_before, "load_after": os.getloadavg()[0],
        "command": reporting.command(),
    }
    record["real_over_constant"] = record["step_s_real"] / record["step_s_constant"]
    print(json.dumps(record))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
