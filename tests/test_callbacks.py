"""maml_tf.callbacks: a checkpoint every epoch through the tf.train stack, training time
summed over resumed fits, and the last epoch of a fit kept alone."""
import os
import time

import keras
import numpy as np
import pytest

from maml_tf.callbacks import ProgressLines, SaveCheckpoints, TimeLimit
from maml_tf.experiments.checkpoints import Checkpoints

STEPS = 3


class _Sleep(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.2)


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.1), "mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _fit(directory, epochs, *callbacks):
    """A fit resumed from ``directory``'s checkpoint, as the experiments resume."""
    model = _model()
    store = Checkpoints(directory, model=model, optimizer=model.optimizer)
    done = store.restore()
    x = np.ones((STEPS * 2, 1), "float32")
    model.fit(x, 2 * x, batch_size=2, epochs=epochs, initial_epoch=done // STEPS, verbose=0,
              callbacks=[*callbacks, _Sleep(), SaveCheckpoints(store, STEPS)])
    return model, store


@pytest.mark.slow
def test_every_epoch_is_saved_and_a_resumed_fit_continues_its_time_and_optimizer(tmp_path):
    whole, _ = _fit(tmp_path / "whole", 4)
    stopped, store = _fit(tmp_path / "parts", 4, TimeLimit(0))  # stopped after its first epoch
    assert store.restore() == STEPS and int(stopped.optimizer.iterations.numpy()) == STEPS
    assert [os.path.basename(p) for p in store.saved()] == [f"ckpt-{STEPS}"]  # a stopped fit keeps one
    first = float(store.seconds.numpy())
    assert 0.2 <= first < 5.0
    resumed, store = _fit(tmp_path / "parts", 4)
    assert store.restore() == 4 * STEPS and int(resumed.optimizer.iterations.numpy()) == 4 * STEPS
    assert 0.8 <= float(store.seconds.numpy()) < first + 10.0  # four epochs of 0.2 s or more in all
    assert [os.path.basename(p) for p in store.saved()] == [f"ckpt-{4 * STEPS}"]
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def _fit_with_progress(every, epochs=2, initial_epoch=0):
    lines = []
    model = _model()
    x = np.ones((STEPS * 2, 1), "float32")
    model.fit(x, 2 * x, batch_size=2, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
              callbacks=[ProgressLines(STEPS, every=every, echo=lines.append)])
    return lines


def test_progress_lines_count_iterations_across_epochs_and_a_resumed_fit():
    lines = _fit_with_progress(every=0, epochs=3, initial_epoch=1)  # resumed after epoch 1
    assert [line.split(":")[0] for line in lines] == [f"iteration {i}/{3 * STEPS}"
                                                      for i in range(STEPS + 1, 3 * STEPS + 1)]
    assert all("loss " in line and "s per iteration" in line for line in lines)
    assert lines[STEPS - 1].endswith("checkpoint in about 0 min")  # an epoch's last iteration


def test_progress_lines_wait_their_interval():
    assert _fit_with_progress(every=3600) == []
