"""Summarise one benchmark run: ours beside the best reference, as ratios.

usage: python benchmarks/table.py RESULTS_DIR [--readme benchmarks/README.md] [--precision-log FILE]
With --readme, replaces the text between the GENERATED markers of that file; with
--precision-log, appends the mixed_bfloat16 / float32 ratios to FILE (benchmarks/precision.sh).
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np

START, END = "<!-- GENERATED: benchmarks/table.py -->", "<!-- END GENERATED -->"
WORKLOADS = [("sine", "SO"), ("omniglot", "SO"), ("omniglot", "FO"), ("mini", "SO"), ("mini", "FO")]


def load(d):
    recs = []
    for f in glob.glob(os.path.join(d, "*.json")):
        with open(f) as fh:
            recs.append(json.load(fh))
    return recs


BF16_TAGS = ("-bf16", "-onednnbf16")  # mixed_bfloat16; float32 with TF_SET_ONEDNN_FPMATH_MODE=BF16
# Batch-norm variants other than the library default (bench_maml.py --batch-norm-op, --conv-bias):
# kept out of the headline, each beside the default run of its variant. The default since
# 2026-12-05: bias-free convs, fused BN with the closed-form second derivative.
BATCH_NORM_TAGS = {"-convbias": "conv biases with composite batch norm (the default until 2026-12-05)",
                   "-bncomposite": "composite batch norm", "-bnfused": "fused batch norm, TensorFlow's second derivative",
                   "-bnclosedform": "fused batch norm, closed-form second derivative"}


def float32_variant(variant):
    """``variant`` without its bfloat16 tags (the float32 run it is compared with)."""
    for tag in BF16_TAGS:
        variant = variant.replace(tag, "")
    return variant


def default_variant(variant):
    """``variant`` without its opt-in batch-norm tag (the library-default run it is compared with)."""
    for tag in BATCH_NORM_TAGS:
        variant = variant.replace(tag, "")
    return variant


def best(recs, framework, workload, order):
    """The fastest float32 record of (framework, workload, order) with the library's default BN."""
    rows = [r for r in recs if r["framework"] == framework and r["workload"] == workload
            and r["variant"].endswith(order) and float32_variant(r["variant"]) == r["variant"]
            and default_variant(r["variant"]) == r["variant"]]
    return min(rows, key=lambda r: r["timing"]["median_s"]) if rows else None


def tagged_beside_base(recs, tagged, base):
    """For each of our variants with ``tagged(variant)`` true, per workload: ``(workload, order,
    variant, runs, median, base median, best-reference median or None)``, the base being the runs
    of ``base(variant)`` (medians of the rounds' medians); variants without a base run are left out."""
    out = []
    for workload, order in WORKLOADS:
        ours = [r for r in recs if r["framework"] == "maml-tf" and r["workload"] == workload
                and r["variant"].endswith(order)]
        for variant in sorted({r["variant"] for r in ours if tagged(r["variant"])}):
            runs = [r for r in ours if r["variant"] == variant]
            plain = [r["timing"]["median_s"] for r in ours if r["variant"] == base(variant)]
            if not plain:
                continue
            refs = [r for r in (best(recs, fw, workload, order) for fw in ("jax", "torch")) if r]
            out.append((workload, order, variant, runs, float(np.median([r["timing"]["median_s"] for r in runs])),
                        float(np.median(plain)), min(r["timing"]["median_s"] for r in refs) if refs else None))
    return out


def precision_ratios(recs):
    """Per workload with a bfloat16 row (mixed_bfloat16 or oneDNN's bf16 math mode): its median
    beside float32's of the same variant (the median of the rounds' medians)."""
    rows = tagged_beside_base(recs, lambda v: float32_variant(v) != v and default_variant(v) == v, float32_variant)
    return [{"workload": workload, "order": order, "variant": variant, "float32_variant": float32_variant(variant),
             "rounds": len(runs), "bf16_median_s": bf16, "float32_median_s": f32, "bf16_over_float32": bf16 / f32,
             "bf16_over_best_reference": bf16 / ref if ref else None,
             "bfloat16_native": runs[0].get("bfloat16_native")}
            for workload, order, variant, runs, bf16, f32, ref in rows]


