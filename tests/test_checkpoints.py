"""maml_tf.experiments.checkpoints and runs: tf.train checkpoints of a Keras 3 MAML model
with its Adam state and learned step sizes, the latest kept and falling back, and a run
directory that refuses other hyperparameters, old formats, and writes nothing when read."""
import dataclasses
import hashlib
import os

import keras
import numpy as np
import pytest

from maml_tf import presets
from maml_tf.core import MAML
from maml_tf.experiments.checkpoints import CheckpointMismatch, Checkpoints, NoUsableCheckpoint
from maml_tf.experiments import runs
from maml_tf.experiments.runs import LegacyRunDirectory, RunDirectory, RunDirectoryMismatch
from maml_tf.models import mlp


def _maml(seed, hidden=(4,), rule="meta-sgd"):
    keras.utils.set_random_seed(seed)
    maml = MAML(mlp(input_dim=1, hidden=hidden), inner_lr=0.01, inner_rule=rule)
    maml.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
    maml.optimizer.build(maml.trainable_variables)
    return maml


def _state(maml):
    """Every variable a resumed run needs: weights, learned step sizes, Adam's moments and step."""
    return [np.asarray(v) for v in maml.variables + maml.optimizer.variables]


def _scramble(maml, seed):
    rng = np.random.default_rng(seed)
    for v in maml.variables + maml.optimizer.variables:
        v.assign((rng.integers(1, 100, size=v.shape) if "int" in str(v.dtype) else
                  rng.normal(size=v.shape)).astype(np.dtype(str(v.dtype))))


def _store(directory, maml):
    return Checkpoints(directory, model=maml, optimizer=maml.optimizer)


def test_round_trip_holds_weights_step_sizes_adam_state_and_counters(tmp_path):
    saved = _maml(1)
    _scramble(saved, 0)
    assert any("meta_sgd" in v.path for v in saved.trainable_variables)  # learned step sizes
    _store(tmp_path, saved).save(500, env_steps=12, seconds=3.5)

    loaded = _maml(2)
    store = _store(tmp_path, loaded)
    assert store.restore() == 500
    assert (int(store.env_steps.numpy()), float(store.seconds.numpy())) == (12, 3.5)
    for a, b in zip(_state(saved), _state(loaded)):
        np.testing.assert_array_equal(a, b)
    assert int(loaded.optimizer.iterations.numpy()) == int(saved.optimizer.iterations.numpy()) > 0


def test_an_empty_directory_restores_nothing_and_is_not_created(tmp_path):
    assert _store(tmp_path / "none", _maml(1)).restore() == 0
    assert not os.path.exists(tmp_path / "none")


def test_the_latest_two_are_kept_while_training_and_one_when_training_stops(tmp_path):
    store = _store(tmp_path, _maml(1))
    for iteration in (10, 20, 30):
        store.save(iteration)
    assert [os.path.basename(p) for p in store.saved()] == ["ckpt-20", "ckpt-30"]
    os.makedirs(tmp_path / "ckpt-40_temp")  # what a save killed half way leaves
    (tmp_path / "ckpt-40.index").write_bytes(b"partial")
    store.save(35, last=True)
    assert [os.path.basename(p) for p in store.saved()] == ["ckpt-35"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-35.data-00000-of-00001", "ckpt-35.index"]


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, damage, caplog):
    first = _maml(1)
    store = _store(tmp_path, first)
    store.save(10)
    expected = _state(first)
    _scramble(first, 1)
    store.save(20)
    data = tmp_path / "ckpt-20.data-00000-of-00001"
    if damage == "truncate":
        with open(data, "r+b") as f:
            f.truncate(100)
    else:
        os.remove(data)
    loaded = _maml(2)
    with caplog.at_level("WARNING", logger="maml_tf"):
        assert _store(tmp_path, loaded).restore() == 10
    assert len(caplog.records) == 1 and caplog.records[0].levelname == "WARNING"
    assert caplog.messages[0].startswith(f"{tmp_path}: ckpt-20 (")
    assert caplog.messages[0].endswith(") unreadable; using ckpt-10 (iteration 10) instead.")
    for a, b in zip(expected, _state(loaded)):
        np.testing.assert_array_equal(a, b)
    os.remove(tmp_path / "ckpt-10.index")  # nothing left to fall back to
    with pytest.raises(NoUsableCheckpoint, match=f"No usable checkpoint in {tmp_path}.*ckpt-20.*ckpt-10.*delete"):
        _store(tmp_path, _maml(2)).restore()


