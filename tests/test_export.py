"""SavedModel export that adapts at serving time (maml_tf.export).

Three small meta-trained models (a sinusoid MLP with plain SGD, one with Meta-SGD,
and a conv + transductive-BN 5-way classifier with per-step rates on Omniglot-like
images) are exported once and served in a fresh process that only has
``tf.saved_model.load`` (tests/serve_saved_model.py); its answers must match the
in-process MAML. Bad requests are checked against the loaded model in this process.
"""
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import fake_omniglot
from maml_tf import MAML, export
from maml_tf.models import mlp
from maml_tf.tasks import FewShotTasks, SinusoidTasks

# The module's fixture meta-trains three models: `make test-fast` leaves this file out.
pytestmark = pytest.mark.slow

HERE = os.path.dirname(os.path.abspath(__file__))
WAYS, IMAGE = 5, 21
TRAIN_CLASSES = 16  # the fake alphabet has 24 characters; 16..23 are never trained on
SINE_STEPS, CLASSIFIER_STEPS = 5, 3


def omniglot_like_images():
    """uint8 [24 characters, 20 drawers, 21, 21, 1]: fake Omniglot drawings, 5x5-pooled."""
    drawings = np.array([[fake_omniglot.drawing(c, m) for m in range(fake_omniglot.DRAWINGS)]
                         for c in range(fake_omniglot.MARK_CELL)], np.float32)
    pooled = drawings.reshape(*drawings.shape[:2], IMAGE, 5, IMAGE, 5).mean(axis=(3, 5))
    return (pooled * 255).astype(np.uint8)[..., None]


def conv_bn_classifier():
    inputs = keras.Input((IMAGE, IMAGE, 1))
    h = inputs
    for i in range(2):
        h = keras.layers.Conv2D(8, 3, strides=2, padding="same", name=f"conv_{i}")(h)
        h = keras.layers.BatchNormalization(name=f"bn_{i}")(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(WAYS, name="head")(h))


def sinusoid_maml(inner_rule):
    maml = MAML(mlp(hidden=(40, 40)), inner_lr=0.01, inner_steps=1, eval_inner_steps=SINE_STEPS,
                inner_rule=inner_rule)
    maml.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse", steps_per_execution=50)
    maml.fit(SinusoidTasks(10, 10).dataset(meta_batch_size=10, seed=1), epochs=1,
             steps_per_epoch=300, verbose=0)
    return maml


def classifier_maml(images):
    maml = MAML(conv_bn_classifier(), inner_lr=0.4, inner_steps=2, eval_inner_steps=CLASSIFIER_STEPS,
                inner_rule="lslr")
    maml.compile(optimizer=keras.optimizers.Adam(1e-3),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=10)
    tasks = FewShotTasks(images[:TRAIN_CLASSES], WAYS, support_shots=1, query_shots=5)
    maml.fit(tasks.dataset(meta_batch_size=4, seed=2), epochs=1, steps_per_epoch=40, verbose=0)
    return maml


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: (trained MAML, SavedModel directory)} plus the held-out images."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("export")
    images = omniglot_like_images()
    mamls = {"sine": sinusoid_maml("sgd"), "meta_sgd": sinusoid_maml("meta-sgd"),
             "classifier": classifier_maml(images)}
    out = {}
    for name, maml in mamls.items():
        export.save(maml, root / name)
        out[name] = (maml, str(root / name))
    out["new_classes"] = images[TRAIN_CLASSES:]
    return out


class Plan:
    """Requests for tests/serve_saved_model.py; ``add`` returns the call's index."""

    def __init__(self):
        self.models, self.calls, self.arrays = set(), [], {}

    def add(self, model, signature, **inputs):
        i = len(self.calls)
        self.models.add(model)
        self.calls.append([model, signature, sorted(inputs)])
        self.arrays.update({f"{i}:{k}": np.asarray(v) for k, v in inputs.items()})
        return i


