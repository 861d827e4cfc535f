"""Where the time of one conv meta-step goes (Omniglot / MiniImagenet workloads of ../shared/bench).

Traces a few compiled meta-steps (meta-gradient + Adam, as ``bench_maml.py`` times them) with
the TensorFlow profiler, reads the trace's op events and sums their durations per op kind
(conv forward, Conv2DBackpropFilter/Input, batch norm, max-pool and its gradients, batch-norm arithmetic,
the task loop's control flow, Adam's updates) and per derivative order: an op whose name has
``gradient_tape`` in it twice belongs to the backward pass through the inner step (second order),
once to a first backward pass (the inner gradient or the outer one), never to a forward pass.
Op times are summed over threads (two tasks in flight, intra-op threads), so their total can
exceed the wall time; the shares are what to read.

    python benchmarks/profile_conv.py --workload omniglot --order 2 --out benchmarks/profile_conv.jsonl
    python benchmarks/profile_conv.py --table benchmarks/profile_conv.jsonl   # README block
"""
import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_maml as B  # noqa: E402  (imports the references' common.py as C)
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from maml_tf import MAML, reporting  # noqa: E402
from maml_tf.core import meta_gradient  # noqa: E402

# op type -> kind; types not listed count as "other"
KINDS = {
    "conv forward": ("Conv2D", "_FusedConv2D", "_MklConv2D", "_MklNativeConv2D", "_MklFusedConv2D",
                     "_MklNativeFusedConv2D", "_MklConv2DWithBias", "_MklNativeConv2DWithBias"),
    "conv backprop filter": ("Conv2DBackpropFilter", "_MklConv2DBackpropFilter",
                             "_MklNativeConv2DBackpropFilter", "_MklConv2DBackpropFilterWithBias",
                             "_MklNativeConv2DBackpropFilterWithBias"),
    "conv backprop input": ("Conv2DBackpropInput", "_MklConv2DBackpropInput", "_MklNativeConv2DBackpropInput"),
    "batch norm (fused op) and its gradient": ("FusedBatchNormV3", "FusedBatchNormGradV3",
                                               "_MklNativeFusedBatchNormV3", "_MklNativeFusedBatchNormEx",
                                               "_MklNativeFusedBatchNormGradV3", "_MklFusedBatchNormV3",
                                               "_MklFusedBatchNormGradV3", "_FusedBatchNormEx"),
    "bias add and its gradient": ("BiasAdd", "BiasAddGrad", "BiasAddV1"),
    "max-pool and its gradients": ("MaxPool", "MaxPoolGrad", "MaxPoolGradGrad", "_MklMaxPool",
                                   "_MklNativeMaxPool", "_MklMaxPoolGrad", "_MklNativeMaxPoolGrad",
                                   "MaxPoolV2", "MaxPoolGradV2", "MaxPoolGradGradV2"),
    "relu and its gradient": ("Relu", "ReluGrad", "_MklRelu", "_MklReluGrad", "_MklNativeRelu"),
    "matmul (head)": ("MatMul", "_MklMatMul", "_MklNativeMatMul", "_FusedMatMul", "_MklFusedMatMul",
                      "_MklNativeFusedMatMul", "BatchMatMulV2", "_MklBatchMatMulV2"),
    "reductions (batch-norm moments, loss)": ("Mean", "Sum", "Max", "Prod", "ArgMax"),
    "elementwise": ("Mul", "AddV2", "Sub", "Square", "SquaredDifference", "RealDiv", "Rsqrt", "RsqrtGrad",
                    "Neg", "AddN", "_MklAddN", "_MklAdd", "_MklAddV2", "_MklMul", "_MklSub", "_MklSquare",
                    "_MklSquaredDifference", "Maximum", "Minimum", "Sqrt", "Exp", "Log", "Tile", "Add",
                    "Reciprocal", "Select", "SelectV2", "OnesLike", "ZerosLike", "Fill", "BroadcastTo",
                    "Cast", "Softmax", "LogSoftmax", "SparseSoftmaxCrossEntropyWithLogits",
                    "PreventGradient", "Pow", "DivNoNan", "Equal", "Less", "Greater", "GreaterEqual"),
    "layout (transpose, reshape, pad, slice)": ("Transpose", "_MklTranspose", "Reshape", "Pad", "Slice",
                                                "StridedSlice", "StridedSliceGrad", "ConcatV2", "Pack",
                                                "Unpack", "Squeeze", "ExpandDims", "Shape", "GatherV2",
                                                "_MklToTf", "_MklInputConversion", "Identity", "Snapshot"),
    "task loop (while, TensorArray, control flow)": ("Enter", "Exit", "Merge", "Switch", "NextIteration",
                                                     "LoopCond", "TensorListSetItem", "TensorListGetItem",
                                                     "TensorListStack", "TensorListReserve",
                                                     "TensorListFromTensor", "While", "StatelessWhile",
                                                     "TensorArrayV3", "TensorArrayWriteV3",
                                                     "TensorArrayGatherV3", "_SwitchN", "NoOp", "Const",
                                                     "_Recv", "_Send", "ControlTrigger"),
    "Adam and variables": ("AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
                           "ReadVariableOp", "ResourceApplyAdam", "VarHandleOp"),
}
CONTAINERS = ("Process", "Run")  # events spanning a whole call, not ops
KIND_OF = {t: kind for kind, types in KINDS.items() for t in types}


