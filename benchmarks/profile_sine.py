"""Where the time of one sinusoid meta-step goes (the workload where we trail JAX).

Times, in one process on the references' sine workload, in alternating rounds: a compiled
call that does nothing with the meta-batch (TensorFlow's fixed cost per call), the same
reading and writing the step's variables, the meta-gradient alone and the whole step
(meta-gradient + Adam), each with XLA, called through ``tf.function`` and through its concrete
function (traced ahead, as JAX's row calls its ahead-of-time compiled step); then the step
inside ``MAML.fit`` with ``steps_per_execution``. ``--hlo DIR`` also counts the operations of
our optimized HLO and JAX's (``sine_hlo_jax.py`` in the JAX venv) and times both modules
compiled by JAX's XLA.

    python benchmarks/profile_sine.py --hlo /tmp/sine_hlo --readme benchmarks/README.md
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_maml as B  # noqa: E402  (imports the references' common.py as C)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from maml_tf import MAML  # noqa: E402

JAX_PYTHON = os.path.expanduser(os.environ.get("BENCH_VENVS", "~/.cache/maml-bench-venvs") + "/jax/bin/python")


def alternating_ms(fns, batches, rounds, calls):
    """Per-call milliseconds (min, median) of each ``fn(batch)``, the fns alternating over rounds."""
    for fn in fns.values():
        for b in batches[:20]:
            fn(b)
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for i in range(calls):
                b = batches[i % len(batches)]
                start = time.perf_counter()
                tf.nest.flatten(fn(b))[0].numpy()  # one output waits for the whole XLA call
                times[name].append(time.perf_counter() - start)
    return {name: (1000 * min(t), 1000 * float(np.median(t))) for name, t in times.items()}


# Rows of the process-level comparison (--alternate): the references' JAX step and our benchmark step.
VERSUS_JAX = {
    "jax": ("jax", [JAX_PYTHON, "maml_jax.py", "--workload", "sine", "--style", "vmap"], {}),
    "ours": ("python", ["bench_maml.py", "--workload", "sine", "--style", "vectorized"], {}),
    "ours-fncall": ("python", ["bench_maml.py", "--workload", "sine", "--style", "vectorized", "--call", "function"], {}),
    "ours-ynn-dot": ("python", ["bench_maml.py", "--workload", "sine", "--style", "vectorized"],
                     {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=dot,reduce,individual_dot"}),
}


def command_line(kind, cmd, env, iters):
    """How to run one --alternate row by hand (from the checkout's root)."""
    prefix = "".join(f"{k}={v} " for k, v in env.items())
    args = " ".join(cmd[1:] if kind == "jax" else cmd) + f" --iters {iters}"
    return (f"(cd ../shared/bench && {prefix}python {args})" if kind == "jax"
            else f"{prefix}python benchmarks/{args}")


def alternate_versus_jax(rounds, iters, jsonl):
    """JAX's sine step and ours, one process per row, rows alternating (A B C D A B C D ...);
    appends one JSON line per run to ``jsonl``."""
    import tempfile
    from maml_tf import reporting
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, (kind, cmd, env) in VERSUS_JAX.items():
                out = os.path.join(tmp, f"{name}_{r}.json")
                cwd = B.BENCH_DIR if kind == "jax" else here
                argv = cmd if kind == "jax" else [sys.executable] + cmd
                load = os.getloadavg()
                subprocess.run(argv + ["--iters", str(iters), "--out", out], cwd=cwd, check=True,
                               env={**os.environ, **env, "MAML_BENCH_DIR": B.BENCH_DIR, "TF_CPP_MIN_LOG_LEVEL": "3"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                with open(out) as f:
                    rec = json.load(f)
                line = dict(round=r + 1, row=name, framework=rec["framework"], variant=rec["variant"],
                            ms_per_call_min=1e3 * rec["timing"]["min_s"], ms_per_call_median=1e3 * rec["timing"]["median_s"],
                            n=rec["timing"]["n"], other_cores=rec["cpu"].get("other_cores"), final_mse=rec.get("final_mse"),
                            env=env, command=command_line(kind, cmd, env, iters),
                            load_average_before=load, machine=reporting.machine()["cpu"],
                            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                reporting.append_json_line(jsonl, line)
                print(f"round {r + 1} {name}: min {line['ms_per_call_min']:.3f} ms, median {line['ms_per_call_median']:.3f} ms, "
                      f"other cores {line['other_cores']:.2f}", flush=True)


def in_graph_ms(variables, rounds, steps=50, calls=40):
    """Per step, ms (min, median): 50 XLA calls inside one graph (as ``MAML.fit`` with
    ``steps_per_execution=50`` runs its steps), with no variable, with the step's variables read
    and written inside the XLA call, and with them read before and assigned after it."""
    x = tf.random.normal([steps, 25, 10, 1])

    @tf.function(jit_compile=True)
    def bare(e):
        return tf.reduce_sum(e)

    @tf.function(jit_compile=True)
    def inside(e):
        total = tf.reduce_sum(e)
        for v in variables:
            v.assign(v + tf.cast(total * 0, v.dtype))
        return total

    @tf.function(jit_compile=True)
    def tensors(e, values):
        total = tf.reduce_sum(e)
        return total, [v + tf.cast(total * 0, v.dtype) for v in values]

    def outside(e):
        total, new = tensors(e, [v.value for v in variables])
        for v, n in zip(variables, new):
            v.assign(n)
        return total

    def loop(step):
        @tf.function
        def run(x):
            total = 0.0
            for i in tf.range(steps):
                total += step(x[i])
            return total
        return run

    loops = {"no variable": loop(bare), f"the {len(variables)} variables read and written inside the XLA call": loop(inside),
             "read before the XLA call, assigned after it": loop(outside)}
    for run in loops.values():
        run(x).numpy()
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, run in loops.items():
            for _ in range(calls):
                start = time.perf_counter()
                run(x).numpy()
                times[name].append((time.perf_counter() - start) / steps)
    return {name: (1000 * min(t), 1000 * float(np.median(t))) for name, t in times.items()}


def hlo_counts(text):
    """Operations of an optimized HLO module's entry computation: fusions (XLA loops and
    YNNPACK library calls), dots by result shape, copies, transposes; while loops, custom
    calls and RNG anywhere in the module."""
    entry = text[text.index("\nENTRY"):].split("\n")[2:]
    ops, dots = collections.Counter(), collections.Counter()
    for line in entry:
        m = re.search(r"= (\S+?)(?:\{[^}]*\})? ([a-z][\w-]*)\(", line)
        if not m or m.group(2) in ("parameter", "constant", "bitcast", "get-tuple-element", "tuple"):
            continue
        shape, op = m.groups()
        if op == "fusion":
            op = "ynn fusion" if "__ynn_fusion" in line else "loop fusion"
        ops[op] += 1
        if op == "dot":
            dots[shape] += 1
    return dict(instructions=sum(ops.values()), loop_fusions=ops["loop fusion"], ynn_fusions=ops["ynn fusion"],
                dots=ops["dot"], dot_shapes=", ".join(f"{n}x {s}" for s, n in sorted(dots.items())),
                copies=ops["copy"], transposes=ops["transpose"], whiles=text.count(" while("),
                custom_calls=text.count(" custom-call("), rng=len(re.findall(r" rng[-(]", text)))


def hlo_lines(step, batch, directory):
    """Our step's optimized HLO against JAX's (counts table), and both modules timed by JAX's XLA."""
    os.makedirs(directory, exist_ok=True)
    ours = step.experimental_get_compiler_ir(batch)(stage="optimized_hlo")
    with open(os.path.join(directory, "ours_optimized_hlo.txt"), "w") as f:
        f.write(ours)
    with open(os.path.join(directory, "ours_step.hlo.pb"), "wb") as f:
        f.write(step.experimental_get_compiler_ir(batch)(stage="hlo_serialized"))
    modules = {"ours, TensorFlow's XLA": ours}
    timing = None
    if os.path.exists(JAX_PYTHON):
        out = subprocess.run([JAX_PYTHON, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sine_hlo_jax.py"),
                              directory], check=True, capture_output=True, text=True, env={**os.environ, "MAML_BENCH_DIR": B.BENCH_DIR})
        timing = json.loads(out.stdout.strip().splitlines()[-1])
        for name, file in (("ours, JAX's XLA", "ours_optimized_by_jax_xla.txt"), ("JAX", "jax_optimized_hlo.txt")):
            with open(os.path.join(directory, file)) as f:
                modules[name] = f.read()
    counts = {name: hlo_counts(text) for name, text in modules.items()}
    keys = list(next(iter(counts.values())))
    lines = ["| optimized HLO, entry computation | " + " | ".join(counts) + " |",
             "|---" * (len(counts) + 1) + "|"]
    lines += [f"| {k.replace('_', ' ')} | " + " | ".join(str(c[k]) for c in counts.values()) + " |" for k in keys]
    if timing:
        lines += ["", "Both modules compiled by JAX's XLA and run as `LoadedExecutable.execute` calls, "
                  f"alternating rounds ({timing['jax']['n']} calls each): JAX's step min "
                  f"{timing['jax']['min_ms']:.3f} ms, median {timing['jax']['median_ms']:.3f}; ours min "
                  f"{timing['ours']['min_ms']:.3f} ms, median {timing['ours']['median_ms']:.3f}."]
    return lines


class _Unfused(MAML):
    """The train step before it went into one XLA call (for the comparison row)."""

    def _fuses_train_step(self, scale_loss):
        return False


def fit_runner(cfg, data, steps_per_execution, fused):
    """A sinusoid MAML compiled as the preset does; returns run(steps) -> ms per meta-iteration."""
    maml = (MAML if fused else _Unfused)(B.build_model(cfg), inner_lr=cfg["alpha"], inner_steps=cfg["inner_steps"])
    maml.compile(optimizer=keras.optimizers.Adam(cfg["lr"]), loss="mse", steps_per_execution=steps_per_execution)
    maml.fit(data, steps_per_epoch=2 * steps_per_execution, epochs=1, verbose=0)  # trace and compile

    def run(steps):
        start = time.perf_counter()
        maml.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        return (time.perf_counter() - start) / steps * 1000
    return run


START, END = "<!-- GENERATED: profile_sine.py -->", "<!-- END GENERATED: profile_sine.py -->"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default=None, help="also write the table into this README's block")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (compiled calls and MAML.fit rows)")
    ap.add_argument("--calls", type=int, default=500, help="compiled calls per round and row")
    ap.add_argument("--fit-steps", type=int, default=1000, help="meta-iterations per round and row (0: no fit rows)")
    ap.add_argument("--hlo", metavar="DIR", default=None,
                    help="count the optimized HLO of our step and JAX's (files written to DIR)")
    ap.add_argument("--alternate", type=int, default=0, metavar="ROUNDS",
                    help="instead: JAX's step and ours (bench_maml.py: concrete call, tf.function call, YNN dot "
                         "fusions) in alternating processes for ROUNDS rounds, appended to --jsonl")
    ap.add_argument("--iters", type=int, default=2000, help="timed iterations per process (--alternate)")
    ap.add_argument("--jsonl", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "sine_vs_jax.jsonl"))
    a = ap.parse_args()
    if a.alternate:
        return alternate_versus_jax(a.alternate, a.iters, a.jsonl)
    cfg = B.C.WORKLOADS["sine"]
    maml = MAML(B.build_model(cfg), inner_lr=cfg["alpha"], inner_steps=cfg["inner_steps"])
    maml.compile(optimizer=keras.optimizers.Adam(cfg["lr"]), loss="mse")
    maml.optimizer.build(maml.trainable_variables)
    rng = np.random.default_rng(0)
    batches = [B.to_episodes(B.C.sample_batch(cfg, rng), "mlp") for _ in range(50)]
    variables = list(maml.trainable_variables) + list(maml.optimizer.variables)

    def touch_variables(e):  # the step's reads and writes, no math
        total = tf.reduce_sum(e["support"][0])
        for v in variables:
            v.assign(v + tf.cast(total, v.dtype))
        return total

    def full(e):
        loss, grads = maml.meta_gradients(e)
        maml.optimizer.apply(grads, maml.trainable_variables)
        return loss

    pieces = {"compiled call doing nothing": lambda e: tf.reduce_sum(e["support"][0]),
              f"the same, reading and writing the step's {len(variables)} variables": touch_variables,
              "meta-gradient only": lambda e: maml.meta_gradients(e),
              "meta-gradient + Adam (the benchmark's step)": full}
    fns = {}
    for name, fn in pieces.items():
        function = tf.function(fn, jit_compile=True)
        fns[name, "function"] = function
        fns[name, "concrete"] = function.get_concrete_function(batches[0])
    ms = alternating_ms(fns, batches, a.rounds, a.calls)
    lines = [f"Compiled calls (XLA), {a.rounds} alternating rounds of {a.calls} calls per row, ms per call:", "",
             "| what | tf.function: min | median | concrete function: min | median |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {ms[name, 'function'][0]:.3f} | {ms[name, 'function'][1]:.3f} | "
              f"{ms[name, 'concrete'][0]:.3f} | {ms[name, 'concrete'][1]:.3f} |" for name in pieces]
    lines += ["", f"XLA calls inside one graph, 50 per call ({a.rounds} alternating rounds of 40 calls), ms per step:", "",
              "| what | min | median |", "|---|---|---|"]
    lines += [f"| {name} | {lo:.3f} | {med:.3f} |" for name, (lo, med) in in_graph_ms(variables, a.rounds).items()]
    if a.hlo:
        lines += [""] + hlo_lines(fns["meta-gradient + Adam (the benchmark's step)", "function"], batches[0], a.hlo)
    if a.fit_steps:
        from maml_tf.tasks import SinusoidTasks
        data = SinusoidTasks(cfg["k_support"], cfg["k_query"]).dataset(cfg["meta_batch"], seed=3)
        fits = {}
        for spe in (1, 50):
            for fused in (False, True):
                fits[spe, fused] = fit_runner(cfg, data, spe, fused)
        times = {key: [] for key in fits}
        for _ in range(a.rounds):  # alternating rounds: a change of load hits every variant alike
            for key, run in fits.items():
                times[key].append(run(a.fit_steps))
        lines += ["", f"MAML.fit, tasks sampled in-graph, median of {a.rounds} alternating rounds of "
                  f"{a.fit_steps} meta-iterations:", "", "| what | ms per meta-iteration |", "|---|---|"]
        for (spe, fused), t in times.items():
            lines.append(f"| steps_per_execution={spe}, "
                         + ("whole step in one XLA call (the library)" if fused
                            else "meta-gradient in XLA, NaN check + Adam + metrics outside (before)")
                         + f" | {float(np.median(t)):.3f} |")
    from maml_tf import reporting
    from maml_tf.report import blocks
    m = reporting.machine()
    lines = [f"Profile run on {m['cpu']}, {m['cores']} cores, load (1 min) {os.getloadavg()[0]:.1f} at the end "
             f"(`{reporting.command()}`).", ""] + lines
    print("\n".join(lines))
    if a.readme:
        blocks.replace_block(a.readme, START, END, "\n".join(lines))


if __name__ == "__main__":
    main()