def sine_tasks(count, support, query, seed):
    episodes, _ = SinusoidTasks(support, query).sample(count, seed=[seed, 0])
    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    return [tuple(np.asarray(t[i]) for t in (sx, sy, qx, qy)) for i in range(count)]


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """Serve every request in one fresh process. Returns (requests, responses, described)."""
    plan, requests = Plan(), {}
    sine_dir, meta_dir, clf_dir = (exported[k][1] for k in ("sine", "meta_sgd", "classifier"))
    requests["sine"] = [(task, plan.add(sine_dir, "adapt_and_predict", support_x=task[0],
                                        support_y=task[1], query_x=task[2]),
                         plan.add(sine_dir, "predict", x=task[2]))
                        for task in sine_tasks(10, support=10, query=50, seed=42)]
    odd = sine_tasks(1, support=4, query=3, seed=43)[0]  # other support and query counts
    requests["sine_odd"] = (odd, plan.add(sine_dir, "adapt_and_predict", support_x=odd[0],
                                          support_y=odd[1], query_x=odd[2]))
    requests["sine_adapt"] = (odd, plan.add(sine_dir, "adapt", support_x=odd[0], support_y=odd[1]))
    requests["meta_sgd"] = [(task, plan.add(meta_dir, "adapt_and_predict", support_x=task[0],
                                            support_y=task[1], query_x=task[2]))
                            for task in sine_tasks(3, support=10, query=20, seed=44)]
    new_tasks = FewShotTasks(exported["new_classes"], WAYS, support_shots=1, query_shots=5)
    sx, sy, qx, qy = new_tasks.sample_numpy(10, seed=7)
    requests["classifier"] = [((sx[i], sy[i], qx[i], qy[i]),
                               plan.add(clf_dir, "adapt_and_predict", support_x=sx[i],
                                        support_y=sy[i], query_x=qx[i]),
                               plan.add(clf_dir, "predict", x=qx[i])) for i in range(len(sx))]
    two_shot = FewShotTasks(exported["new_classes"], WAYS, support_shots=2, query_shots=1)
    task = tuple(a[0] for a in two_shot.sample_numpy(1, seed=8))
    requests["classifier_odd"] = (task, plan.add(clf_dir, "adapt_and_predict", support_x=task[0],
                                                 support_y=task[1], query_x=task[2]))
    requests["classifier_adapt"] = (task, plan.add(clf_dir, "adapt", support_x=task[0],
                                                   support_y=task[1]))
    requests["config"] = {name: plan.add(exported[name][1], "config")
                          for name in ("sine", "meta_sgd", "classifier")}

    work = tmp_path_factory.mktemp("served")
    paths = [str(work / name) for name in ("plan.json", "requests.npz", "responses.npz", "described.json")]
    with open(paths[0], "w") as f:
        json.dump({"models": sorted(plan.models), "calls": plan.calls}, f)
    np.savez(paths[1], **plan.arrays)
    # A plain environment: the child must not find maml_tf through PYTHONPATH either.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, os.path.join(HERE, "serve_saved_model.py"), *paths],
                         capture_output=True, text=True, cwd=str(work), env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    responses = dict(np.load(paths[2]))
    with open(paths[3]) as f:
        described = json.load(f)
    return requests, responses, described


def out(responses, call, key):
    return responses[f"{call}:{key}"]


def adapted_prediction(maml, sx, sy, qx):
    return np.asarray(maml.predict_with(maml.adapt(sx, sy), qx))


def meta_prediction(maml, x):
    return np.asarray(maml.predict_with([v.value for v in maml.model.trainable_variables], x))


# ----------------------------------------------------------------------------- fresh process
def test_fresh_process_has_no_maml_tf(served):
    assert served[2]["maml_tf_imported"] is False


