"""Child process of tests/test_export.py: serves exported MAML SavedModels with
``tf.saved_model.load`` alone (no maml_tf, no Keras), as a deployment would.

    python serve_saved_model.py PLAN.json REQUESTS.npz RESPONSES.npz DESCRIBED.json

PLAN lists the SavedModel directories and the calls ``[model, signature, [input
names]]``; call ``i`` reads its inputs from ``REQUESTS["i:<input>"]`` and writes its
outputs to ``RESPONSES["i:<output>"]`` (strings decoded). DESCRIBED gets each model's
signature specs and the configuration attributes read off the loaded object, and
whether anything imported maml_tf.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ATTRIBUTES = ("inner_steps", "inner_rule", "inner_lr", "num_classes", "loss", "loss_reduction",
              "batch_norm", "input_shape", "label_shape")


def plain(value):
    value = value.numpy()
    if isinstance(value, bytes):
        return value.decode()
    return value.tolist() if isinstance(value, np.ndarray) else value.item()


def spec(s):
    return {"dtype": s.dtype.name, "shape": None if s.shape.rank is None else s.shape.as_list()}


def describe(loaded):
    return {
        "signatures": {
            name: {"inputs": {k: spec(s) for k, s in fn.structured_input_signature[1].items()},
                   "outputs": {k: spec(s) for k, s in fn.structured_outputs.items()}}
            for name, fn in loaded.signatures.items()},
        "attributes": {name: plain(getattr(loaded, name)) for name in ATTRIBUTES},
        "inner_rates": [plain(r) for r in loaded.inner_rates],
    }


def main(plan_path, requests_path, responses_path, described_path):
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with open(plan_path) as f:
        plan = json.load(f)
    requests = np.load(requests_path)
    loaded = {path: tf.saved_model.load(path) for path in plan["models"]}
    responses = {}
    for i, (model, signature, names) in enumerate(plan["calls"]):
        outputs = loaded[model].signatures[signature](
            **{name: tf.constant(requests[f"{i}:{name}"]) for name in names})
        responses.update({f"{i}:{key}": np.asarray(plain(value)) for key, value in outputs.items()})
    np.savez(responses_path, **responses)
    with open(described_path, "w") as f:
        json.dump({"models": {path: describe(m) for path, m in loaded.items()},
                   "maml_tf_imported": any(m.split(".")[0] == "maml_tf" for m in sys.modules)}, f)


if __name__ == "__main__":
    main(*sys.argv[1:5])
