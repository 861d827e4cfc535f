"""Convert a run directory from the formats before tf.train checkpoints, once.

Old formats (classification and RL): Keras ``BackupAndRestore`` backups
(``backup/latest.weights.h5`` with ``training_metadata.json``), a finished run's
``final.weights.h5`` (with ``final.iterations.json``), RL ``<method>.npz``, and the records
``preset.json`` / ``config.json``. Each part's furthest weights become its one tf.train
checkpoint, checked to hold exactly the old values before the old files are deleted; conv4 runs
then lose their conv biases (:mod:`maml_tf.experiments.conv_bias`, the format since the end of 2026-12-05)::

    python -m maml_tf.experiments.legacy checkpoints/table1_omniglot/paper/5way1shot
"""
import csv
import dataclasses
import json
import os
import shutil
import sys

import numpy as np

from maml_tf import presets, reporting
from maml_tf.experiments import conv_bias, runs
from maml_tf.experiments.checkpoints import Checkpoints

OLD_RECORDS = ("preset.json", "config.json")


def convert(run_dir):
    """Convert ``run_dir`` in place; returns ``{part: iteration}`` of its checkpoints."""
    experiment, preset = _preset(run_dir)
    if hasattr(preset, "env"):
        done = _convert_rl(run_dir, preset)
    elif hasattr(preset, "dataset"):
        done = _convert_classification(run_dir, preset)
    else:  # never committed: its runs take minutes
        raise ValueError(f"{run_dir} is a sinusoid run of the old format: train it again into a new run directory.")
    reporting.write_json(os.path.join(run_dir, runs.RECORD), runs.record_of(experiment, preset))
    for name in OLD_RECORDS + ("backup",):
        path = os.path.join(run_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.path.exists(path) and os.remove(path)
    if done and hasattr(preset, "dataset"):
        conv_bias.convert(run_dir)
    return done


# ----------------------------------------------------------------------------- the preset
def _preset(run_dir):
    """``(experiment, preset)`` the old record names; among presets that differ only in
    budget, the one the directory's path names (else the paper's)."""
    config = os.path.join(run_dir, "config.json")
    if os.path.exists(config):  # the CLI's: every hyperparameter
        with open(config) as f:
            saved = json.load(f)
        return saved["experiment"], runs.preset_of(saved)
    with open(os.path.join(run_dir, "preset.json")) as f:
        recorded = json.load(f)
    candidates = _candidates(recorded)
    matches = [(experiment, p) for experiment, p in candidates
               if all(_plain(getattr(p, k, None)) == v for k, v in recorded.items())]
    if not matches:
        raise ValueError(f"{run_dir}/preset.json matches no preset of maml_tf.presets.")
    parts = set(os.path.normpath(run_dir).split(os.sep))
    named = [m for m in matches if m[1].name in parts] or [m for m in matches if m[1].name == "paper"] or matches
    return named[0]


def _candidates(recorded):
    if "env" in recorded:
        tables = [presets.NAVIGATION, *presets.LOCOMOTION.values()]
        return [(p.env, p) for table in tables for p in table.values()]
    if "dataset" in recorded:
        return [(p.dataset, p) for table in (presets.OMNIGLOT, presets.MINI_IMAGENET) for setting in table
                for p in (presets.classification(table, setting, budget) for budget in presets.BUDGETS)]
    return [("sinusoid", p) for p in presets.SINUSOID.values()]


def _plain(value):
    return json.loads(json.dumps(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value))


# ----------------------------------------------------------------------------- Keras backups
def _convert_classification(run_dir, preset):
    """The Keras backup or final weights (model and Adam state), whichever is further ->
    the tf.train checkpoint of part "maml"; the logs into its folder."""
    from maml_tf.experiments import classification
    run = runs.RunDirectory(run_dir)
    sources = _keras_sources(run_dir, preset)
    if not sources:
        return {}
    iteration = max(i for i, _ in sources)
    furthest = [path for i, path in sources if i == iteration]
    old = _read_keras(preset, furthest[0])
    for path in furthest[1:]:  # final weights beside a backup of the same iteration: one copy
        _assert_equal(_state(old), _state(_read_keras(preset, path)), f"{path} and {furthest[0]}")
    os.makedirs(run.part(classification.PART), exist_ok=True)
    for name, target in (("train_log.csv", runs.LOG), ("validation.csv", classification.VALIDATION)):
        if os.path.exists(os.path.join(run_dir, name)):
            os.replace(os.path.join(run_dir, name), run.log_path(classification.PART, target))
    part = run.part(classification.PART)
    Checkpoints(part, model=old, optimizer=old.optimizer).save(
        iteration, seconds=_seconds(run, classification.PART, iteration), last=True)
    fresh = classification.build_maml(preset, conv_bias=True)
    fresh.optimizer.build(fresh.trainable_variables)
    assert Checkpoints(part, model=fresh, optimizer=fresh.optimizer).restore() == iteration
    _assert_equal(_state(old), _state(fresh), f"{run_dir} converted")
    for name in ("final.weights.h5", "final.iterations.json"):
        if os.path.exists(os.path.join(run_dir, name)):
            os.remove(os.path.join(run_dir, name))
    return {classification.PART: iteration}


def _keras_sources(run_dir, preset):
    """``[(iteration, weights file)]`` of the backup and the final weights."""
    sources = []
    metadata = os.path.join(run_dir, "backup", "training_metadata.json")
    backup_iteration = None
    if os.path.exists(metadata):
        with open(metadata) as f:
            backup_iteration = int(json.load(f)["epoch"]) * preset.steps_per_epoch
        sources.append((backup_iteration, os.path.join(run_dir, "backup", "latest.weights.h5")))
    final = os.path.join(run_dir, "final.weights.h5")
    if os.path.exists(final):
        record = os.path.join(run_dir, "final.iterations.json")
        if os.path.exists(record):
            with open(record) as f:
                iteration = int(json.load(f)["iterations"])
        else:  # from before the record: never trained past it
            iteration = backup_iteration if backup_iteration is not None else preset.iterations
        sources.append((iteration, final))
    return sources


def _read_keras(preset, path):
    from maml_tf.experiments import classification
    maml = classification.build_maml(preset, conv_bias=True)  # Keras backups predate bias-free conv4
    maml.optimizer.build(maml.trainable_variables)
    maml.load_weights(path)
    return maml


def _state(maml):
    return [np.asarray(v) for v in maml.variables + maml.optimizer.variables]


def _seconds(run, part, iteration):
    """Training seconds up to ``iteration``: the sum of the validation log's epochs."""
    path = run.log_path(part, "validation")
    if not os.path.exists(path):
        return 0.0
    with open(path) as f:
        rows = {int(r["iteration"]): float(r["seconds"]) for r in csv.DictReader(f)}
    return sum(s for i, s in rows.items() if i <= iteration)


# ----------------------------------------------------------------------------- RL .npz
def _convert_rl(run_dir, preset):
    from maml_tf.experiments import rl
    run = rl.run_directory(run_dir)
    done = {}
    for method in rl.TRAINED:
        path = os.path.join(run_dir, f"{method}.npz")
        if not os.path.exists(path):
            continue
        learner = rl.build(preset, method)
        with np.load(path) as data:
            arrays = [data[f"w{i}"] for i in range(len(learner.model.trainable_variables))]
            for v, a in zip(learner.model.trainable_variables, arrays):
                v.assign(a)
            learner.iteration, learner.env_steps = int(data["iteration"]), int(data["env_steps"])
            learner.seconds = float(data["seconds"])
        os.makedirs(run.part(method), exist_ok=True)
        log = os.path.join(run_dir, f"{method}_log.csv")
        if os.path.exists(log):
            os.replace(log, run.log_path(method))
        learner.checkpoint(run.part(method), last=True)
        fresh = rl.build(preset, method)
        fresh.restore(run.part(method))
        assert (fresh.iteration, fresh.env_steps, fresh.seconds) == (learner.iteration, learner.env_steps, learner.seconds)
        _assert_equal(arrays, [np.asarray(v) for v in fresh.model.trainable_variables], f"{path} converted")
        os.remove(path)
        done[method] = learner.iteration
    return done


def _assert_equal(a, b, what):
    if len(a) != len(b) or any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b)):
        raise AssertionError(f"{what}: the weights differ")


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    for run_dir in argv:
        print(f"{run_dir}: {convert(run_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
