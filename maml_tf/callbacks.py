"""Keras callbacks the experiment runners share."""
import json
import os
import time

import keras


class TrainingClock(keras.callbacks.Callback):
    """Adds each epoch's wall-clock seconds to a JSON total at ``path``, so that a run
    resumed from a checkpoint reports its whole training time, not its last part."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._started = None

    @staticmethod
    def total(path):
        if not os.path.exists(path):
            return 0.0
        with open(path) as f:
            return float(json.load(f)["seconds"])

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        total = self.total(self.path) + time.time() - self._started
        with open(self.path + ".tmp", "w") as f:
            json.dump({"seconds": total, "epochs": epoch + 1}, f)
        os.replace(self.path + ".tmp", self.path)


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the first epoch end after ``seconds`` (the checkpoint is kept,
    so the same command later resumes)."""

    def __init__(self, seconds):
        super().__init__()
        self.deadline = time.time() + seconds

    def on_epoch_end(self, epoch, logs=None):
        if time.time() > self.deadline:
            self.model.stop_training = True