def test_regression_serving_matches_in_process_maml(exported, served):
    maml = exported["sine"][0]
    requests, responses, _ = served
    for (sx, sy, qx, _), adapt_call, predict_call in requests["sine"]:
        np.testing.assert_allclose(out(responses, adapt_call, "predictions"),
                                   adapted_prediction(maml, sx, sy, qx), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out(responses, predict_call, "predictions"),
                                   np.asarray(maml.model(qx)), rtol=1e-4, atol=1e-5)
    (sx, sy, qx, _), call = requests["sine_odd"]
    assert out(responses, call, "predictions").shape == (3, 1)
    np.testing.assert_allclose(out(responses, call, "predictions"),
                               adapted_prediction(maml, sx, sy, qx), rtol=1e-4, atol=1e-5)
    (sx, sy, _, _), call = requests["sine_adapt"]
    for variable, value in zip(maml.model.trainable_variables, maml.adapt(sx, sy)):
        np.testing.assert_allclose(out(responses, call, variable.path), value, rtol=1e-4, atol=1e-6)


def test_exported_sinusoid_adapts_to_new_tasks(served):
    requests, responses, _ = served
    before, after = [], []
    for (_, _, _, qy), adapt_call, predict_call in requests["sine"]:
        before.append(np.mean((out(responses, predict_call, "predictions") - qy) ** 2))
        after.append(np.mean((out(responses, adapt_call, "predictions") - qy) ** 2))
    assert np.mean(after) < 0.7 * np.mean(before), (before, after)
    assert np.mean(np.less(after, before)) >= 0.8, (before, after)


