"""A run directory's weights: its finished run's and its latest checkpoint, how many
iterations each holds, and a check that they were trained with the hyperparameters asked for."""
import dataclasses
import json
import os
import shutil
import tempfile

import keras

BACKUP_WEIGHTS, BACKUP_METADATA = "latest.weights.h5", "training_metadata.json"  # Keras' names


class _BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' callback, also resuming from the checkpoint before (``*.bkp``) when a kill
    truncated the latest one's metadata: Keras falls back only for unreadable weights."""

    def _load_model(self):
        try:
            super()._load_model()
        except json.JSONDecodeError as error:  # Keras' on_train_begin falls back on OSError
            raise OSError(f"{self._training_metadata_path} is truncated; without the checkpoint "
                          f"before it, delete {self.backup_dir} to start over") from error


def backup_callback(backup_dir):
    """Keras' per-epoch checkpoint, keeping the one before too (``*.bkp``): a kill while one
    is written leaves the other, which training resumes from. Kept after training, as a
    time limit also ends it."""
    return _BackupAndRestore(backup_dir, double_checkpoint=True, delete_checkpoint=False)


def _iterations_path(final):
    return final.removesuffix(".weights.h5") + ".iterations.json"


def _write_json(path, value):
    with open(path + ".partial", "w") as f:
        json.dump(value, f)
    os.replace(path + ".partial", path)


def record_iterations(final, iterations):
    """Record that the weights at ``final`` had ``iterations`` meta-iterations."""
    _write_json(_iterations_path(final), {"iterations": int(iterations)})


def save_final(model, final, iterations):
    """Write a finished run's weights to ``final`` and its iterations beside them, each to a
    temporary file renamed into place (weights first: see :func:`furthest`)."""
    partial = final.removesuffix(".weights.h5") + ".partial.weights.h5"  # Keras needs the suffix
    model.save_weights(partial)
    os.replace(partial, final)
    record_iterations(final, iterations)


def _backup(backup_dir, steps_per_epoch):
    """``(iterations, weights file)`` of Keras' backup in ``backup_dir``, ``(None, None)`` if
    none. A kill while the metadata was written leaves it truncated: then the checkpoint
    before, which ``_BackupAndRestore`` resumes from."""
    path = os.path.join(backup_dir, BACKUP_METADATA)
    weights = os.path.join(backup_dir, BACKUP_WEIGHTS)
    if not os.path.exists(path):
        return None, None
    try:
        with open(path) as f:
            return int(json.load(f)["epoch"]) * steps_per_epoch, weights
    except json.JSONDecodeError:
        if not os.path.exists(path + ".bkp"):
            return None, None
        with open(path + ".bkp") as f:
            return int(json.load(f)["epoch"]) * steps_per_epoch, weights + ".bkp"


def _final_iterations(final, backup, legacy):
    if not os.path.exists(final):
        return None
    if os.path.exists(_iterations_path(final)):
        with open(_iterations_path(final)) as f:
            return int(json.load(f)["iterations"])
    # Final weights from before the record: such a run was never trained further, so its
    # backup is from the same epoch; without a backup, assume the preset's iterations.
    return backup if backup is not None else legacy


def furthest(final, backup_dir, steps_per_epoch, legacy_iterations):
    """``(iterations, weights file)`` of a run's furthest checkpoint, ``(0, None)`` for a new run.

    The final weights win a tie with the backup (BackupAndRestore's, every epoch). A run
    extended past its final weights, or killed between writing them and their record,
    has a backup further on. ``legacy_iterations``: see ``_final_iterations``.
    """
    backup, backup_weights = _backup(backup_dir, steps_per_epoch)
    finished = _final_iterations(final, backup, legacy_iterations)
    if finished is not None and (backup is None or finished >= backup):
        return finished, final
    if backup is not None:
        return backup, backup_weights
    return 0, None


def load(maml, path):
    """Load ``path`` into ``maml``, optimizer state included. Backup weights a kill left
    unreadable fall back to the checkpoint before them (``.bkp``), as training's resume
    does; the metadata still counts that checkpoint's epoch, as Keras writes it last."""
    maml.optimizer.build(maml.trainable_variables)
    try:
        _load_weights(maml, path)
    except OSError:
        if not os.path.exists(path + ".bkp"):
            raise
        _load_weights(maml, path + ".bkp")
    return maml


def _load_weights(maml, path):
    if not path.endswith(".bkp"):
        return maml.load_weights(path)
    with tempfile.TemporaryDirectory() as tmp:  # Keras reads only files named *.weights.h5
        copy = os.path.join(tmp, "previous.weights.h5")
        shutil.copyfile(path, copy)
        maml.load_weights(copy)


PRESET_FILE = "preset.json"  # the hyperparameters a run directory's checkpoints were trained with


class RunDirectoryMismatch(ValueError):
    """A run directory's checkpoints were trained with other hyperparameters."""


def check_preset(run_dir, preset, free=(), option="--run-dir"):
    """Record ``preset`` (a dataclass) in ``run_dir``, or check it against the record.

    Fields in ``free`` (budget, evaluation, compute) may change between runs of the same
    directory; any other difference raises :class:`RunDirectoryMismatch`, which says
    what differs, instead of a weight-loading error from deep inside Keras. A directory
    without a record (made before records existed) gets one. ``option``: the command-line
    option that names the directory, for the message.
    """
    current = {k: v for k, v in dataclasses.asdict(preset).items() if k not in free}
    current = json.loads(json.dumps(current))  # tuples as JSON lists, like the record
    path = os.path.join(run_dir, PRESET_FILE)
    if os.path.exists(path):
        with open(path) as f:
            recorded = json.load(f)
        changed = sorted(k for k in recorded.keys() | current.keys()
                         if recorded.get(k, "(absent)") != current.get(k, "(absent)"))
        if changed:
            details = ", ".join(f"{k}: {recorded.get(k, '(absent)')!r} there, {current.get(k, '(absent)')!r} now"
                                for k in changed)
            raise RunDirectoryMismatch(
                f"{run_dir} holds a run with other hyperparameters ({details}). Use another run "
                f"directory ({option}), or delete {run_dir} to start this one over.")
        return
    os.makedirs(run_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(current, f, indent=1, sort_keys=True)
