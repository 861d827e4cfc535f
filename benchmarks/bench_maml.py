"""maml-tf meta-training speed and memory, on the exact workloads of ../shared/bench.

Imports the references' ``common.py`` (hyper-parameters, parameter initialisation,
random batches, timing, JSON record) so that all three frameworks run the same thing
and their records land in one table. One (workload, variant) per process, so that
peak RSS is per run.

    python benchmarks/bench_maml.py --workload omniglot --order 2 --style loop --out r.json
    python benchmarks/bench_maml.py --workload omniglot --precision mixed_bfloat16 --out r.json
"""
import argparse
import os
import sys
import time

import numpy as np

BENCH_DIR = os.environ.get("MAML_BENCH_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
sys.path.insert(0, os.path.abspath(BENCH_DIR))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import common as C  # noqa: E402  (the references' shared workload definitions)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from maml_tf import MAML  # noqa: E402
from maml_tf.core import functional, precision  # noqa: E402
from maml_tf.core.episodes import make as make_episodes  # noqa: E402


def build_model(cfg, conv_bias=False):
    """Keras twin of the references' networks, same initial values (torch layout -> Keras).

    Conv workloads: bias-free convs before batch norm, as the library's presets
    (``networks.conv4``). The references' convs have a (random) bias; under batch statistics it
    cancels, so the twin computes the same function and the same meta-gradient for every other
    weight, and the bias's own is zero (``torch_layout_grads`` fills it in). ``conv_bias=True``:
    the twin with the references' biases (the library's layout until 2026-12-05)."""
    p = C.init_params(cfg)
    if cfg["kind"] == "mlp":
        h = cfg["hidden"]
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(h, activation="relu"),
                                  keras.layers.Dense(h, activation="relu"), keras.layers.Dense(1)])
        dense = [l for l in model.layers]
        for layer, name in zip(dense, ("l1", "l2", "l3")):
            layer.set_weights([p[f"{name}.weight"].T, p[f"{name}.bias"]])
        return model
    # conv4 with max-pool for both conv workloads, as the references (see their README)
    inputs = keras.Input((cfg["img"], cfg["img"], cfg["in_ch"]))
    h = inputs
    for b in range(4):
        conv = keras.layers.Conv2D(cfg["hidden"], 3, padding="same", use_bias=conv_bias, name=f"conv{b}")
        bn = keras.layers.BatchNormalization(epsilon=C.BN_EPS, name=f"bn{b}")
        h = keras.layers.MaxPooling2D(2)(keras.layers.ReLU()(bn(conv(h))))
    # torch flattens NCHW; ours is NHWC: the head's input order differs, so permute its rows.
    h = keras.layers.Flatten()(keras.layers.Permute((3, 1, 2))(h))
    outputs = keras.layers.Dense(cfg["n_way"], name="head")(h)
    model = keras.Model(inputs, outputs)
    for b in range(4):
        model.get_layer(f"conv{b}").set_weights([p[f"conv{b}.weight"].transpose(2, 3, 1, 0)]
                                                + ([p[f"conv{b}.bias"]] if conv_bias else []))
        model.get_layer(f"bn{b}").set_weights([p[f"bn{b}.weight"], p[f"bn{b}.bias"],
                                                np.zeros_like(p[f"bn{b}.bias"]), np.ones_like(p[f"bn{b}.bias"])])
    model.get_layer("head").set_weights([p["head.weight"].T, p["head.bias"]])
    return model


def torch_layout_grads(model, grads):
    """Meta-gradient renamed and transposed to the references' layout (for compare.py)."""
    out = {}
    for v, g in zip(model.trainable_variables, grads):
        g = np.asarray(g)
        layer, kind = v.path.split("/")[-2:]
        if layer.startswith("dense"):  # Sequential MLP: dense, dense_1, dense_2
            idx = 0 if layer == "dense" else int(layer.split("_")[-1])
            layer = ("l1", "l2", "l3")[idx % 3]
        name = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}[kind]
        if kind == "kernel":
            g = g.transpose(3, 2, 0, 1) if g.ndim == 4 else g.T
        out[f"{layer}.{name}"] = g
    for layer in functional.convolutions(model):  # bias-free twin: the dead bias's gradient is zero
        if not layer.use_bias:
            out[f"{layer.name}.bias"] = np.zeros(layer.filters, np.float32)
    return out