def build(cfg, order, style, batch_norm_op="auto", conv_bias=False):
    """The compiled meta-step, the model's layer names and the BN op it runs."""
    model = B.build_model(cfg, conv_bias)
    batch_norm_op = B.set_batch_norm_op(batch_norm_op, model)
    maml = MAML(model, inner_lr=cfg["alpha"], inner_steps=cfg["inner_steps"],
                first_order=order == 1, task_parallelism=style)
    maml.compile(optimizer=keras.optimizers.Adam(cfg["lr"]),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    maml.optimizer.build(maml.trainable_variables)

    def step(episodes):
        loss_value, grads = maml.meta_gradients(episodes)
        maml.optimizer.apply(grads, maml.trainable_variables)
        return loss_value
    return tf.function(step), {layer.name for layer in maml.model.layers}, batch_norm_op


def op_events(logdir):
    """(op name, op type, duration ns) of every TensorFlow op event in the trace's host plane."""
    path = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))[0]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    out = []
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name:  # "op_name:OpType" marks a TF op
                    continue
                op_name, op_type = name.rsplit(":", 1)
                if op_type in CONTAINERS or "__inference" in op_type:
                    continue
                out.append((op_name, op_type, event.duration_ps / 1000))
    return out


def layer_of(op_name, layers):
    """The model layer an op belongs to (its scope, ``bn0_3`` for the 4th call of ``bn0``)."""
    for part in op_name.split("/"):
        name = re.sub(r"_\d+$", "", part)
        if name in layers:
            return name
    return "other (loss, inner update, loop)"


def order_of(op_name):
    n = op_name.count("gradient_tape")
    return {0: "forward", 1: "first backward"}.get(n, "second-order backward")


START, END = "<!-- GENERATED: profile_conv.py -->", "<!-- END GENERATED: profile_conv.py -->"
GROUPS = {"conv (forward, filter, input)": ("conv forward", "conv backprop filter", "conv backprop input",
                                            "bias add and its gradient"),
          "fused batch norm ops": ("batch norm (fused op) and its gradient",),
          "elementwise and reductions": ("elementwise", "reductions (batch-norm moments, loss)"),
          "max-pool": ("max-pool and its gradients",), "relu": ("relu and its gradient",)}


