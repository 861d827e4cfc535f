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
    """Stops training at the first epoch end past ``deadline`` (a
    :class:`~maml_tf.experiments.base.Deadline`, or seconds from now); the checkpoint is kept,
    so the same command later resumes. Put it before :class:`SaveCheckpoints`."""

    def __init__(self, deadline):
        super().__init__()
        from maml_tf.experiments.base import Deadline
        self.deadline = deadline if isinstance(deadline, Deadline) else Deadline(deadline)

    def on_epoch_end(self, epoch, logs=None):
        if self.deadline.passed():
            self.model.stop_training = True


class ProgressLines(keras.callbacks.Callback):
    """One line every ``every`` seconds inside an epoch: with ``fit(verbose=2)`` Keras prints
    a line per epoch only, and a Table 1 epoch (500 iterations) can run an hour into a log
    file. The line gives the iteration reached, the running loss, the seconds per
    iteration so far in this epoch and the minutes until its checkpoint."""

    def __init__(self, steps_per_epoch, every=60.0, echo=None):
        super().__init__()
        self.steps_per_epoch, self.every = int(steps_per_epoch), float(every)
        self.echo = echo or (lambda line: print(line, flush=True))
        self._epoch = self._started = self._last = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._started = epoch, time.time()
        self._last = self._started

    def on_train_batch_end(self, batch, logs=None):
        now = time.time()
        if now - self._last < self.every:
            return
        self._last = now
        done = batch + 1  # iterations of this epoch (the last of a steps_per_execution call)
        seconds = (now - self._started) / done
        total = self.params["epochs"] * self.steps_per_epoch
        loss = (logs or {}).get("loss")
        self.echo(f"iteration {self._epoch * self.steps_per_epoch + done:,}/{total:,}"
                  + ("" if loss is None else f": loss {float(loss):.4f}")
                  + f", {seconds:.2f} s per iteration in this epoch, checkpoint in about "
                  f"{(self.steps_per_epoch - done) * seconds / 60:.0f} min")
