"""Variants of our conv meta-step against the PyTorch loop reference, one process per row,
the rows alternating over rounds (A B R A B R ...) so that a change of machine load hits all
alike; ratios are taken within a round, then their median over rounds.

Rows: ``ours:NAME:ENV=VAL,...:bench_maml.py args`` and the references' torch loop (its
default threads and one thread). Appends one JSON line per (workload, order) to ``--out``.

    python benchmarks/alternate.py --workload omniglot --order 2 --rounds 2 \\
        --ours "fused::--batch-norm-op fused" --ours "composite::" --out benchmarks/alternate.jsonl
    python benchmarks/alternate.py --table benchmarks/alternate.jsonl   # README block
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from maml_tf import reporting  # noqa: E402

BENCH = os.environ.get("MAML_BENCH_DIR", os.path.join(HERE, "..", "..", "shared", "bench"))
TORCH = os.path.expanduser(os.environ.get("BENCH_VENVS", "~/.cache/maml-bench-venvs") + "/torch/bin/python")


def run(name, cmd, env, out_dir, timeout):
    out = os.path.join(out_dir, f"{name}.json")
    start = time.time()
    try:
        subprocess.run(cmd + ["--out", out], env={**os.environ, **env}, timeout=timeout, check=True,
                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(out_dir, f"{name}.log"), "w"))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"{name}: {type(error).__name__} after {time.time() - start:.0f} s", flush=True)
        return None
    with open(out) as f:
        record = json.load(f)
    seconds = record["timing"]["median_s"]
    print(f"{name}: {seconds:.3f} s per meta-iteration, peak {record.get('peak_rss_mb')} MB, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    return seconds


START, END = "<!-- GENERATED: alternate.py -->", "<!-- END GENERATED: alternate.py -->"


def write_table(jsonl, readme):
    """The recorded runs as a markdown table in ``readme``'s generated block."""
    from maml_tf.report import blocks
    rows = [f"Runs recorded in `benchmarks/{os.path.basename(jsonl)}` (`python benchmarks/alternate.py`), "
            "seconds per meta-iteration (median over rounds of each row's median), ours / best torch loop "
            "(ratio within each round, then the median):", "",
            "| workload | rounds | ours: seconds (ratio) | torch loop: seconds | ours, first row / each other row "
            "| load (1 min) before, after | machine |",
            "|---|---|---|---|---|---|---|"]
    for r in reporting.read_json_lines(jsonl):
        med = {n: statistics.median([s for s in v if s is not None]) if any(s is not None for s in v) else None
               for n, v in r["seconds_per_meta_iteration"].items()}
        ours = "; ".join(f"{n[5:]} {med[n]:.2f} ({r['ours_over_best_torch_loop'][n]['median']:.2f})"
                         for n in med if n.startswith("ours") and med[n] is not None)
        torch = "; ".join(f"{n[11:]} {'timed out' if med[n] is None else f'{med[n]:.2f}'}"
                          for n in med if n.startswith("torch"))
        ours_rows = [n for n in r["seconds_per_meta_iteration"] if n.startswith("ours")]
        first = r["seconds_per_meta_iteration"][ours_rows[0]]
        within = "; ".join(
            f"{ours_rows[0][5:]} / {n[5:]} "
            f"{statistics.median([f / o for f, o in zip(first, r['seconds_per_meta_iteration'][n]) if f and o]):.2f}"
            for n in ours_rows[1:])
        m = r["machine"]
        rows.append(f"| {r['workload']} {'SO' if r['order'] == 2 else 'FO'} | {r['rounds']} | {ours} | {torch} | {within} | "
                    f"{r['load_average_before'][0]:.1f}, {r['load_average_after'][0]:.1f} | {m['cpu']}, {m['cores']} cores |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    ap.add_argument("--readme", default=os.path.join(HERE, "README.md"))
    ap.add_argument("--workload", choices=("omniglot", "mini"))
    ap.add_argument("--order", type=int, choices=(1, 2), default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--ours", action="append",
                    help="NAME:ENV=VAL,...:bench_maml.py arguments (one row of ours)")
    ap.add_argument("--torch-threads", default="0,1", help="torch loop rows: 0 = its default threads")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--out", help="append the record to this .jsonl")
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    if not (a.workload and a.ours):
        ap.error("--workload and at least one --ours are required")
    out_dir = tempfile.mkdtemp(prefix="alternate_")
    common = ["--workload", a.workload, "--order", str(a.order), "--iters", str(a.iters), "--warmup", "1"]
    rows = []
    for spec in a.ours:
        name, env, args = spec.split(":", 2)
        env = dict(kv.split("=", 1) for kv in env.split(",") if kv)
        rows.append((f"ours-{name}", [sys.executable, os.path.join(HERE, "bench_maml.py"), "--style", "loop",
                                      *common, *args.split()], {"MAML_BENCH_DIR": BENCH, **env}))
    for threads in (int(t) for t in a.torch_threads.split(",")):
        rows.append((f"torch-loop-{threads or 'default'}thr",
                     [TORCH, os.path.join(BENCH, "maml_torch.py"), "--style", "loop", *common]
                     + (["--threads", str(threads)] if threads else []), {}))
    load_before = os.getloadavg()
    seconds = {name: [] for name, _, _ in rows}
    for r in range(a.rounds):
        for name, cmd, env in rows:
            seconds[name].append(run(f"{name}.r{r}", cmd, env, out_dir, a.timeout))
    torch_rows = [name for name in seconds if name.startswith("torch")]

    def best_reference(r):
        values = [seconds[n][r] for n in torch_rows if seconds[n][r] is not None]
        return min(values) if values else None
    ratios = {}
    for name in seconds:
        if name.startswith("ours"):
            per_round = [s / best_reference(r) for r, s in enumerate(seconds[name])
                         if s is not None and best_reference(r)]
            ratios[name] = {"per_round": per_round, "median": statistics.median(per_round) if per_round else None}
    record = {"workload": a.workload, "order": a.order, "rounds": a.rounds, "iters": a.iters,
              "seconds_per_meta_iteration": seconds, "ours_over_best_torch_loop": ratios,
              "rows": {name: {"command": " ".join(os.path.basename(c) if i < 2 else c for i, c in enumerate(cmd)),
                              "env": env} for name, cmd, env in rows},
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "machine": reporting.machine(), "command": reporting.command(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps({k: record[k] for k in ("workload", "order", "seconds_per_meta_iteration",
                                               "ours_over_best_torch_loop")}, indent=1))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
