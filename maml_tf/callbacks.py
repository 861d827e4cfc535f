"""Keras callbacks the experiment runners share."""
import time

import keras


class SaveCheckpoints(keras.callbacks.Callback):
    """Saves through ``checkpoints`` (a :class:`~maml_tf.experiments.checkpoints.Checkpoints`)
    after every epoch of ``steps_per_epoch`` iterations, with the training seconds summed
    over resumed runs. The fit's last epoch (its end, or a callback before this one that
    stopped training, e.g. :class:`TimeLimit`) keeps only its own checkpoint.

    Resume with ``fit(initial_epoch=checkpoints.restore() // steps_per_epoch)``.
    """

    def __init__(self, checkpoints, steps_per_epoch):
        super().__init__()
        self.checkpoints, self.steps_per_epoch = checkpoints, int(steps_per_epoch)
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        last = self.model.stop_training or epoch + 1 >= self.params["epochs"]
        seconds = float(self.checkpoints.seconds.numpy()) + time.time() - self._started
        self.checkpoints.save((epoch + 1) * self.steps_per_epoch, seconds=seconds, last=last)


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the first epoch end after ``seconds`` (the checkpoint is kept,
    so the same command later resumes). Put it before :class:`SaveCheckpoints`."""

    def __init__(self, seconds):
        super().__init__()
        self.deadline = time.time() + seconds

    def on_epoch_end(self, epoch, logs=None):
        if time.time() > self.deadline:
            self.model.stop_training = True
