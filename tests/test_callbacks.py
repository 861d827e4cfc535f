"""maml_tf.callbacks: training time survives a resume."""
import time

import keras
import numpy as np
import pytest

from maml_tf.callbacks import TrainingClock


class _Sleep(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.2)


def _fit(clock_path, epochs, initial_epoch=0):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((4, 1), "float32")
    # The clock must run after the sleep to count it, as it runs after training work.
    model.fit(x, x, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
              callbacks=[_Sleep(), TrainingClock(clock_path)])


def test_missing_clock_is_zero(tmp_path):
    assert TrainingClock.total(str(tmp_path / "none.json")) == 0.0


@pytest.mark.slow
def test_total_accumulates_across_resumed_fits(tmp_path):
    path = str(tmp_path / "clock.json")
    _fit(path, epochs=2)
    first = TrainingClock.total(path)
    assert 0.4 <= first < 5.0
    _fit(path, epochs=3, initial_epoch=2)  # a resumed run: one more epoch, a new callback
    second = TrainingClock.total(path)
    assert 0.2 <= second - first < 5.0