def test_classification_serving_matches_in_process_maml(exported, served):
    maml = exported["classifier"][0]
    requests, responses, _ = served
    for (sx, sy, qx, _), adapt_call, predict_call in requests["classifier"]:
        logits = adapted_prediction(maml, sx, sy, qx)
        np.testing.assert_allclose(out(responses, adapt_call, "logits"), logits, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(out(responses, adapt_call, "probabilities"),
                                   np.asarray(tf.nn.softmax(logits)), atol=1e-5)
        np.testing.assert_array_equal(out(responses, adapt_call, "classes"), logits.argmax(-1))
        # Transductive BN: predict normalises with the batch's statistics, like MAML's
        # 0-step evaluation (not model(x), whose moving statistics MAML never trains).
        np.testing.assert_allclose(out(responses, predict_call, "logits"), meta_prediction(maml, qx),
                                   rtol=1e-3, atol=1e-4)
    (sx, sy, qx, _), call = requests["classifier_odd"]
    assert out(responses, call, "logits").shape == (WAYS, WAYS)  # 2-shot support, 5 queries
    np.testing.assert_allclose(out(responses, call, "logits"), adapted_prediction(maml, sx, sy, qx),
                               rtol=1e-3, atol=1e-4)
    (sx, sy, _, _), call = requests["classifier_adapt"]
    for variable, value in zip(maml.model.trainable_variables, maml.adapt(sx, sy)):
        np.testing.assert_allclose(out(responses, call, variable.path), value, rtol=1e-3, atol=1e-5)


def test_exported_classifier_adapts_to_new_characters(served):
    requests, responses, _ = served
    after = [np.mean(out(responses, call, "classes") == qy) for (*_, qy), call, _ in requests["classifier"]]
    before = [np.mean(out(responses, call, "classes") == qy) for (*_, qy), _, call in requests["classifier"]]
    assert np.mean(after) > 2.0 / WAYS, after  # chance is 1 / WAYS
    assert np.mean(after) > np.mean(before) + 0.2, (before, after)


def test_meta_sgd_learned_rates_are_used(exported, served):
    maml, _ = exported["meta_sgd"]
    rates = [r.numpy() for r in maml.inner_rule.rates]
    assert max(np.abs(r - maml.inner_lr).max() for r in rates) > 1e-3  # meta-training moved them
    plain_sgd = MAML(maml.model, inner_lr=maml.inner_lr, eval_inner_steps=SINE_STEPS)
    plain_sgd.compile(loss="mse")
    requests, responses, described = served
    for (sx, sy, qx, _), call in requests["meta_sgd"]:
        served_predictions = out(responses, call, "predictions")
        np.testing.assert_allclose(served_predictions, adapted_prediction(maml, sx, sy, qx),
                                   rtol=1e-4, atol=1e-5)
        assert np.abs(served_predictions - adapted_prediction(plain_sgd, sx, sy, qx)).max() > 1e-3
    config = requests["config"]["meta_sgd"]
    for variable, rate in zip(maml.model.trainable_variables, rates):
        np.testing.assert_allclose(out(responses, config, f"step_size/{variable.path}"),
                                   np.broadcast_to(rate, (SINE_STEPS, *rate.shape)), rtol=1e-6)
    served_rates = described["models"][exported["meta_sgd"][1]]["inner_rates"]
    for served_rate, rate in zip(served_rates, rates):
        np.testing.assert_allclose(served_rate, rate, rtol=1e-6)


# ----------------------------------------------------------------------------- documented specs
ANY_SHAPE = {"shape": None}


def test_signatures_and_specs(exported, served):
    described = served[2]["models"]
    sine, clf = described[exported["sine"][1]], described[exported["classifier"][1]]
    for model in (sine, clf):
        assert set(model["signatures"]) == {*export.SIGNATURES, "serving_default"}
        assert model["signatures"]["serving_default"] == model["signatures"]["adapt_and_predict"]
    label = {"dtype": "int32", **ANY_SHAPE}
    image = {"dtype": "float32", **ANY_SHAPE}
    signatures = clf["signatures"]
    assert signatures["adapt_and_predict"]["inputs"] == {"support_x": image, "support_y": label,
                                                         "query_x": image}
    assert signatures["adapt_and_predict"]["outputs"] == {
        "logits": {"dtype": "float32", "shape": [None, WAYS]},
        "probabilities": {"dtype": "float32", "shape": [None, WAYS]},
        "classes": {"dtype": "int32", "shape": [None]}}
    assert signatures["predict"]["inputs"] == {"x": image}
    assert signatures["predict"]["outputs"] == signatures["adapt_and_predict"]["outputs"]
    assert signatures["adapt"]["inputs"] == {"support_x": image, "support_y": label}
    model = exported["classifier"][0].model
    assert signatures["adapt"]["outputs"] == {
        v.path: {"dtype": "float32", "shape": list(v.shape)} for v in model.trainable_variables}
    assert signatures["config"]["inputs"] == {}
    assert sine["signatures"]["adapt_and_predict"]["inputs"]["support_y"] == {"dtype": "float32", **ANY_SHAPE}
    assert sine["signatures"]["adapt_and_predict"]["outputs"] == {
        "predictions": {"dtype": "float32", "shape": [None, 1]}}


def test_configuration_is_recorded(exported, served):
    requests, responses, described = served
    expected = {
        "sine": {"inner_steps": SINE_STEPS, "inner_rule": "sgd", "num_classes": 0,
                 "loss": "mean_squared_error", "loss_reduction": "mean", "batch_norm": "transductive",
                 "input_shape": [1], "label_shape": [1]},
        "classifier": {"inner_steps": CLASSIFIER_STEPS, "inner_rule": "lslr", "num_classes": WAYS,
                       "loss_reduction": "mean", "batch_norm": "transductive",
                       "input_shape": [IMAGE, IMAGE, 1], "label_shape": []},
    }
    for name, values in expected.items():
        maml, path = exported[name]
        attributes = described["models"][path]["attributes"]
        config = {k: out(responses, requests["config"][name], k).tolist() for k in attributes}
        assert attributes == config
        assert {k: attributes[k] for k in values} == values
        assert attributes["inner_lr"] == pytest.approx(maml.inner_lr)
    loss = json.loads(described["models"][exported["classifier"][1]]["attributes"]["loss"])
    assert loss["class_name"] == "SparseCategoricalCrossentropy" and loss["config"]["from_logits"]
    # LSLR: one rate per adapted weight and step; the 3rd step reuses the 2nd (trained) one.
    maml, config = exported["classifier"][0], requests["config"]["classifier"]
    rates = maml.inner_rule.rates.numpy()
    for i, variable in enumerate(maml.model.trainable_variables):
        np.testing.assert_allclose(out(responses, config, f"step_size/{variable.path}"),
                                   rates[i, [0, 1, 1]], rtol=1e-6)
    sine, config = exported["sine"][0], requests["config"]["sine"]
    for variable in sine.model.trainable_variables:
        np.testing.assert_allclose(out(responses, config, f"step_size/{variable.path}"),
                                   [sine.inner_lr] * SINE_STEPS)


@pytest.mark.skipif(shutil.which("saved_model_cli", path=os.path.dirname(sys.executable)) is None,
                    reason="saved_model_cli is not installed next to this Python")
def test_saved_model_cli_shows_the_signatures(exported):
    cli = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
    run = subprocess.run([cli, "show", "--dir", exported["classifier"][1], "--all"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    blocks = {b.split("']", 1)[0]: b for b in run.stdout.split("signature_def['")[1:]}
    assert {*export.SIGNATURES, "serving_default"} <= set(blocks)
    block = blocks["adapt_and_predict"]
    tensor_info = "tensor_info:\n        dtype: {}\n        shape: {}"
    for name, dtype in (("support_x", "DT_FLOAT"), ("support_y", "DT_INT32"), ("query_x", "DT_FLOAT")):
        assert f"inputs['{name}'] {tensor_info.format(dtype, 'unknown_rank')}" in block
    assert f"outputs['probabilities'] {tensor_info.format('DT_FLOAT', f'(-1, {WAYS})')}" in block
    assert f"outputs['classes'] {tensor_info.format('DT_INT32', '(-1)')}" in block
    assert "Method name is: tensorflow/serving/predict" in block


# ----------------------------------------------------------------------------- bad requests
@pytest.fixture(scope="module")
def loaded_classifier(exported):
    return tf.saved_model.load(exported["classifier"][1]).signatures["adapt_and_predict"]


def _good_request():
    rng = np.random.default_rng(0)
    return {"support_x": rng.random((WAYS, IMAGE, IMAGE, 1), np.float32),
            "support_y": np.arange(WAYS, dtype=np.int32),
            "query_x": rng.random((3, IMAGE, IMAGE, 1), np.float32)}


BAD_REQUESTS = {
    "no_channel_axis": ({"support_x": lambda r: r["support_x"][..., 0]},
                        r"support_x must have shape \[num_support, 21, 21, 1\]; got\] \[5 21 21\]"),
    "wrong_image_size": ({"support_x": lambda r: r["support_x"][:, :20]},
                         r"support_x must have shape \[num_support, 21, 21, 1\]; got\] \[5 20 21 1\]"),
    "bad_query": ({"query_x": lambda r: r["query_x"][:, :, :, 0]},
                  r"query_x must have shape \[num_query, 21, 21, 1\]"),
    "one_hot_labels": ({"support_y": lambda r: np.eye(WAYS, dtype=np.int32)},
                       r"support_y must have shape \[num_support\]; got\] \[5 5\]"),
    "label_count": ({"support_y": lambda r: r["support_y"][:3]},
                    r"support_x and support_y must have the same number of examples.*\[5\] \[3\]"),
    "empty_support": ({"support_x": lambda r: r["support_x"][:0], "support_y": lambda r: r["support_y"][:0]},
                      r"support_x is empty"),
    "label_too_large": ({"support_y": lambda r: r["support_y"] + 1},
                        r"support_y holds a class label >= 5: this model is 5-way, "
                        r"labels must be 0..4; got\] \[5\]"),
    "negative_label": ({"support_y": lambda r: r["support_y"] - 1},
                       r"support_y holds a negative class label; labels must be 0..4; got\] \[-1\]"),
    "nan_support": ({"support_x": lambda r: np.where(np.arange(r["support_x"].size).reshape(r["support_x"].shape) == 7,
                                                     np.nan, r["support_x"]).astype(np.float32)},
                    r"support_x holds NaN or Inf values: send finite numbers; count of non-finite values:\] \[1\]"),
    "inf_query": ({"query_x": lambda r: np.full_like(r["query_x"], np.inf)},
                  r"query_x holds NaN or Inf values.*\] \[1323\]"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_name_the_problem(loaded_classifier, case):
    changes, message = BAD_REQUESTS[case]
    request = _good_request()
    request.update({k: change(request) for k, change in changes.items()})
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded_classifier(**{k: tf.constant(v) for k, v in request.items()})


def test_good_request_on_the_loaded_classifier(loaded_classifier):
    response = loaded_classifier(**{k: tf.constant(v) for k, v in _good_request().items()})
    assert response["classes"].shape == (3,)


def test_regression_shapes_are_checked(exported):
    predict = tf.saved_model.load(exported["sine"][1]).signatures["predict"]
    message = r"x must have shape \[num_examples, 1\]; got\] \[4\]"
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        predict(x=tf.zeros([4]))


def test_regression_labels_and_predict_inputs_must_be_finite(exported):
    loaded = tf.saved_model.load(exported["sine"][1])
    x = np.linspace(-5, 5, 10, dtype=np.float32)[:, None]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"support_y holds NaN or Inf values.*\] \[1\]"):
        loaded.signatures["adapt_and_predict"](support_x=x, support_y=np.where(x > 4, np.nan, x), query_x=x)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"x holds NaN or Inf values"):
        loaded.signatures["predict"](x=np.where(x > 0, -np.inf, x))


def test_save_refuses_an_existing_saved_model_unless_told(exported, tmp_path):
    maml, path = exported["sine"][0], shutil.copytree(exported["sine"][1], tmp_path / "model")
    before = sorted(os.listdir(path))
    with pytest.raises(FileExistsError, match="exists and is not empty.*overwrite=True"):
        export.save(maml, path)
    assert sorted(os.listdir(path)) == before
    export.save(maml, path, overwrite=True)
    assert tf.saved_model.load(str(path)).signatures["predict"] is not None


def test_export_needs_a_compiled_maml(tmp_path):
    with pytest.raises(ValueError, match="Compile the MAML before exporting"):
        export.save(MAML(mlp(hidden=(4,))), tmp_path / "model")


def test_inductive_batch_norm_head_only_and_a_loss_given_by_name(tmp_path):
    """Moving BN statistics, ANIL-style head adaptation, Meta-SGD on a conv net, and
    ``loss="sparse_categorical_crossentropy"`` (a softmax model: no logits output)."""
    inputs = keras.Input((IMAGE, IMAGE, 1))
    h = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn", moving_mean_initializer="ones")(h)
    h = keras.layers.Flatten()(keras.layers.ReLU()(h))
    model = keras.Model(inputs, keras.layers.Dense(WAYS, activation="softmax", name="head")(h))
    maml = MAML(model, inner_lr=0.5, eval_inner_steps=2, adapt="head", inner_rule="meta-sgd",
                batch_norm="inductive")
    maml.compile(loss="sparse_categorical_crossentropy")
    for rate in maml.inner_rule.rates:  # as if meta-learned: differ per parameter
        rate.assign(np.random.default_rng(0).uniform(0.1, 1.0, rate.shape).astype(np.float32))
    export.save(maml, tmp_path / "model")
    loaded = tf.saved_model.load(str(tmp_path / "model"))

    request = _good_request()
    served = loaded.signatures["adapt_and_predict"](**{k: tf.constant(v) for k, v in request.items()})
    assert set(served) == {"probabilities", "classes"}
    expected = adapted_prediction(maml, request["support_x"], request["support_y"], request["query_x"])
    np.testing.assert_allclose(served["probabilities"], expected, rtol=1e-4, atol=1e-6)
    # Inductive BN: prediction uses the moving statistics, so it is model(x) itself.
    predicted = loaded.signatures["predict"](x=tf.constant(request["query_x"]))["probabilities"]
    np.testing.assert_allclose(predicted, maml.model(request["query_x"]), rtol=1e-4, atol=1e-6)
    config = loaded.signatures["config"]()
    assert sorted(k for k in config if k.startswith("step_size/")) == ["step_size/head/bias",
                                                                       "step_size/head/kernel"]
    assert config["loss"].numpy() == b"sparse_categorical_crossentropy"
    adapted = loaded.signatures["adapt"](support_x=request["support_x"], support_y=request["support_y"])
    np.testing.assert_array_equal(adapted["conv/kernel"], model.get_layer("conv").kernel.numpy())


# ----------------------------------------------------------------------------- request dtypes
def test_loaded_functions_cast_float64_features_and_int64_labels(exported):
    """numpy's defaults (float64, int64) through ``loaded.<name>``: cast, same answers."""
    loaded = tf.saved_model.load(exported["classifier"][1])
    request = _good_request()
    native = loaded.signatures["adapt_and_predict"](**{k: tf.constant(v) for k, v in request.items()})
    wide = {"support_x": request["support_x"].astype(np.float64),
            "support_y": request["support_y"].astype(np.int64),
            "query_x": request["query_x"].astype(np.float64)}
    for call in (lambda: loaded.adapt_and_predict(**{k: tf.constant(v) for k, v in wide.items()}),
                 lambda: loaded.adapt_and_predict(wide["support_x"], request["support_y"], wide["query_x"]),
                 lambda: loaded.adapt_and_predict(request["support_x"], wide["support_y"], request["query_x"])):
        served = call()
        assert served["classes"].dtype == tf.int32
        for key in native:
            np.testing.assert_array_equal(served[key], native[key])
    adapted = loaded.adapt(support_x=tf.constant(wide["support_x"]), support_y=tf.constant(wide["support_y"]))
    expected = loaded.signatures["adapt"](support_x=request["support_x"], support_y=request["support_y"])
    for key in expected:
        np.testing.assert_array_equal(adapted[key], expected[key])
    np.testing.assert_array_equal(loaded.predict(wide["query_x"])["logits"],
                                  loaded.signatures["predict"](x=request["query_x"])["logits"])

    sine = tf.saved_model.load(exported["sine"][1])
    sx, sy, qx, _ = sine_tasks(1, support=5, query=4, seed=45)[0]
    np.testing.assert_array_equal(
        sine.adapt_and_predict(tf.constant(sx, tf.float64), tf.constant(sy, tf.float64), qx.astype(np.float64))["predictions"],
        sine.signatures["adapt_and_predict"](support_x=sx, support_y=sy, query_x=qx)["predictions"])


def test_a_dtype_that_cannot_be_cast_names_the_input(exported):
    """Strings, uint8 images, float labels: refused naming the input, its dtype and the dtypes it
    takes, the other inputs all in the signature's dtypes or all in numpy's defaults."""
    loaded = tf.saved_model.load(exported["classifier"][1])
    request = _good_request()
    with pytest.raises(tf.errors.InvalidArgumentError, match="support_x has dtype int32; it takes float32 or float64"):
        loaded.adapt_and_predict(request["support_x"].astype(np.int32), request["support_y"],
                                 request["query_x"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="support_y has dtype float32; it takes int32 or int64"):
        loaded.adapt(request["support_x"].astype(np.float64), request["support_y"].astype(np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="query_x has dtype uint8; it takes float32 or float64"):
        loaded.adapt_and_predict(request["support_x"], request["support_y"], (255 * request["query_x"]).astype(np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="x has dtype string; it takes float32 or float64"):
        loaded.predict(tf.constant([["an image"]]))
