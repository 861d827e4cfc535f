"""Mistakes produce clear errors that say what is wrong (messages checked, not only types)."""
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf import MAML, EpisodeError, make_episodes
from maml_tf.models import mlp
from maml_tf.tasks import SinusoidTasks


@pytest.fixture
def maml():
    m = MAML(mlp(hidden=(8,)), inner_lr=0.01)
    m.compile(optimizer="adam", loss="mse")
    return m


@pytest.fixture
def episodes():
    return SinusoidTasks(5, 5).sample(3, seed=[0, 0])[0]


def _classifier(ways=3, **compile_kwargs):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(ways)])
    m = MAML(model, inner_lr=0.1)
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              **compile_kwargs)
    return m


# The default compile(jit_compile="auto") uses XLA for MLPs: the checks must survive it.
JIT_MODES = [pytest.param(False, id="no_xla"),
             pytest.param("auto", id="default_xla")]


def _classification_episodes(max_label=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    y = np.tile(np.arange(3), (2, 2)).astype("int32")
    y[1, -1] = max_label
    return make_episodes(x, y, x, y)


# --------------------------------------------------------------------------- episodes
def test_feature_shape_mismatch_names_both_shapes(maml):
    wrong = SinusoidTasks(5, 5, oracle=True).sample(2, seed=[0, 0])[0]  # 3 features, model has 1
    with pytest.raises(EpisodeError) as info:
        maml.evaluate_tasks(wrong)
    message = str(info.value)
    assert "(3,)" in message and "(1,)" in message and "model expects" in message


def test_feature_shape_mismatch_in_fit(maml):
    wrong = SinusoidTasks(5, 5, oracle=True).dataset(2)
    with pytest.raises(EpisodeError, match=re.escape("Episode features have shape (3,)")):
        maml.fit(wrong, epochs=1, steps_per_epoch=1, verbose=0)


def test_missing_query_key(maml, episodes):
    with pytest.raises(EpisodeError) as info:
        maml.evaluate_tasks({"support": episodes["support"]})
    message = str(info.value)
    assert "'query'" in message and "with keys ['support']" in message


def test_not_a_dict(maml, episodes):
    with pytest.raises(EpisodeError, match="got tuple"):
        maml.evaluate_tasks((episodes["support"], episodes["query"]))


def test_x_without_task_axis(maml, episodes):
    sx, sy = episodes["support"]
    qx, qy = episodes["query"]
    with pytest.raises(EpisodeError) as info:
        maml.evaluate_tasks(make_episodes(sx[0], sy[0], qx[0], qy[0]))
    message = str(info.value)
    assert "support x has shape (5, 1)" in message
    assert "[tasks, examples, *features]" in message and "tf.expand_dims" in message


def test_empty_support_set(maml, episodes):
    sx, sy = episodes["support"]
    with pytest.raises(EpisodeError, match=r"The support set is empty \(shape \(3, 0, 1\)\)"):
        maml.evaluate_tasks(make_episodes(sx[:, :0], sy[:, :0], *episodes["query"]))


def test_task_count_mismatch(maml, episodes):
    qx, qy = episodes["query"]
    with pytest.raises(EpisodeError, match="support has 3 tasks but query has 2"):
        maml.evaluate_tasks(make_episodes(*episodes["support"], qx[:2], qy[:2]))


def test_x_y_example_count_mismatch(maml, episodes):
    sx, sy = episodes["support"]
    with pytest.raises(EpisodeError, match=r"support x .* and y .* disagree on \[tasks, examples\]"):
        maml.evaluate_tasks(make_episodes(sx, sy[:, :4], *episodes["query"]))


def test_labels_out_of_range_eager():
    maml = _classifier(ways=3)
    maml.evaluate_tasks(_classification_episodes(max_label=2))  # valid labels pass
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        maml.evaluate_tasks(_classification_episodes(max_label=3))
    message = str(info.value)
    assert "N-way" in message and "3 outputs" in message and "0..N-1" in message


@pytest.mark.parametrize("jit_compile", JIT_MODES)
def test_labels_out_of_range_in_fit(jit_compile):
    maml = _classifier(ways=3, jit_compile=jit_compile)
    data = tf.data.Dataset.from_tensors(_classification_episodes(max_label=5)).repeat()
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        maml.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    # Either MAML's check or the loss op's own range error fires first (see below).
    assert re.search(r"N-way|label value of 5 which is outside the valid range", str(info.value))


def test_labels_out_of_range_in_fit_always_gives_the_n_way_message():
    maml = _classifier(ways=3, jit_compile=False)
    maml.make_train_function()
    iterator = iter(tf.data.Dataset.from_tensors(_classification_episodes(max_label=5)).repeat())
    messages = []
    for _ in range(100):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            maml.train_function(iterator)
        messages.append("N-way" in str(info.value))
    assert all(messages), f"{messages.count(False)} of 100 steps lacked the N-way message"


def test_negative_labels():
    maml = _classifier(ways=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Class labels must be >= 0"):
        maml.evaluate_tasks(_classification_episodes(max_label=-1))


@pytest.mark.parametrize("jit_compile", JIT_MODES)
def test_nan_inputs_give_a_nan_error(episodes, jit_compile):
    maml = MAML(mlp(hidden=(8,)), inner_lr=0.01)
    maml.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    data = tf.data.Dataset.from_tensors(_poisoned(episodes)).repeat()
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        maml.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    message = str(info.value)
    assert "NaN" in message and "meta-loss" in message and "inner_lr" in message


def _poisoned(episodes):
    sx, sy = episodes["support"]
    return make_episodes(tf.tensor_scatter_nd_update(sx, [[0, 0, 0]], [np.nan]), sy,
                         *episodes["query"])


@pytest.mark.parametrize("jit_compile", JIT_MODES)  # with XLA the step skips its own update
def test_nan_error_is_raised_before_the_weights_are_updated(episodes, jit_compile):
    maml = MAML(mlp(hidden=(8,)), inner_lr=0.01)
    maml.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    before = maml.model.get_weights()
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        maml.fit(tf.data.Dataset.from_tensors(_poisoned(episodes)).repeat(), epochs=1,
                 steps_per_epoch=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, maml.model.get_weights()))
    assert int(maml.optimizer.iterations.numpy()) == 0


# --------------------------------------------------------------------------- construction
def test_unknown_inner_rule():
    with pytest.raises(ValueError) as info:
        MAML(mlp(hidden=(8,)), inner_rule="adam")
    message = str(info.value)
    assert "'adam'" in message and "meta-sgd" in message and "lslr" in message


def test_adapt_selecting_nothing_lists_the_weights():
    with pytest.raises(ValueError) as info:
        MAML(mlp(hidden=(8,)), adapt=[r"^no_such_layer/"])
    message = str(info.value)
    assert "selects no trainable weight" in message
    assert "hidden_0/kernel" in message and "head/bias" in message
    with pytest.raises(ValueError, match="selects no trainable weight"):
        MAML(mlp(hidden=(8,)), adapt=lambda v: False)


def test_unknown_adapt_string():
    with pytest.raises(ValueError, match=r"adapt must be 'all', 'head', 'no_batch_norm'.*got 'body'"):
        MAML(mlp(hidden=(8,)), adapt="body")


def test_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(1)])
    with pytest.raises(ValueError) as info:
        MAML(model)
    message = str(info.value)
    assert "no weights yet" in message and "keras.Input" in message


