"""MAML is a keras.Model: compile / fit / evaluate with stock callbacks, config
round trip, and resuming an interrupted fit with BackupAndRestore."""
import copy
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf import MAML
from maml_tf.models import mlp
from maml_tf.tasks import SinusoidTasks

TASKS = SinusoidTasks(support_shots=5, query_shots=5)


def _maml(**kwargs):
    keras.utils.set_random_seed(0)
    maml = MAML(mlp(hidden=(16, 16)), inner_lr=0.01, inner_steps=1, eval_inner_steps=2, **kwargs)
    maml.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return maml


def _data(seed=0):
    return TASKS.dataset(meta_batch_size=4, seed=seed)


@pytest.mark.slow
def test_fit_with_stock_callbacks(tmp_path):
    maml = _maml()
    checkpoint = tmp_path / "ckpt" / "epoch_{epoch}.weights.h5"
    os.makedirs(checkpoint.parent)
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(checkpoint), save_weights_only=True),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.TensorBoard(str(tmp_path / "tb")),
    ]
    history = maml.fit(_data(), epochs=2, steps_per_epoch=5, callbacks=callbacks, verbose=0)
    assert history.epoch == [0, 1]
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    assert int(maml.optimizer.iterations.numpy()) == 10
    assert sorted(os.listdir(checkpoint.parent)) == ["epoch_1.weights.h5", "epoch_2.weights.h5"]
    assert glob.glob(str(tmp_path / "tb" / "train" / "events.out.tfevents.*"))
    # BackupAndRestore deletes its backup after a completed fit.
    assert not glob.glob(str(tmp_path / "backup" / "*.weights.h5"))

    # The checkpoint restores the meta-parameters into a fresh MAML.
    fresh = _maml()
    assert not all(np.allclose(a, b) for a, b in zip(fresh.get_weights(), maml.get_weights()))
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(str(checkpoint.parent / "epoch_2.weights.h5"))
    for a, b in zip(fresh.model.get_weights(), maml.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations.numpy()) == 10  # optimizer state is saved too