BATCH_NORM_TAGS = {"auto": "", "composite": "-bncomposite", "fused": "-bnfused", "fused-closedform": "-bnclosedform"}


def set_batch_norm_op(op, model):
    """Run BN as ``op`` (``functional.BATCH_NORM_OP``); returns the op it resolves to for ``model``."""
    functional.BATCH_NORM_OP = op
    return functional.resolve_batch_norm_op(op, functional.has_biased_conv(model))


def to_episodes(batch, kind):
    xs, ys, xq, yq = batch
    if kind == "conv4":  # NCHW -> NHWC, int32 labels
        xs, xq = xs.transpose(0, 1, 3, 4, 2), xq.transpose(0, 1, 3, 4, 2)
        ys, yq = ys.astype(np.int32), yq.astype(np.int32)
    return make_episodes(*(tf.constant(np.ascontiguousarray(a)) for a in (xs, ys, xq, yq)))


def main():
    ap = C.base_args(__doc__)
    ap.add_argument("--style", choices=("vectorized", "loop", "unrolled"), default="loop")
    ap.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                    help="jit_compile of MAML.compile; auto = the library default (XLA for vectorized)")
    ap.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32",
                    help="mixed_bfloat16: the model built under that Keras policy (variant suffix -bf16)")
    ap.add_argument("--batch-norm-op", choices=tuple(BATCH_NORM_TAGS), default="auto",
                    help="functional.BATCH_NORM_OP: auto (the library default: fused ops with the closed-form "
                         "second derivative without conv biases, composite with them), composite (exact moments, "
                         "variant suffix -bncomposite), fused (TensorFlow's second derivative, -bnfused), "
                         "fused-closedform (-bnclosedform)")
    ap.add_argument("--conv-bias", action="store_true",
                    help="conv twin with the references' conv biases (the layout until 2026-12-05; -convbias)")
    ap.add_argument("--call", choices=("concrete", "function"), default="concrete",
                    help="time the step traced ahead for the batch's shapes (tf.function's concrete function, "
                         "as JAX's row times its ahead-of-time jax.jit(...).lower(...).compile()) or through "
                         "tf.function's per-call dispatch (variant suffix -fncall; 0.1 to 0.3 ms more per call "
                         "on the sinusoid, benchmarks/README.md)")
    ap.add_argument("--fit", type=int, default=0,
                    help="also time keras fit() with steps_per_execution=N on a task stream (sine)")
    a = ap.parse_args()
    cfg = C.WORKLOADS[a.workload]
    first_order = a.order == 1
    rss_import = C.peak_rss_mb()
    with precision.policy(a.precision):
        model = build_model(cfg, a.conv_bias)
    batch_norm_op = set_batch_norm_op(a.batch_norm_op, model)
    loss = "mse" if cfg["kind"] == "mlp" else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    maml = MAML(model, inner_lr=cfg["alpha"], inner_steps=cfg["inner_steps"], first_order=first_order,
                task_parallelism=a.style)
    maml.compile(optimizer=keras.optimizers.Adam(cfg["lr"]), loss=loss,
                 jit_compile={"auto": "auto", "on": True, "off": False}[a.xla])
    maml.optimizer.build(maml.trainable_variables)
    xla = maml._xla  # what compile resolved "auto" to
    # TF_SET_ONEDNN_FPMATH_MODE=BF16: oneDNN runs float32 convolutions and matmuls in bfloat16
    # (float32 accumulation), a process-wide switch with no model change.
    fpmath = os.environ.get("TF_SET_ONEDNN_FPMATH_MODE", "").upper() == "BF16"
    bf16 = ("-bf16" if a.precision == "mixed_bfloat16" else "") + ("-onednnbf16" if fpmath else "")
    bf16 += ("-convbias" if a.conv_bias and cfg["kind"] == "conv4" else "") + BATCH_NORM_TAGS[a.batch_norm_op]
    bf16 += "-fncall" if a.call == "function" else ""
    variant = f"{a.style}{'-xla' if xla else ''}{bf16}-{'FO' if first_order else 'SO'}"
    rec = dict(framework="maml-tf", version=f"tf {tf.__version__}", workload=a.workload, variant=variant,
               order=a.order, cfg=cfg, threads=dict(intra=tf.config.threading.get_intra_op_parallelism_threads(),
                                                    affinity=len(os.sched_getaffinity(0))),
               rss_after_import_mb=rss_import, precision=a.precision, batch_norm_op=batch_norm_op,
               conv_bias=bool(a.conv_bias and cfg["kind"] == "conv4"),
               onednn_fpmath_mode=os.environ.get("TF_SET_ONEDNN_FPMATH_MODE", ""),
               bfloat16_native=list(precision.native_bfloat16()), call=a.call)
    is_sine = cfg["kind"] == "mlp"

    def step(episodes):
        loss_value, grads = maml.meta_gradients(episodes)
        maml.optimizer.apply(grads, maml.trainable_variables)
        return loss_value, grads

    function = tf.function(step, jit_compile=xla)
    evaluate = None
    if is_sine:
        ev = to_episodes(C.eval_tasks(cfg), "mlp")
        evaluate = lambda: [float(np.mean(maml.evaluate_tasks(ev, 1)["loss"][:, s])) for s in (1, 0)]  # noqa: E731
        rec["pre_mse"], rec["pre_mse_noadapt"] = evaluate()
    check = to_episodes(C.sample_batch(cfg, np.random.default_rng(C.SEED_CHECK)), cfg["kind"])
    t0 = C.now()
    compiled = function.get_concrete_function(check) if a.call == "concrete" else function
    loss_value, grads = compiled(check)
    loss_value = float(loss_value)
    rec["warmup_s"] = rec["compile_s"] = C.now() - t0
    rec["check_loss"] = loss_value
    if a.dump:
        np.savez(a.dump, loss=loss_value, **torch_layout_grads(model, grads))
    rng = np.random.default_rng(C.SEED_TRAIN)
    batch, times = check, []
    for i in range(a.warmup + a.iters):
        if i == a.warmup:
            mon = C.CpuMonitor().start()
        if is_sine:
            batch = to_episodes(C.sample_batch(cfg, rng), "mlp")
        t0 = C.now()
        loss_value, _ = compiled(batch)
        float(loss_value)
        if i >= a.warmup:
            times.append(C.now() - t0)
    rec["cpu"] = mon.stop()
    rec["timing"] = C.stats(times)
    rec["train_iters"] = 1 + a.warmup + a.iters
    if is_sine:
        rec["final_mse"], rec["final_mse_noadapt"] = evaluate()
    if a.fit:
        rec["fit"] = time_fit(maml, cfg, a.fit)
    C.write_result(a.out, rec)


def time_fit(maml, cfg, steps_per_execution, steps=3000):
    """Seconds per meta-iteration inside keras fit (steps_per_execution amortises the
    per-call overhead of tf.function), task stream sampled in-graph."""
    from maml_tf.tasks import SinusoidTasks
    maml.compile(optimizer=maml.optimizer, loss="mse", steps_per_execution=steps_per_execution)
    data = SinusoidTasks(cfg["k_support"], cfg["k_query"]).dataset(cfg["meta_batch"], seed=3)
    maml.fit(data, steps_per_epoch=steps_per_execution * 2, epochs=1, verbose=0)  # trace
    t0 = time.perf_counter()
    maml.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return dict(steps_per_execution=steps_per_execution, seconds_per_iter=(time.perf_counter() - t0) / steps)


if __name__ == "__main__":
    main()
