"""A run directory's weights: loading the finished run's, else its latest checkpoint, and
checking that they were trained with the hyperparameters asked for."""
import dataclasses
import json
import os


def load_first(maml, paths, missing):
    """Load the first existing file of ``paths`` into ``maml`` (optimizer state included).

    Raises ``FileNotFoundError(missing)`` when none exists.
    """
    for path in paths:
        if os.path.exists(path):
            maml.optimizer.build(maml.trainable_variables)
            maml.load_weights(path)
            return maml
    raise FileNotFoundError(missing)


PRESET_FILE = "preset.json"  # the hyperparameters a run directory's checkpoints were trained with


class RunDirectoryMismatch(ValueError):
    """A run directory's checkpoints were trained with other hyperparameters."""


def check_preset(run_dir, preset, free=()):
    """Record ``preset`` (a dataclass) in ``run_dir``, or check it against the record.

    Fields in ``free`` (budget, evaluation, compute) may change between runs of the same
    directory; any other difference raises :class:`RunDirectoryMismatch`, which says
    what differs, instead of a weight-loading error from deep inside Keras. A directory
    without a record (made before records existed) gets one.
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
                f"directory (--run-dir), or delete {run_dir} to start this one over.")
        return
    os.makedirs(run_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(current, f, indent=1, sort_keys=True)