def write_table(jsonl, readme):
    """The recorded profiles as a markdown table in ``readme``'s generated block: each run's
    op time by op kind (op names inside custom gradients carry no layer scope, so kinds, not
    layers)."""
    from maml_tf.report import blocks
    records = reporting.read_json_lines(jsonl)
    rows = [f"Runs recorded in `benchmarks/{os.path.basename(jsonl)}` (`python benchmarks/profile_conv.py`, "
            "one traced meta-step per run, loop engine), share of the op time summed over threads:", "",
            "| workload | batch norm | wall s / step | op s / step | " + " | ".join(GROUPS) + " | rest "
            "| load (1 min) before | machine |", "|" + "---|" * (len(GROUPS) + 7)]
    for r in records:
        kinds = {x["what"]: x["share"] for x in r["by_kind"]}
        share = {g: sum(kinds.get(k, 0) for k in members) for g, members in GROUPS.items()}
        m = r["machine"]
        bn = r["batch_norm_op"] + ("" if r.get("conv_bias", True) else ", no conv bias")  # earlier runs: biases
        rows.append(f"| {r['workload']} {'SO' if r['order'] == 2 else 'FO'} | {bn} "
                    f"| {r['wall_s_per_step_traced']:.2f} | {r['op_ms_per_step_summed_over_threads'] / 1000:.2f} | "
                    + " | ".join(f"{share[g]:.2f}" for g in GROUPS) + f" | {1 - sum(share.values()):.2f} | "
                    + f"{r['load_average_before'][0]:.1f} | {m['cpu']}, {m['cores']} cores |")
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="JSONL", help="write the recorded runs into --readme and exit")
    ap.add_argument("--readme", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md"))
    ap.add_argument("--workload", choices=("omniglot", "mini"), default="omniglot")
    ap.add_argument("--order", type=int, choices=(1, 2), default=2)
    ap.add_argument("--style", choices=("loop", "unrolled"), default="loop")
    ap.add_argument("--steps", type=int, default=2, help="meta-steps traced (after 2 untraced)")
    ap.add_argument("--loop-parallel-tasks", type=int, default=meta_gradient.LOOP_PARALLEL_TASKS)
    ap.add_argument("--batch-norm-op", choices=tuple(B.BATCH_NORM_TAGS), default="auto",
                    help="functional.BATCH_NORM_OP (auto, the library default: fused with the closed form "
                         "for the bias-free twin, composite with --conv-bias)")
    ap.add_argument("--conv-bias", action="store_true", help="the twin with conv biases (the layout until 2026-12-05)")
    ap.add_argument("--out", help="append the record to this .jsonl")
    ap.add_argument("--top", type=int, default=15, help="op types listed one by one")
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    meta_gradient.LOOP_PARALLEL_TASKS = a.loop_parallel_tasks
    cfg = B.C.WORKLOADS[a.workload]
    step, layers, batch_norm_op = build(cfg, a.order, a.style, a.batch_norm_op, a.conv_bias)
    batch = B.to_episodes(B.C.sample_batch(cfg, B.C.np.random.default_rng(B.C.SEED_CHECK)), "conv4")
    for _ in range(2):
        float(step(batch))
    untraced = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        float(step(batch))
        untraced.append(time.perf_counter() - t0)
    load_before = os.getloadavg()
    logdir = tempfile.mkdtemp(prefix="profile_conv_")
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    for _ in range(a.steps):
        float(step(batch))
    traced_s = (time.perf_counter() - t0) / a.steps
    tf.profiler.experimental.stop()
    events = op_events(logdir)
    by_type, by_kind, by_order = collections.Counter(), collections.Counter(), collections.Counter()
    by_kind_order, by_layer = collections.Counter(), collections.Counter()
    for op_name, op_type, ns in events:
        kind = KIND_OF.get(op_type, "other")
        by_type[op_type] += ns
        by_kind[kind] += ns
        by_order[order_of(op_name)] += ns
        by_kind_order[f"{kind} | {order_of(op_name)}"] += ns
        by_layer[f"{layer_of(op_name, layers)} | {order_of(op_name)}"] += ns
    total = sum(by_type.values())

    def table(counter, limit=None):
        return [{"what": k, "ms_per_step": round(v / 1e6 / a.steps, 2), "share": round(v / total, 3)}
                for k, v in counter.most_common(limit)]
    other_types = collections.Counter({t: v for t, v in by_type.items() if t not in KIND_OF})
    record = {"workload": a.workload, "order": a.order, "style": a.style, "batch_norm_op": batch_norm_op,
              "conv_bias": a.conv_bias,
              "cfg": cfg,
              "loop_parallel_tasks": a.loop_parallel_tasks, "steps_traced": a.steps,
              "wall_s_per_step_untraced": sorted(untraced), "wall_s_per_step_traced": traced_s,
              "op_ms_per_step_summed_over_threads": round(total / 1e6 / a.steps, 1),
              "by_kind": table(by_kind), "by_order": table(by_order), "by_kind_and_order": table(by_kind_order),
              "by_layer_and_order": table(by_layer),
              "top_op_types": table(by_type, a.top), "unclassified_op_types": table(other_types, 10),
              "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                          "inter": tf.config.threading.get_inter_op_parallelism_threads()},
              "env": {k: os.environ[k] for k in ("TF_SET_ONEDNN_FPMATH_MODE", "ONEDNN_DEFAULT_FPMATH_MODE",
                                                  "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS") if k in os.environ},
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "machine": reporting.machine(), "command": reporting.command(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(record, indent=1))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
