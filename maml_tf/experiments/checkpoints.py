"""One part of a run's checkpoints (a model with its optimizer, or a policy): TensorFlow's
``tf.train.Checkpoint`` with the training counters, kept by a ``tf.train.CheckpointManager``.

TensorFlow writes a checkpoint's data and index first and then, atomically, the
``checkpoint`` state file that lists it, so a process killed at any moment leaves the
checkpoints listed before intact; the latest ``KEEP`` are kept while training, so a
latest one damaged later (a bad disk, a truncated copy) falls back to the one before.
"""
import glob
import logging
import os
import shutil

import tensorflow as tf

KEEP = 2  # checkpoints kept while training; one once training stops
PREFIX = "ckpt"  # files ckpt-<iteration>.index and ckpt-<iteration>.data-*
log = logging.getLogger("maml_tf")
_DAMAGED_STATE_SEEN = set()


class CheckpointMismatch(ValueError):
    """A checkpoint holds the variables of another model or policy architecture."""


class NoUsableCheckpoint(OSError):
    """Every checkpoint a directory lists is damaged or missing."""


def resuming(directory, iteration, target):
    """Say on the ``maml_tf`` logger (which the ``maml`` command prints) that training goes on
    from the checkpoint of ``iteration`` (``ckpt-<iteration>``: checkpoints are numbered so)."""
    log.info("resuming from iteration %d (%s, %s-%d) up to %d", iteration, directory, PREFIX, iteration, target)


class Checkpoints:
    """The checkpoints of ``objects`` (trackables: a Keras model, its optimizer, ...) in
    ``directory``, with the counters a resumed run continues from.

    Counters (``tf.Variable`` s, saved with the objects): ``iteration`` (meta-iterations
    done), ``env_steps`` (environment steps sampled, RL) and ``seconds`` (of training,
    summed over resumed runs). Numbered by iteration: ``ckpt-500`` holds iteration 500.
    Reading (:meth:`restore`, :meth:`saved`) writes nothing.
    """

    def __init__(self, directory, **objects):
        self.directory = os.fspath(directory)
        self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
        self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="seconds")
        self._checkpoint = tf.train.Checkpoint(iteration=self.iteration, env_steps=self.env_steps,
                                               seconds=self.seconds, **objects)

    def saved(self):
        """Paths (prefixes) of the checkpoints the state file lists, oldest first; a damaged
        state file lists the checkpoint files found beside it instead."""
        try:
            state = tf.train.get_checkpoint_state(self.directory)  # None for a garbled one, too
        except Exception:  # noqa: BLE001 (a file it cannot read at all)
            state = None
        if state is None and os.path.exists(os.path.join(self.directory, "checkpoint")):
            if self.directory not in _DAMAGED_STATE_SEEN:  # said once, not at every read
                _DAMAGED_STATE_SEEN.add(self.directory)
                log.warning("%s: the checkpoint state file is damaged; using the checkpoint files beside it.",
                            self.directory)
            return _listed_by_files(self.directory)
        return list(state.all_model_checkpoint_paths) if state else []

    def restore(self):
        """Load the latest readable checkpoint; returns its iteration (0 if there is none).

        A checkpoint whose files are damaged or missing falls back to the one before, with a
        warning on the ``maml_tf`` logger naming both; none readable raises ``OSError`` saying
        what to do; a checkpoint of other variables raises :class:`CheckpointMismatch`.
        """
        saved = self.saved()
        errors = []
        for path in reversed(saved):
            try:
                self._checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, IndexError, OSError) as error:  # a missing or cut file: the one before
                errors.append(f"{os.path.basename(path)} ({str(error).strip().splitlines()[0]})")
                continue
            except (ValueError, AssertionError) as error:
                raise CheckpointMismatch(f"{path} holds another architecture's variables: "
                                         f"{str(error).splitlines()[0]}") from None
            if errors:  # never a silent loss: say what was skipped and what was used instead
                log.warning("%s: %s unreadable; using %s (iteration %d) instead.", self.directory,
                            "; ".join(errors), os.path.basename(path), int(self.iteration.numpy()))
            return int(self.iteration.numpy())
        if errors:
            raise NoUsableCheckpoint(
                f"No usable checkpoint in {self.directory} ({'; '.join(errors)} unreadable): restore its files from a "
                f"copy, or delete {self.directory} to train this part again from the start.")
        return 0

    def counter(self, name):
        """Counter ``name`` (iteration, env_steps, seconds) of the latest readable checkpoint
        (the one :meth:`restore` loads), read without the objects; 0 if there is none."""
        for path in reversed(self.saved()):
            try:
                return tf.train.load_variable(path, f"{name}/.ATTRIBUTES/VARIABLE_VALUE").item()
            except (tf.errors.OpError, OSError, ValueError):  # damaged: the one before, as restore does
                continue
        return 0

    def save(self, iteration, env_steps=None, seconds=None, last=False):
        """Write a checkpoint at ``iteration`` (with the counters given); ``last``: training
        stops here, so only this checkpoint is kept (one copy to commit or copy)."""
        self.iteration.assign(int(iteration))
        if env_steps is not None:
            self.env_steps.assign(int(env_steps))
        if seconds is not None:
            self.seconds.assign(float(seconds))
        manager = tf.train.CheckpointManager(self._checkpoint, self.directory, max_to_keep=1 if last else KEEP,
                                             checkpoint_name=PREFIX)
        path = manager.save(checkpoint_number=int(iteration))
        if last:  # files of checkpoints a killed save left unlisted
            for stale in glob.glob(os.path.join(self.directory, f"{PREFIX}-*")):
                if not stale.startswith(path + "."):
                    shutil.rmtree(stale) if os.path.isdir(stale) else os.remove(stale)
        return path


def _listed_by_files(directory):
    """The checkpoint prefixes ``<directory>/ckpt-<i>`` that have an index file, by iteration."""
    found = []
    for index in glob.glob(os.path.join(directory, f"{PREFIX}-*.index")):
        number = os.path.basename(index)[len(PREFIX) + 1:-len(".index")]
        if number.isdigit():
            found.append((int(number), index[:-len(".index")]))
    return [path for _, path in sorted(found)]