def batch_norm_lines(recs):
    """One line per non-default batch-norm run: its median beside the default run of its variant
    and the best reference."""
    out = []
    for workload, order, variant, _, median, plain, ref in tagged_beside_base(
            recs, lambda v: default_variant(v) != v, default_variant):
        name = ", ".join(BATCH_NORM_TAGS[t] for t in BATCH_NORM_TAGS if t in variant)
        out.append(f"{name[0].upper()}{name[1:]} (not the default), {workload} {order} {variant}: "
                   f"{median:.4g} s, {median / plain:.2f}x the default's {default_variant(variant)}"
                   + (f", {median / ref:.2f}x the best reference" if ref else "") + ".")
    return out


def summary(d):
    recs = load(d)
    env = open(os.path.join(d, "env.txt")).read().splitlines()[:2] if os.path.exists(os.path.join(d, "env.txt")) else []
    lines = [f"Run `{os.path.relpath(d)}` ({'; '.join(l.strip() for l in env)}). Median seconds per "
             "meta-iteration after warm-up (one compiled call per meta-iteration), fastest variant of "
             "each framework; peak RSS of that process.", "",
             "| workload | JAX | PyTorch | maml-tf (variant) | ours / best reference | peak MB (JAX / torch / ours) |",
             "|---|---|---|---|---|---|"]
    for workload, order in WORKLOADS:
        j, t, o = (best(recs, fw, workload, order) for fw in ("jax", "torch", "maml-tf"))
        refs = [r for r in (j, t) if r]
        cell = lambda r: f"{r['timing']['median_s']:.4g}" if r else "—"  # noqa: E731
        mem = lambda r: f"{r['peak_rss_mb']:.0f}" if r else "—"  # noqa: E731
        ratio = (f"{o['timing']['median_s'] / min(r['timing']['median_s'] for r in refs):.2f}x"
                 if o and refs else "—")
        ours = f"{cell(o)} ({o['variant']})" if o else "—"
        lines.append(f"| {workload} {order} | {cell(j)} | {cell(t)} | {ours} | {ratio} | "
                     f"{mem(j)} / {mem(t)} / {mem(o)} |")
    fit = [r for r in recs if r["framework"] == "maml-tf" and "fit" in r]
    for r in fit:
        lines.append("")
        lines.append(f"Inside `MAML.fit` with `steps_per_execution={r['fit']['steps_per_execution']}` "
                     f"(tasks sampled in-graph), sine {r['variant']}: "
                     f"{r['fit']['seconds_per_iter']:.4g} s per meta-iteration.")
    for row in precision_ratios(recs):
        lines.append(f"bfloat16 ({'native' if row['bfloat16_native'] else 'emulated'}), "
                     f"{row['workload']} {row['order']} {row['variant']}: {row['bf16_median_s']:.4g} s, "
                     f"{row['bf16_over_float32']:.2f}x float32's {row['float32_variant']}"
                     + (f", {row['bf16_over_best_reference']:.2f}x the best reference"
                        if row["bf16_over_best_reference"] else "") + ".")
    lines.extend(batch_norm_lines(recs))
    so = {w: best(recs, "maml-tf", w, "SO") for w in ("omniglot", "mini")}
    fo = {w: best(recs, "maml-tf", w, "FO") for w in ("omniglot", "mini")}
    for w in so:
        if so[w] and fo[w]:
            lines.append(f"First-order / second-order time, {w}: "
                         f"{fo[w]['timing']['median_s'] / so[w]['timing']['median_s']:.2f}.")
    return "\n".join(lines) + "\n"


def log_precision(d, path):
    """Append the run's mixed_bfloat16 ratios (:func:`precision_ratios`) to ``path``, one JSON
    line per workload, with the run's env.txt (CPU, load at start and end)."""
    env = open(os.path.join(d, "env.txt")).read().splitlines() if os.path.exists(os.path.join(d, "env.txt")) else []
    with open(path, "a") as f:
        for row in precision_ratios(load(d)):
            f.write(json.dumps({"run": os.path.basename(os.path.normpath(d)), "env": env, **row}) + "\n")


def main():
    d = sys.argv[1]
    text = summary(d)
    print(text)
    if "--precision-log" in sys.argv:
        log_precision(d, sys.argv[sys.argv.index("--precision-log") + 1])
    if "--readme" in sys.argv:
        path = sys.argv[sys.argv.index("--readme") + 1]
        doc = open(path).read()
        full = open(os.path.join(d, "table.txt")).read() if os.path.exists(os.path.join(d, "table.txt")) else ""
        block = f"{START}\n{text}\n<details><summary>Every run of this benchmark</summary>\n\n```\n{full}```\n</details>\n{END}"
        head, _, rest = doc.partition(START)
        _, _, tail = rest.partition(END)
        with open(path, "w") as f:
            f.write(head + block + tail)


if __name__ == "__main__":
    main()
