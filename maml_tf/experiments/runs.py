"""A run directory: everything one training run keeps, and the one place that knows where.

::

    <run>/run.json            what was trained: experiment, preset, setting, hyperparameters
    <run>/commands.jsonl      which command trained which iterations (reporting.record_training)
    <run>/<part>/checkpoint   the checkpoints of one part ("maml", "pretrained", "oracle", ...):
    <run>/<part>/ckpt-<i>.*   tf.train checkpoints at iteration i (see checkpoints.Checkpoints)
    <run>/<part>/log.csv      the part's training log, one row per checkpointed interval
    <run>/<part>/<name>.csv   other per-interval logs (classification: validation.csv)

(the ``maml`` command adds ``metrics.json`` and ``tensorboard/``). Opening a run directory
to read it (evaluate, export, the latest checkpoint) writes nothing; training records the
run (:meth:`RunDirectory.start`) and trims the logs back to the checkpoint it resumes from
(:meth:`RunDirectory.trim_log`), so logs and weights agree after a kill.
"""
import csv
import dataclasses
import glob
import json
import os

from maml_tf import reporting
from maml_tf.experiments.checkpoints import Checkpoints

RECORD = "run.json"
LOG = "log"
# Files of the formats before tf.train checkpoints (converted by maml_tf.experiments.legacy).
LEGACY = ("preset.json", "config.json", "backup", "*.weights.h5", "*.iterations.json", "*.npz")
CONVERTER = "python -m maml_tf.experiments.legacy"


class RunDirectoryMismatch(ValueError):
    """A run directory holds a run of another experiment or other hyperparameters."""


class LegacyRunDirectory(RunDirectoryMismatch):
    """A run directory in a format from before tf.train checkpoints."""


