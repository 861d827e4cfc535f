"""Where the time of one sinusoid meta-step goes (the workload where we trail JAX).

Times, in one process on the references' sine workload: a compiled call that does
nothing with the meta-batch (TensorFlow's fixed cost per call), the meta-gradient alone,
the whole step (meta-gradient + Adam), each with XLA, and the step inside ``MAML.fit``
with ``steps_per_execution``.

    python benchmarks/profile_sine.py --readme benchmarks/README.md   # and write the table there
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_maml as B  # noqa: E402  (imports the references' common.py as C)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from maml_tf import MAML  # noqa: E402


def median_ms(fn, batches, repeats=2000):
    for b in batches[:20]:
        fn(b)
    times = []
    for i in range(repeats):
        b = batches[i % len(batches)]
        start = time.perf_counter()
        out = fn(b)
        tf.nest.map_structure(lambda t: t.numpy(), out)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


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
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of the MAML.fit rows")
    ap.add_argument("--fit-steps", type=int, default=1000, help="meta-iterations per round and row")
    a = ap.parse_args()
    cfg = B.C.WORKLOADS["sine"]
    maml = MAML(B.build_model(cfg), inner_lr=cfg["alpha"], inner_steps=cfg["inner_steps"])
    maml.compile(optimizer=keras.optimizers.Adam(cfg["lr"]), loss="mse")
    maml.optimizer.build(maml.trainable_variables)
    rng = np.random.default_rng(0)
    batches = [B.to_episodes(B.C.sample_batch(cfg, rng), "mlp") for _ in range(50)]

    noop = tf.function(lambda e: tf.reduce_sum(e["support"][0]), jit_compile=True)
    gradient = tf.function(lambda e: maml.meta_gradients(e), jit_compile=True)

    def full(e):
        loss, grads = maml.meta_gradients(e)
        maml.optimizer.apply(grads, maml.trainable_variables)
        return loss

    step = tf.function(full, jit_compile=True)
    rows = [("compiled call doing nothing (XLA)", median_ms(noop, batches)),
            ("meta-gradient only (XLA)", median_ms(gradient, batches)),
            ("meta-gradient + Adam, one call (XLA; the benchmark's row)", median_ms(step, batches))]

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
    for (spe, fused), t in times.items():
        rows.append((f"MAML.fit, steps_per_execution={spe} (tasks sampled in-graph), "
                     + ("whole step in one XLA call (the library)" if fused
                        else "meta-gradient in XLA, NaN check + Adam + metrics outside (before)"),
                     float(np.median(t))))
    from maml_tf import reporting
    from maml_tf.report import blocks
    m = reporting.machine()
    load = os.getloadavg()[0]
    lines = [f"Profile run on {m['cpu']}, {m['cores']} cores, load (1 min) {load:.1f} at the end "
             f"(`python benchmarks/profile_sine.py`; MAML.fit rows: median of {a.rounds} alternating "
             f"rounds of {a.fit_steps} meta-iterations):", "",
             "| what | ms per meta-iteration (median) |", "|---|---|"]
    lines += [f"| {name} | {ms:.3f} |" for name, ms in rows]
    print("\n".join(lines))
    if a.readme:
        blocks.replace_block(a.readme, START, END, "\n".join(lines))


if __name__ == "__main__":
    main()
