"""One MAML-TRPO meta-iteration (Section 5.3) at the paper's locomotion batch (40 tasks x
20 trajectories x 200 steps, before and after the inner step), split into its parts by
timers around the learner's phases (``PolicyLearner.timings``): sampling pre- and
post-update, the baseline fits and advantages, the inner step, the sampling policy's
outputs, and TRPO's surrogate gradient, conjugate gradient (its KL Hessian-vector
products counted apart), the step size's product and the line search.

    python benchmarks/bench_rl_iteration.py --env cheetah-dir --env ant-vel --out benchmarks/rl_iteration.jsonl
    python benchmarks/bench_rl_iteration.py --env ant-vel --sampling-workers 1 2 --rounds 2   # alternated
    python benchmarks/bench_rl_iteration.py --env ant-vel --physics gymnasium rllab --rounds 2   # alternated
    python benchmarks/bench_rl_iteration.py --env cheetah-dir --hvp-product forward reverse-xla --rounds 2
    python benchmarks/bench_rl_iteration.py --table benchmarks/rl_iteration.jsonl   # README block

The first iteration (tracing the compiled functions) is reported apart; the parts are the
median over the ``--iterations`` after it. Each (env, workers, physics) learner is built
once and its iterations run in alternating rounds (A B A B ...), so a load change hits all alike.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from maml_tf import reporting  # noqa: E402
from maml_tf.report import blocks  # noqa: E402

START, END = "<!-- GENERATED: bench_rl_iteration.py -->", "<!-- END GENERATED: bench_rl_iteration.py -->"
# The learner's timed parts in the order of an iteration; an indented one is inside the one before.
PARTS = ("sample pre-update", "baseline and advantages", "inner step", "sample post-update",
         "sampling policy's outputs", "TRPO step", "  surrogate and gradient", "  conjugate gradient",
         "  step size", "  line search", "  (KL Hessian-vector products, in CG and step size)")


# How the exact KL Hessian-vector products are computed (maml_tf.rl.trpo.kl_hessian_vector_product)
# and how many: "forward", J v by forward mode without XLA and an 11th product for the step size
# (the products before 2026-12-06); "reverse", by reverse over reverse without XLA; "reverse-xla",
# with XLA (the learners' default); both with the step's curvature from conjugate gradient's
# residual (10 products).
PRODUCTS = ("forward", "reverse", "reverse-xla")
PRODUCT_NOTES = {"forward": "J v by forward mode, no XLA", "reverse": "J v by reverse over reverse, no XLA",
                 "reverse-xla": "J v by reverse over reverse, XLA"}


def learner(env, preset_name, workers, physics=None, product="reverse-xla"):
    """The MAML-TRPO learner of ``env``'s locomotion preset, with its timings on; ``physics``
    (the ant's, maml_tf.rl.envs.locomotion.PHYSICS) replaces the preset's, None keeps it;
    ``product``: one of ``PRODUCTS``."""
    import dataclasses

    import tensorflow as tf

    from maml_tf import presets
    from maml_tf.experiments import rl
    from maml_tf.rl.timings import Timings

    preset = presets.get(presets.LOCOMOTION[env], preset_name)
    if workers != 1:
        preset = dataclasses.replace(preset, sampling_workers=workers)
    if physics is not None:
        options = {**dict(preset.env_options), "physics": physics}
        preset = dataclasses.replace(preset, env_options=tuple(options.items()))
    algo = rl.build(preset, "maml")
    if product != "reverse-xla":
        algo._jvp = product
        algo._hvp = tf.function(algo._kl_hessian_vector_product, jit_compile=False)
    if product == "forward":
        algo._curvature = "product"
    algo.timings = Timings()
    return algo, preset


def iteration(algo):
    """One timed meta-iteration: ``{"seconds": total, "parts": {name: seconds}, "calls": {...}}``."""
    algo.timings.clear()
    stats = algo.train_iteration()
    parts = dict(algo.timings.seconds)
    parts["  (KL Hessian-vector products, in CG and step size)"] = parts.pop("KL Hessian-vector products", 0.0)
    for name in PARTS:
        if name.startswith("  ") and name.strip() in parts:
            parts[name] = parts.pop(name.strip())
    return {"seconds": stats["seconds"], "parts": parts, "calls": dict(algo.timings.calls),
            "post_update_return": stats["post_update_return"]}


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def summary(runs):
    """Median seconds of the total and of every part over ``runs`` (iterations)."""
    names = [n for n in PARTS if any(n in r["parts"] for r in runs)]
    return {"seconds": float(np.median([r["seconds"] for r in runs])),
            "parts": {n: float(np.median([r["parts"].get(n, 0.0) for r in runs])) for n in names}}


def calls(record):
    """KL Hessian-vector products per iteration of a recorded configuration."""
    return record["runs"][0].get("calls", {}).get("KL Hessian-vector products")


def per_product(record):
    """Seconds per KL Hessian-vector product of a recorded configuration (a table cell)."""
    seconds = record["median"]["parts"].get(PARTS[-1])
    return f"{seconds / calls(record):.2f}" if seconds is not None and calls(record) else ""


def write_table(jsonl, readme):
    """One table per environment: a column per recorded configuration, seconds and share."""
    records = reporting.read_json_lines(jsonl)
    lines, notes = [], []
    for env in dict.fromkeys(r["env"] for r in records):
        columns = [(i, r) for i, r in enumerate(records, 1) if r["env"] == env]
        lines += [f"**{env}** ({columns[0][1]['batch']}), seconds per meta-iteration (share of the total):", "",
                  "| part | " + " | ".join(f"run {i}: {r['label']}" for i, r in columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for name in PARTS:
            if not any(name in r["median"]["parts"] for _, r in columns):
                continue
            cells = []
            for _, r in columns:
                s = r["median"]["parts"].get(name)
                cells.append("" if s is None else f"{s:.2f} ({100 * s / r['median']['seconds']:.0f}%)")
            label = name.strip() if not name.startswith("  ") else "&nbsp;&nbsp;" + name.strip()
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("| &nbsp;&nbsp;(one product: their median seconds / calls) | "
                     + " | ".join(per_product(r) for _, r in columns) + " |")
        lines.append("| **whole iteration** | " + " | ".join(f"**{r['median']['seconds']:.2f}**" for _, r in columns)
                     + " |")
        lines.append("| first iteration (tracing, compiling) | "
                     + " | ".join(f"{r['first_seconds']:.1f}" for _, r in columns) + " |")
        lines.append("")
    for i, r in enumerate(records, 1):
        m = r["machine"]
        notes.append(f"Run {i} ({r['env']}, {r['label']}): code {r['commit']}, median of {r['iterations']} "
                     f"iterations after the first, {r['sampling_workers']} sampling worker(s), KL Hessian-vector "
                     f"products {PRODUCT_NOTES[r.get('hvp_product', 'forward')]}, {calls(r)} per iteration; "
                     f"{m['cpu']}, "
                     f"{m['cores']} cores, load (1 min) {r['load_average'][0]:.1f} before, "
                     f"{r['load_after'][0]:.1f} after; `{r['command']}`.")
    blocks.publish_table(readme, START, END, lines + notes)


def positive(text):
    """An argparse type: a positive integer."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", action="append", choices=("cheetah-vel", "cheetah-dir", "ant-vel", "ant-dir"),
                    help="environment (repeatable; default cheetah-dir and ant-vel)")
    ap.add_argument("--preset", default="paper", help="locomotion preset (paper: 40 tasks x 20 trajectories)")
    ap.add_argument("--iterations", type=positive, default=2, help="timed iterations per configuration and round")
    ap.add_argument("--rounds", type=positive, default=1, help="alternating rounds over the configurations")
    ap.add_argument("--sampling-workers", type=positive, nargs="+", default=[1],
                    help="sampling worker processes to compare (each configuration a learner)")
    ap.add_argument("--physics", nargs="+", default=[None], choices=("gymnasium", "rllab"),
                    help="the ant's physics to compare (default the preset's; each a learner)")
    ap.add_argument("--hvp-product", nargs="+", default=["reverse-xla"], choices=PRODUCTS,
                    help="how the KL Hessian-vector products are computed, to compare (each a learner)")
    ap.add_argument("--label", default=None,
                    help="what the run measures (default: commit, workers, physics, product)")
    blocks.add_table_arguments(ap, __file__)
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    envs = a.env or ["cheetah-dir", "ant-vel"]
    commit = git_commit()
    load = os.getloadavg()
    configs, first, runs = {}, {}, {}
    for env in envs:
        for workers in a.sampling_workers:
            for physics in a.physics:
                for product in a.hvp_product:
                    key = env, workers, physics, product
                    algo, preset = learner(env, a.preset, workers, physics, product)
                    start = time.perf_counter()
                    algo.train_iteration()  # traces the compiled functions
                    first[key] = time.perf_counter() - start
                    configs[key] = (algo, preset)
                    runs[key] = []
                    print(f"{key}: first iteration {first[key]:.1f} s", flush=True)
    for _ in range(a.rounds):
        for key, (algo, _) in configs.items():
            for _ in range(a.iterations):
                runs[key].append(iteration(algo))
                print(f"{key}: {runs[key][-1]['seconds']:.2f} s", flush=True)
    load_after = os.getloadavg()
    machine = reporting.machine()
    compared = len(a.hvp_product) > 1
    for (env, workers, physics, product), (algo, preset) in configs.items():
        key = env, workers, physics, product
        record = {"benchmark": "rl_iteration", "env": env, "preset": preset.name,
                  "batch": f"{preset.meta_batch_size} tasks x {preset.episodes_per_task} trajectories x "
                           f"{algo.horizon} steps, hvp {preset.hvp}, sampling {preset.sampling}",
                  "label": a.label or f"{commit}, {workers} worker(s)" + (f", {physics} physics" if physics else "")
                  + (f", product {product}" if compared else ""),
                  "commit": commit, "sampling_workers": workers, "env_options": dict(preset.env_options),
                  "hvp_product": product,
                  "iterations": len(runs[key]), "first_seconds": first[key], "median": summary(runs[key]),
                  "runs": runs[key], "machine": machine, "load_average": load, "load_after": load_after,
                  "command": reporting.command()}
        print(json.dumps({k: record[k] for k in ("env", "label", "first_seconds", "median")}))
        if a.out:
            reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