def test_another_architecture_is_a_mismatch_naming_the_shapes(tmp_path):
    _store(tmp_path, _maml(1, hidden=(4,))).save(1)
    with pytest.raises(CheckpointMismatch, match="shape"):
        _store(tmp_path, _maml(1, hidden=(5,))).restore()


# ----------------------------------------------------------------------------- run directories
SMOKE = presets.get(presets.SINUSOID, "smoke")
FREE = ("name", "iterations")


def test_a_run_directory_refuses_other_hyperparameters_not_another_budget(tmp_path):
    run = RunDirectory(tmp_path / "run", option="--somewhere")
    run.check("sinusoid", SMOKE, FREE)  # nothing recorded yet: anything goes, nothing written
    assert not os.path.exists(tmp_path / "run")
    run.start("sinusoid", SMOKE, FREE, parts=("maml",))
    assert os.path.isdir(run.part("maml"))
    record = run.record()
    assert (record["experiment"], record["preset"], record["setting"]) == ("sinusoid", "smoke", None)
    assert record["hyperparameters"]["hidden"] == list(SMOKE.hidden)
    run.check("sinusoid", dataclasses.replace(SMOKE, iterations=10**6, name="paper"), FREE)
    with pytest.raises(RunDirectoryMismatch) as error:
        run.check("sinusoid", dataclasses.replace(SMOKE, inner_lr=0.5), FREE)
    assert "inner_lr: 0.01 there, 0.5 now" in str(error.value) and "(--somewhere)" in str(error.value)
    with pytest.raises(RunDirectoryMismatch, match="experiment: 'sinusoid' there, 'omniglot' now"):
        run.check("omniglot", SMOKE, FREE)


@pytest.mark.parametrize("old", ["preset.json", "backup", "final.weights.h5", "maml.npz", "config.json"])
def test_an_old_format_directory_names_the_converter(tmp_path, old):
    path = tmp_path / old
    path.mkdir() if "." not in old else path.write_text("{}")
    with pytest.raises(LegacyRunDirectory, match=f"{old}.*python -m maml_tf.experiments.legacy {tmp_path}"):
        RunDirectory(tmp_path).check("sinusoid", SMOKE)


def test_trim_log_drops_rows_past_the_checkpoint_and_a_cut_row(tmp_path):
    run = RunDirectory(tmp_path)
    os.makedirs(run.part("maml"))
    path = run.log_path("maml")
    with open(path, "w") as f:
        f.write("iteration,return\n1,0.5\n2,0.6\n3,0.7\n4,0.")
    run.trim_log("maml", "iteration", 2)
    assert open(path).read() == "iteration,return\n1,0.5\n2,0.6\n"
    before = os.stat(path).st_mtime_ns
    run.trim_log("maml", "iteration", 2)  # nothing to drop: not rewritten
    assert os.stat(path).st_mtime_ns == before


def directory_tree(directory):
    """{relative path: sha256} of every file, and the folders, under ``directory``."""
    out = {}
    for root, folders, files in os.walk(directory):
        for name in folders:
            out[os.path.relpath(os.path.join(root, name), directory)] = "dir"
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.mark.slow
def test_reading_a_run_directory_writes_nothing(tmp_path):
    """Loading the latest checkpoint (evaluate, export) leaves the directory byte-identical."""
    from maml_tf.experiments import sinusoid
    tiny = dataclasses.replace(SMOKE, iterations=100, steps_per_epoch=50)
    trained, _, _ = sinusoid.train(tiny, "maml", str(tmp_path), verbose=0)
    before = directory_tree(tmp_path)
    assert "run.json" in before and "maml/checkpoint" in before
    loaded = sinusoid.load_latest(tiny, str(tmp_path))
    assert sinusoid.check_run_dir(tiny, str(tmp_path)) is None
    assert RunDirectory(tmp_path).iteration("maml") == 100
    assert directory_tree(tmp_path) == before
    for a, b in zip(trained.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)



@pytest.mark.parametrize("experiment, preset", [
    ("sinusoid", SMOKE), ("omniglot", presets.classification(presets.OMNIGLOT, "20way1shot", "code")),
    ("cheetah-dir", presets.LOCOMOTION["cheetah-dir"]["code"])])  # nested tuples: per-method step sizes
def test_a_record_gives_back_its_preset(tmp_path, experiment, preset):
    RunDirectory(tmp_path).start(experiment, preset)
    assert runs.preset_of(RunDirectory(tmp_path).record()) == preset
