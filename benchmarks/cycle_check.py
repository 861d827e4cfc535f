"""Does a second-order conv meta-step through the fused batch norm ops, compiled by ``fit``
(no XLA), fail with "N nodes in a cycle"? One ``fit`` per FRESH process (the failure depends
on a per-process hash order), alternating convs with a bias (A) and without (B) before BN.

oneDNN's layout pass can fuse a conv bias's ``BiasAddGrad`` with the outer tape's
``Conv2DBackpropFilter`` (benchmarks/README.md "Conv workloads"); a conv without a bias has
no ``BiasAddGrad``. Appends one JSON line per process (pass/fail, the error's first line,
machine, load) to ``--out``.

    python benchmarks/cycle_check.py --model export --processes 12 --out benchmarks/cycle_check.jsonl
    python benchmarks/cycle_check.py --model omniglot --processes 12 --out benchmarks/cycle_check.jsonl
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

MODELS = ("export", "omniglot")


def _export_classifier(conv_bias):
    """tests/test_export.py's classifier (two stride-2 conv + BN + ReLU blocks, 21x21, 5-way),
    where the cycle was first seen."""
    import keras
    inputs = keras.Input((21, 21, 1))
    h = inputs
    for i in range(2):
        h = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=conv_bias, name=f"conv_{i}")(h)
        h = keras.layers.BatchNormalization(name=f"bn_{i}")(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(5, name="head")(h))


def worker(model_name, conv_bias, steps):
    """One second-order fit with the fused ops and the closed form; the outcome as a dict."""
    import keras
    import numpy as np

    from maml_tf import MAML
    from maml_tf.core import functional, fused_batch_norm
    from maml_tf.models import networks
    from maml_tf.tasks import FewShotTasks
    functional.FUSED_BATCH_NORM = True
    fused_batch_norm.CLOSED_FORM_SECOND_ORDER = True
    keras.utils.set_random_seed(0)
    if model_name == "export":  # as tests/test_export.py's classifier_maml
        model, size, kwargs = _export_classifier(conv_bias), 21, {"inner_lr": 0.4, "inner_steps": 2,
                                                                   "inner_rule": "lslr"}
        meta_batch, query_shots, steps_per_execution = 4, 5, 10
    else:  # the Omniglot preset's network and loop engine ("auto"), a small meta-batch
        model = networks.conv4(5, input_shape=(28, 28, 1), filters=64, conv_bias=conv_bias)
        size, kwargs = 28, {"inner_lr": 0.4, "inner_steps": 1, "task_parallelism": "auto"}
        meta_batch, query_shots, steps_per_execution = 2, 1, 1
    images = np.random.default_rng(1).integers(0, 256, size=(16, 20, size, size, 1), dtype=np.uint8)
    maml = MAML(model, first_order=False, **kwargs)
    maml.compile(optimizer=keras.optimizers.Adam(1e-3),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 steps_per_execution=steps_per_execution)
    tasks = FewShotTasks(images, 5, support_shots=1, query_shots=query_shots)
    start = time.time()
    try:
        maml.fit(tasks.dataset(meta_batch_size=meta_batch, seed=2), epochs=1, steps_per_epoch=steps, verbose=0)
        error = None
    except Exception as e:  # noqa: BLE001 - the outcome is the record
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
    return {"passed": error is None, "error": error, "fit_seconds": round(time.time() - start, 1),
            "engine": maml._resolved_parallelism()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=MODELS, default="export")
    ap.add_argument("--processes", type=int, default=12, help="fresh processes per variant (A and B)")
    ap.add_argument("--steps", type=int, default=None, help="meta-iterations per fit (40 export, 3 omniglot)")
    ap.add_argument("--out", default=os.path.join(HERE, "cycle_check.jsonl"))
    ap.add_argument("--worker", choices=("bias", "nobias"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    steps = a.steps or (40 if a.model == "export" else 3)
    if a.worker:
        print("RESULT " + json.dumps(worker(a.model, a.worker == "bias", steps)), flush=True)
        return
    from maml_tf import reporting
    machine = reporting.machine()
    counts = {"bias": [0, 0], "nobias": [0, 0]}
    for i in range(a.processes):
        for variant in ("bias", "nobias"):  # A B A B ...
            load = os.getloadavg()
            cmd = [sys.executable, os.path.abspath(__file__), "--model", a.model, "--steps", str(steps),
                   "--worker", variant]
            done = subprocess.run(cmd, capture_output=True, text=True)
            lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
            outcome = (json.loads(lines[-1][7:]) if lines else
                       {"passed": False, "error": f"process exit {done.returncode}: "
                        + (done.stderr.strip().splitlines() or [""])[-1][:300]})
            counts[variant][0 if outcome["passed"] else 1] += 1
            record = {"model": a.model, "conv_bias": variant == "bias", "process": i, "steps": steps,
                      "batch_norm_op": "fused-closedform", "order": 2, **outcome,
                      "load_average_before": load, "load_average_after": os.getloadavg(), "machine": machine,
                      "command": reporting.command(),
                      "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            reporting.append_json_line(a.out, record)
            print(f"{a.model} {variant} #{i}: {'pass' if outcome['passed'] else 'FAIL ' + str(outcome['error'])}"
                  f" load {load[0]:.1f}", flush=True)
    print(json.dumps({"model": a.model, "passed_failed": counts}))


if __name__ == "__main__":
    main()