@pytest.mark.parametrize("not_a_model", [keras.layers.Dense(3), lambda x: x])
def test_non_keras_model(not_a_model):
    with pytest.raises(TypeError) as info:
        MAML(not_a_model)
    message = str(info.value)
    assert "MAML needs a keras.Model" in message and "keras.Sequential" in message


@pytest.mark.parametrize("kwargs", [{"inner_steps": -1}, {"eval_inner_steps": -2}])
def test_negative_inner_steps(kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=f"^{name} must be a whole number >= 0.*, got {value}.$"):
        MAML(mlp(hidden=(8,)), **kwargs)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"inner_lr": 0.0}, "inner_lr must be a finite number > 0, got 0.0"),
    ({"loss_reduction": "sum"}, "loss_reduction must be one of .*got 'sum'"),
    ({"task_parallelism": "threads"}, "task_parallelism must be one of .*got 'threads'"),
    ({"batch_norm": "frozen"}, "batch_norm must be one of .*got 'frozen'"),
])
def test_invalid_options(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        MAML(mlp(hidden=(8,)), **kwargs)


def test_adapt_before_compile(episodes):
    maml = MAML(mlp(hidden=(8,)))
    sx, sy = episodes["support"]
    with pytest.raises(RuntimeError, match=r"Call compile\(optimizer=\.\.\., loss=\.\.\.\) before adapting"):
        maml.adapt(sx[0], sy[0])
    with pytest.raises(RuntimeError, match="Call compile"):
        maml.evaluate_tasks(episodes)


def test_compile_needs_a_loss():
    maml = MAML(mlp(hidden=(8,)))
    with pytest.raises(ValueError, match="compile\\(\\) needs a per-task loss"):
        maml.compile(optimizer="adam", loss=None)