class RunDirectory:
    """The run directory at ``path``; ``option`` is the command-line option that names it
    (for messages)."""

    def __init__(self, path, option="--run-dir"):
        self.path = os.fspath(path)
        self.option = option

    def __repr__(self):
        return f"RunDirectory({self.path!r})"

    # ------------------------------------------------------------------ the record
    def record(self):
        """The run's record (a dict: experiment, preset, setting, hyperparameters), or None
        for a directory not trained yet."""
        self._refuse_legacy()
        path = os.path.join(self.path, RECORD)
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except ValueError as error:
            raise RunDirectoryMismatch(f"{path} is not a run record ({error}): restore it, or train "
                                       f"again into a new run directory ({self.option}).") from None

    def check(self, experiment, preset, free=()):
        """Raise :class:`RunDirectoryMismatch`, saying what differs, if the directory holds a
        run of another experiment or of hyperparameters other than ``preset`` (a dataclass)'s
        outside ``free`` (budget, evaluation and compute fields, which may change between
        runs of one directory). Writes nothing."""
        recorded = self.record()
        if recorded is None:
            return
        current = record_of(experiment, preset)
        changed = [("experiment", recorded.get("experiment"), experiment)] if recorded.get("experiment") != experiment else []
        # A field a record lacks was added later: the run had its default (e.g. activation relu).
        defaults = _defaults(preset)
        theirs = {**defaults, **recorded.get("hyperparameters", {})}
        ours = {**defaults, **current["hyperparameters"]}
        changed += [(k, theirs.get(k, "(absent)"), ours.get(k, "(absent)")) for k in sorted(theirs.keys() | ours.keys())
                    if k not in free and theirs.get(k, "(absent)") != ours.get(k, "(absent)")]
        if changed:
            details = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, a, b in changed)
            raise RunDirectoryMismatch(
                f"{self.path} holds a run with other hyperparameters ({details}). Use another run "
                f"directory ({self.option}), or delete {self.path} to start this one over.")

    def start(self, experiment, preset, free=(), parts=()):
        """Before training: :meth:`check`, then record ``preset`` (its budget may have grown)
        and make the folders of ``parts``."""
        self.check(experiment, preset, free)
        reporting.write_json(os.path.join(self.path, RECORD), record_of(experiment, preset))
        for part in parts:
            os.makedirs(self.part(part), exist_ok=True)

    # ------------------------------------------------------------------ parts
    def part(self, name):
        """The folder of part ``name``'s checkpoints and logs."""
        return os.path.join(self.path, name)

    def checkpoints(self, part, **objects):
        """Part ``part``'s :class:`~maml_tf.experiments.checkpoints.Checkpoints` of ``objects``;
        refuses checkpoints of an older format or of conv4 with conv biases (naming the converter)."""
        from maml_tf.experiments import conv_bias
        self._refuse_legacy()
        conv_bias.refuse_old_layout(self.path, self.part(part), objects.get("model"))
        return Checkpoints(self.part(part), **objects)

    def has_checkpoint(self, part):
        return bool(Checkpoints(self.part(part)).saved())

    def iteration(self, part):
        """The iteration of ``part``'s latest checkpoint (0 if none), read without a model."""
        return int(self.counter(part, "iteration"))

    def counter(self, part, name):
        """Counter ``name`` (iteration, env_steps, seconds) of ``part``'s latest readable checkpoint
        (0 if none), read without a model."""
        return Checkpoints(self.part(part)).counter(name)

    def log_path(self, part, name=LOG):
        """A per-interval CSV log of ``part``."""
        return os.path.join(self.part(part), f"{name}.csv")

    def trim_log(self, part, column, last, name=LOG):
        """Drop the rows of a log whose ``column`` is past ``last`` (written by a run killed
        before the checkpoint that would have held them), so logs agree with the weights."""
        path = self.log_path(part, name)
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            text = f.read()
        rows = list(csv.reader(text.splitlines()))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        keep = [row for row in body if len(row) == len(header) and _at_most(row[header.index(column)], last)]
        if len(keep) == len(body) and text.endswith("\n"):
            return
        with reporting.atomic_file(path, newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([header] + keep)

    # ------------------------------------------------------------------ history
    def record_training(self, first, last, part="", **compute):
        """Append this command, the iterations it trained and its ``compute`` settings (e.g.
        ``precision``) to the run's history."""
        reporting.record_training(self.path, first, last, part, **compute)

    def training_history(self, part=""):
        return reporting.training_history(self.path, part)

    # ------------------------------------------------------------------ internals
    def _refuse_legacy(self):
        found = sorted(os.path.basename(p) for pattern in LEGACY for p in glob.glob(os.path.join(self.path, pattern)))
        if found:
            raise LegacyRunDirectory(
                f"{self.path} holds checkpoints in the format before tf.train checkpoints ({', '.join(found)}): "
                f"convert it once with `{CONVERTER} {self.path}`.")


def record_of(experiment, preset):
    """The record of a run of ``preset`` (a dataclass) in ``experiment``; fields added later
    (``presets.ADDED_LATER``) are left out at their default, as older records have them."""
    from maml_tf import presets
    hyperparameters = json.loads(json.dumps(dataclasses.asdict(preset)))  # tuples as lists
    defaults = _defaults(preset)
    for field in presets.ADDED_LATER.get(type(preset).__name__, ()):
        if field in hyperparameters and hyperparameters[field] == defaults.get(field):
            del hyperparameters[field]
    return {"experiment": experiment, "preset": preset.name, "setting": getattr(preset, "setting", None),
            "hyperparameters": hyperparameters}


def preset_of(record):
    """The preset (a ``maml_tf.presets`` dataclass) a run record holds."""
    from maml_tf import presets
    hyperparameters = record["hyperparameters"]
    kind = (presets.SinusoidPreset if record["experiment"] == "sinusoid" else
            presets.RLPreset if "env" in hyperparameters else presets.ClassificationPreset)
    return kind(**{k: _tuples(v) for k, v in hyperparameters.items()})


def _defaults(preset):
    """The default of every field of ``preset``'s dataclass, as a record holds it."""
    return json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(preset)
                                  if f.default is not dataclasses.MISSING}))


def _tuples(value):
    """JSON's lists back into the presets' tuples."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _at_most(value, last):
    try:
        return float(value) <= last
    except ValueError:
        return False
