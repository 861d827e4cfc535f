"""The committed checkpoints, converted once from the Keras backups and RL ``.npz`` files
(maml_tf/experiments/legacy.py), hold exactly the old weights (conv4's without the conv
biases, maml_tf/experiments/conv_bias.py), and the converter turns an
old-format directory into the committed one. The old files come from git history."""
import filecmp
import os
import shutil
import subprocess

import numpy as np
import pytest
from test_checkpoints import directory_tree

from maml_tf import presets
from maml_tf.experiments import classification, conv_bias, legacy, rl
from maml_tf.experiments.runs import LegacyRunDirectory, RunDirectory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEFORE = "0d2e004ac9bc920014332fbe6c82bf95e2bd68ed"  # the last commit with the old formats
# The converted directories as committed before any run trained on (the checkpoints keep
# training, so the converter's output is compared with this commit, not with HEAD).
CONVERTED = "d21dac03bd1d87302831e7a71d987e77f2a21392"
OLD_FILES = {
    "checkpoints/table1_omniglot/paper/5way1shot": ["backup/latest.weights.h5", "backup/training_metadata.json",
                                                    "preset.json", "train_log.csv", "validation.csv"],
    "checkpoints/fig4_navigation/paper": [f"{m}{suffix}" for m in rl.TRAINED for suffix in (".npz", "_log.csv")]
                                         + ["preset.json"],
}


def _old(path, out):
    """The file at ``path`` (from the repository's root) before the conversion, into ``out``."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        if subprocess.run(["git", "-C", ROOT, "show", f"{BEFORE}:{path}"], stdout=f,
                          stderr=subprocess.DEVNULL).returncode:
            pytest.skip(f"needs the git history ({BEFORE})")
    return str(out)


def _converted(path, out):
    """The directory at ``path`` as it was at ``CONVERTED``, unpacked into ``out``."""
    os.makedirs(out)
    archive = subprocess.run(["git", "-C", ROOT, "archive", CONVERTED, path], capture_output=True)
    if archive.returncode:
        pytest.skip(f"needs the git history ({CONVERTED})")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return os.path.join(out, path)


def _copy(committed, tmp_path):
    return shutil.copytree(os.path.join(ROOT, committed), tmp_path / "run")


def _variables(maml):
    return [np.asarray(v) for v in maml.variables + maml.optimizer.variables]


@pytest.mark.slow
def test_the_converted_omniglot_20way_checkpoint_holds_the_old_weights(tmp_path):
    committed = "checkpoints/table1_omniglot/paper/20way1shot"
    run_dir = _copy(committed, tmp_path)
    preset = presets.classification(presets.OMNIGLOT, "20way1shot")
    old = classification.build_maml(preset, conv_bias=True)
    old.optimizer.build(old.trainable_variables)
    old.load_weights(_old(f"{committed}/backup/latest.weights.h5", tmp_path / "old" / "latest.weights.h5"))
    loaded = classification.load_latest(preset, str(run_dir))
    assert classification.completed_iterations(str(run_dir)) == 60_000
    assert int(loaded.optimizer.iterations.numpy()) == 60_000  # Adam's step, for its bias correction
    want = conv_bias.without_conv_biases(old)
    got = {key: np.asarray(v) for key, v in conv_bias.state(loaded).items()}
    assert set(got) <= set(want) and len(got) == len(_variables(loaded))
    for key, value in got.items():
        np.testing.assert_array_equal(value, want[key], err_msg=key)
    assert directory_tree(run_dir) == directory_tree(os.path.join(ROOT, committed))  # reading wrote nothing


@pytest.mark.slow
def test_the_converted_navigation_checkpoints_hold_the_old_weights_and_counters(tmp_path):
    committed = "checkpoints/fig4_navigation/paper"
    run_dir = _copy(committed, tmp_path)
    preset = presets.get(presets.NAVIGATION, "paper")
    for method in rl.TRAINED:
        learner = rl.load(preset, method, str(run_dir))
        with np.load(_old(f"{committed}/{method}.npz", tmp_path / "old" / f"{method}.npz")) as old:
            assert (learner.iteration, learner.env_steps, learner.seconds) == (
                int(old["iteration"]), int(old["env_steps"]), float(old["seconds"]))
            for i, v in enumerate(learner.model.trainable_variables):
                np.testing.assert_array_equal(v.numpy(), old[f"w{i}"])


@pytest.mark.slow
@pytest.mark.parametrize("committed", sorted(OLD_FILES))
def test_the_converter_turns_an_old_directory_into_the_committed_one(tmp_path, committed):
    run_dir = tmp_path / "old"
    for name in OLD_FILES[committed]:
        _old(f"{committed}/{name}", run_dir / name)
    with pytest.raises(LegacyRunDirectory, match=f"python -m maml_tf.experiments.legacy {run_dir}"):
        RunDirectory(run_dir).record()
    done = legacy.convert(str(run_dir))
    ours, theirs = RunDirectory(run_dir), RunDirectory(_converted(committed, tmp_path / "converted"))
    assert ours.record() == theirs.record()
    assert done == {part: theirs.iteration(part) for part in done} and done
    for part in done:
        assert sorted(os.listdir(ours.part(part))) == sorted(os.listdir(theirs.part(part)))
        for name in ("log.csv", "validation.csv"):
            if os.path.exists(theirs.log_path(part, name.removesuffix(".csv"))):
                assert filecmp.cmp(ours.log_path(part, name.removesuffix(".csv")),
                                   theirs.log_path(part, name.removesuffix(".csv")), shallow=False)
    assert sorted(os.listdir(run_dir)) == sorted(n for n in os.listdir(theirs.path) if n != "commands.jsonl")
