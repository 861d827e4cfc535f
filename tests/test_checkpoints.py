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