@pytest.mark.slow
def test_training_lowers_the_loss():
    maml = _maml()
    maml.optimizer.learning_rate.assign(1e-2)
    history = maml.fit(_data(), epochs=3, steps_per_epoch=40, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.slow
def test_evaluate_returns_the_adapted_query_loss():
    maml = _maml()
    maml.fit(_data(), epochs=1, steps_per_epoch=5, verbose=0)
    episodes, _ = TASKS.sample(6, seed=[3, 3])
    result = maml.evaluate(tf.data.Dataset.from_tensors(episodes), verbose=0, return_dict=True)
    assert set(result) >= {"loss"}
    loss = result["loss"]
    assert np.isfinite(loss) and loss > 0
    # evaluate() scores the query sets after eval_inner_steps (= 2) steps of adaptation.
    per_step = maml.evaluate_tasks(episodes)["loss"].numpy()
    assert per_step.shape == (6, 3)
    np.testing.assert_allclose(loss, per_step[:, 2].mean(), rtol=1e-5)
    assert not np.isclose(loss, per_step[:, 0].mean(), rtol=1e-3)
    # Plain evaluate() on a dict of episodes returns the same loss first.
    scalar_or_list = maml.evaluate(episodes, verbose=0)
    first = scalar_or_list[0] if isinstance(scalar_or_list, list) else scalar_or_list
    np.testing.assert_allclose(first, loss, rtol=1e-6)


def test_evaluate_classification_reports_accuracy():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    maml = MAML(model, inner_lr=0.5, inner_steps=1)
    maml.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    y = np.tile(np.arange(3), (2, 2)).astype("int32")
    result = maml.evaluate({"support": (x, y), "query": (x, y)}, verbose=0, return_dict=True)
    assert 0.0 <= result["accuracy"] <= 1.0
    expected = maml.evaluate_tasks({"support": (x, y), "query": (x, y)})["accuracy"].numpy()[:, 1]
    np.testing.assert_allclose(result["accuracy"], expected.mean(), rtol=1e-6)


def test_config_round_trip():
    keras.utils.set_random_seed(0)
    settings = dict(inner_lr=0.05, inner_steps=2, eval_inner_steps=4, first_order=True,
                    adapt=[r"hidden_1", r"head"], inner_rule="meta-sgd", multi_step_loss=True,
                    multi_step_loss_iterations=77, batch_norm="inductive",
                    loss_reduction="sum_over_shots", task_parallelism="loop")
    maml = MAML(mlp(hidden=(8, 8)), name="my_maml", **settings)
    config = maml.get_config()
    original = json.loads(json.dumps(config))  # plain copy
    clone = MAML.from_config(json.loads(json.dumps(config)))
    for key, value in settings.items():
        got = clone.adapt_spec if key == "adapt" else getattr(clone, key)
        if key == "inner_rule":
            assert type(got) is type(maml.inner_rule)
        else:
            assert list(got) == list(value) if key == "adapt" else got == value, key
    assert clone.name == "my_maml"
    assert clone._adapted == maml._adapted
    assert [v.path for v in clone.model.trainable_variables] == \
        [v.path for v in maml.model.trainable_variables]
    assert [tuple(v.shape) for v in clone.trainable_variables] == \
        [tuple(v.shape) for v in maml.trainable_variables]
    assert json.loads(json.dumps(clone.get_config())) == original


def test_config_is_plain_data():
    config = MAML(mlp(hidden=(8,)), adapt=["head"]).get_config()
    assert type(config["adapt"]) is list
    copy.deepcopy(config)


def test_from_config_does_not_mutate_its_argument():
    config = MAML(mlp(hidden=(8,))).get_config()
    original = copy.deepcopy(config)
    MAML.from_config(config)
    assert config == original
    MAML.from_config(config)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, after_batches):
        super().__init__()
        self.after_batches = after_batches
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after_batches:
            raise RuntimeError("simulated interruption")


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs, self.iterations, self.weights_at_begin, self.weights_at_end = [], [], {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
        self.iterations.append(int(self.model.optimizer.iterations.numpy()))
        self.weights_at_begin[epoch] = self.model.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        self.weights_at_end[epoch] = self.model.model.get_weights()


@pytest.mark.slow
def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    backup = str(tmp_path / "backup")
    first = _maml()
    recorder = _Recorder()
    with pytest.raises(RuntimeError, match="simulated interruption"):
        # 5 steps per epoch; interrupted in the 2nd epoch after 7 batches in total.
        first.fit(_data(), epochs=3, steps_per_epoch=5, verbose=0,
                  callbacks=[keras.callbacks.BackupAndRestore(backup), recorder, _Interrupt(7)])
    assert int(first.optimizer.iterations.numpy()) == 7
    assert os.path.exists(os.path.join(backup, "latest.weights.h5"))

    # A new process would build the same MAML and run the same command again.
    second = _maml()
    resumed = _Recorder()
    history = second.fit(_data(), epochs=3, steps_per_epoch=5, verbose=0,
                         callbacks=[keras.callbacks.BackupAndRestore(backup), resumed])
    assert resumed.epochs == [1, 2]  # epoch 0 is not repeated
    assert resumed.iterations[0] == 5  # the optimizer continues from the backup, not from 0
    for a, b in zip(resumed.weights_at_begin[1], recorder.weights_at_end[0]):
        np.testing.assert_array_equal(a, b)
    assert history.epoch == [1, 2]
    assert int(second.optimizer.iterations.numpy()) == 15


def test_train_on_batch_and_test_on_batch_take_one_meta_batch():
    """Keras hands *_on_batch data over as (x, None, None); one meta-step / evaluation."""
    maml, twin = _maml(), _maml()
    episodes, _ = TASKS.sample(4, seed=[5, 5])
    logs = maml.train_on_batch(episodes, return_dict=True)
    assert int(maml.optimizer.iterations.numpy()) == 1
    twin.fit(tf.data.Dataset.from_tensors(episodes), epochs=1, verbose=0)
    np.testing.assert_allclose(logs["loss"], float(twin.history.history["loss"][0]), rtol=1e-6)
    for a, b in zip(maml.model.get_weights(), twin.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    result = maml.test_on_batch(episodes, return_dict=True)
    np.testing.assert_allclose(result["loss"], maml.evaluate_tasks(episodes)["loss"].numpy()[:, 2].mean(),
                               rtol=1e-5)
