"""maml_tf.experiments.checkpoints: which checkpoint of a run directory is the furthest, and
how many iterations it holds (final weights, their record, Keras' backup)."""
import json
import os

import pytest

from maml_tf.experiments import checkpoints

STEPS_PER_EPOCH, PRESET_ITERATIONS = 10, 50


@pytest.fixture
def run(tmp_path):
    final, backup = str(tmp_path / "final.weights.h5"), str(tmp_path / "backup")

    def state(final_weights=False, record=None, backup_epoch=None):
        if final_weights:
            open(final, "w").close()  # furthest() never opens the weights
        if record is not None:
            checkpoints.record_iterations(final, record)
        if backup_epoch is not None:
            os.makedirs(backup, exist_ok=True)
            with open(os.path.join(backup, checkpoints.BACKUP_METADATA), "w") as f:
                json.dump({"epoch": backup_epoch, "batch": 0}, f)
        return checkpoints.furthest(final, backup, STEPS_PER_EPOCH, PRESET_ITERATIONS)

    return state, final, os.path.join(backup, checkpoints.BACKUP_WEIGHTS)


def test_a_new_run_has_none(run):
    state, _, _ = run
    assert state() == (0, None)


def test_an_unfinished_run_is_at_its_backup(run):
    state, _, backup = run
    assert state(backup_epoch=3) == (30, backup)


def test_final_weights_win_a_tie(run):
    state, final, _ = run
    assert state(final_weights=True, record=40, backup_epoch=4) == (40, final)


def test_a_run_extended_past_its_final_weights_is_at_its_backup(run):
    """Also a kill between writing new final weights and their record."""
    state, _, backup = run
    assert state(final_weights=True, record=40, backup_epoch=6) == (60, backup)


def test_final_weights_without_a_record_are_as_far_as_the_backup(run):
    """Runs finished before the record existed were never trained past their final weights."""
    state, final, _ = run
    assert state(final_weights=True, backup_epoch=8) == (80, final)


def test_final_weights_alone_are_assumed_at_the_presets_iterations(run):
    state, final, _ = run
    assert state(final_weights=True) == (PRESET_ITERATIONS, final)


def _truncate(path, size=10):
    with open(path, "r+b") as f:
        f.truncate(size)


def test_truncated_backup_metadata_falls_back_to_the_checkpoint_before(run, tmp_path):
    """A kill while Keras wrote the metadata: the previous checkpoint (*.bkp), which
    training resumes from, is the furthest."""
    state, _, backup = run
    state(backup_epoch=3)
    metadata = os.path.join(os.path.dirname(backup), checkpoints.BACKUP_METADATA)
    os.replace(metadata, metadata + ".bkp")
    with open(metadata, "w") as f:
        f.write('{"epoch": 4, "ba')
    assert checkpoints.furthest(str(tmp_path / "final.weights.h5"), os.path.dirname(backup),
                                STEPS_PER_EPOCH, PRESET_ITERATIONS) == (30, backup + ".bkp")
    os.remove(metadata + ".bkp")  # the first checkpoint ever: nothing to fall back to
    assert checkpoints.furthest(str(tmp_path / "final.weights.h5"), os.path.dirname(backup),
                                STEPS_PER_EPOCH, PRESET_ITERATIONS) == (0, None)


def _maml(seed):
    import keras

    from maml_tf.core import MAML
    from maml_tf.models import mlp
    keras.utils.set_random_seed(seed)
    maml = MAML(mlp(input_dim=1, hidden=(4,)), inner_lr=0.01)
    maml.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
    maml.optimizer.build(maml.trainable_variables)
    return maml


def test_load_falls_back_to_the_checkpoint_before_unreadable_weights(tmp_path):
    import numpy as np
    path = str(tmp_path / checkpoints.BACKUP_WEIGHTS)
    _maml(1).save_weights(path)
    os.replace(path, path + ".bkp")  # as BackupAndRestore(double_checkpoint=True) keeps it
    _maml(2).save_weights(path)
    _truncate(path, 1000)  # killed while writing the next checkpoint
    loaded = checkpoints.load(_maml(3), path)
    for a, b in zip(_maml(1).get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    os.remove(path + ".bkp")
    with pytest.raises(OSError):
        checkpoints.load(_maml(3), path)
