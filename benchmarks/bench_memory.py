"""Where maml-tf's peak memory goes on the benchmark's conv workloads (``bench_maml.py``).

One process per run: resident memory (``/proc/self/status``: all, anonymous, file-backed
shared libraries) after importing TensorFlow, after tracing the meta-step, after its first
call and at the end (peak), with ``task_parallelism="loop"`` (what the conv presets resolve
to) and ``--loop-parallel-tasks`` tasks in flight. ``--torch-python`` also records the
resident size of importing PyTorch alone in that interpreter, for comparison.

    python benchmarks/bench_memory.py --workload omniglot --loop-parallel-tasks 2 --out benchmarks/memory.jsonl
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_STATUS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")
_READ_STATUS = ("import json; print(json.dumps({l.split(':')[0]: int(l.split()[1]) // 1024 "
                f"for l in open('/proc/self/status') if l.split(':')[0] in {_STATUS!r}}}))")


def status_mb():
    """Resident MB of this process: ``VmRSS``, ``RssAnon``, ``RssFile`` and the peak ``VmHWM``."""
    return {line.split(":")[0]: int(line.split()[1]) // 1024 for line in open("/proc/self/status")
            if line.split(":")[0] in _STATUS}


START, END = "<!-- GENERATED: bench_memory.py -->", "<!-- END GENERATED: bench_memory.py -->"


def write_table(jsonl, readme):
    """Every recorded run as a markdown table in ``readme``'s generated block."""
    from maml_tf import reporting
    from maml_tf.report import blocks
    records = reporting.read_json_lines(jsonl)
    m = records[0]["machine"]
    rows = [f"Runs recorded in `benchmarks/{os.path.basename(jsonl)}` ({m['cpu']}, {m['cores']} cores), "
            "resident MB (all = anonymous + file-backed libraries):", "",
            "| workload | batch norm | tasks in flight | after `import tensorflow` | after tracing | after 1st step "
            "| peak | s / step | `import torch` alone | load (1 min) after |", "|---|---|---|---|---|---|---|---|---|---|"]

    def mb(s):
        return f"{s['VmRSS']} = {s['RssAnon']} + {s['RssFile']}"
    for r in records:
        torch = mb(r["after_import_torch"]) if "after_import_torch" in r else "-"
        bn = r.get("batch_norm_op", "composite")  # runs before the fused ops: composite
        bn += "" if r.get("conv_bias", True) else ", no conv bias"  # runs before the field: biases
        rows.append(f"| {r['workload']} | {bn} | {r['loop_parallel_tasks']} | {mb(r['after_import_tensorflow'])} | "
                    f"{mb(r['after_trace'])} | {mb(r['after_first_step'])} | {r['end']['VmHWM']} | "
                    f"{r['seconds_per_step']:.2f} | {torch} | {r['load_after']:.1f} |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    ap.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"))
    ap.add_argument("--workload", choices=("omniglot", "mini"))
    ap.add_argument("--loop-parallel-tasks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="meta-steps after the first")
    ap.add_argument("--batch-norm-op", choices=("auto", "composite", "fused", "fused-closedform"), default="auto",
                    help="functional.BATCH_NORM_OP (auto, the library default: fused with the closed form "
                         "for the bias-free twin, composite with --conv-bias)")
    ap.add_argument("--conv-bias", action="store_true", help="the twin with conv biases (the layout until 2026-12-05)")
    ap.add_argument("--torch-python", default=None, help="an interpreter with torch: record its import size")
    ap.add_argument("--out", default=None, help="append the record here (JSON lines)")
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    if not a.workload:
        ap.error("--workload is required (omniglot or mini)")
    record = {"workload": a.workload, "loop_parallel_tasks": a.loop_parallel_tasks, "steps": a.steps,
              "conv_bias": a.conv_bias}
    import tensorflow as tf
    record["after_import_tensorflow"] = status_mb()
    import bench_maml as B  # the references' workloads (common.py) and our Keras twins
    import keras
    import numpy as np

    from maml_tf import MAML, reporting
    from maml_tf.core import meta_gradient
    meta_gradient.LOOP_PARALLEL_TASKS = a.loop_parallel_tasks
    cfg = B.C.WORKLOADS[a.workload]
    model = B.build_model(cfg, a.conv_bias)
    record["batch_norm_op"] = B.set_batch_norm_op(a.batch_norm_op, model)
    maml = MAML(model, inner_lr=cfg["alpha"], inner_steps=cfg["inner_steps"], task_parallelism="loop")
    maml.compile(optimizer=keras.optimizers.Adam(cfg["lr"]),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    maml.optimizer.build(maml.trainable_variables)
    batch = B.to_episodes(B.C.sample_batch(cfg, np.random.default_rng(B.C.SEED_CHECK)), cfg["kind"])

    @tf.function
    def step(episodes):
        loss, grads = maml.meta_gradients(episodes)
        maml.optimizer.apply(grads, maml.trainable_variables)
        return loss

    step.get_concrete_function(batch)
    record["after_trace"] = status_mb()
    step(batch).numpy()
    record["after_first_step"] = status_mb()
    start = time.perf_counter()
    for _ in range(a.steps):
        step(batch).numpy()
    record["seconds_per_step"] = (time.perf_counter() - start) / a.steps
    record["end"] = status_mb()
    if a.torch_python:
        out = subprocess.run([a.torch_python, "-c", "import torch; " + _READ_STATUS],
                             capture_output=True, text=True, check=True).stdout
        record["after_import_torch"] = json.loads(out.strip().splitlines()[-1])
    record.update(load_after=os.getloadavg()[0], machine=reporting.machine(), command=reporting.command())
    print(json.dumps(record))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
