"""A real training killed with SIGKILL at several moments (while a checkpoint is being
written, mid-interval, right after a checkpoint) resumes with the same call, losing at
most the interval in progress: the iteration counter, the log and the weights agree, and
the finished run equals one that was never interrupted."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from maml_tf.experiments.checkpoints import KEEP
from maml_tf.experiments.runs import RunDirectory

# Per kind: the worker (run directory in argv[1]), iterations per checkpoint, iterations in
# all, and the log column that counts intervals.
CASES = {
    "sinusoid": (50, 1000, "epoch", """
import dataclasses, sys, time
import keras
from maml_tf import presets
from maml_tf.experiments import sinusoid
preset = dataclasses.replace(presets.SINUSOID["smoke"], iterations=1000, steps_per_epoch=50, meta_batch_size=5)
# An interval's 50 steps run as one execution in a few ms on a fast CPU: the pause after it
# (trained, not yet saved) makes every interval last long enough for a mid-interval kill.
pause = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: time.sleep(0.2))
sinusoid.train(preset, "maml", sys.argv[1], verbose=0, callbacks=[pause])
"""),
    "navigation": (1, 12, "iteration", """
import dataclasses, sys
from maml_tf import presets
from maml_tf.experiments import rl
rl.train(dataclasses.replace(presets.NAVIGATION["smoke"], iterations=12), "maml", sys.argv[1])
"""),
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A slow disk: TensorFlow has written a checkpoint's data and index and waits 0.3 s before
# it lists the checkpoint in the state file, so that a kill lands in that window for sure.
SLOW_STATE = """
import time
from tensorflow.python.checkpoint import checkpoint_management
_update = checkpoint_management.update_checkpoint_state_internal
def _slow(*args, **kwargs):
    time.sleep(0.3)
    return _update(*args, **kwargs)
checkpoint_management.update_checkpoint_state_internal = _slow
"""


def _start(kind, run_dir, slow_state=False):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = (SLOW_STATE if slow_state else "") + CASES[kind][3]
    return subprocess.Popen([sys.executable, "-c", code, str(run_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _listed(part):
    """Iterations of the checkpoints the state file lists (what a kill must not lose)."""
    try:
        with open(os.path.join(part, "checkpoint")) as f:
            return [int(line.split('"')[1].split("-")[1]) for line in f if line.startswith("all_model_checkpoint_paths")]
    except (FileNotFoundError, IndexError):
        return []


def _writing(part):
    """True while a checkpoint is being written: its files exist but the state does not list it."""
    listed = {f"ckpt-{i}" for i in _listed(part)}
    try:
        names = os.listdir(part)
    except FileNotFoundError:
        return False
    return any(n.startswith("ckpt-") and n.split(".")[0].removesuffix("_temp") not in listed for n in names)


def _kill_when(kind, run_dir, moment, timeout=600):
    """Run the worker until ``moment(part, listed at start)`` holds, then SIGKILL it;
    returns the latest iteration listed just before the kill."""
    part = RunDirectory(run_dir).part("maml")
    start = max(_listed(part), default=0)
    process = _start(kind, run_dir, slow_state=moment is while_writing)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            listed = max(_listed(part), default=0)
            if moment(part, start, listed):
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return listed
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            time.sleep(0.0005)
        raise AssertionError(f"{moment.__name__} never happened")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def while_writing(part, start, listed):
    return listed > start and _writing(part)  # after one checkpoint of this process, so not the first save


def right_after_a_checkpoint(part, start, listed):
    return listed > start


def mid_interval(part, start, listed):
    """Between two checkpoints: 50 ms after the state file last changed."""
    return listed > start and time.time() - os.path.getmtime(os.path.join(part, "checkpoint")) > 0.05 \
        and not _writing(part)


def _intervals_logged(run, column, steps):
    """The intervals the log holds, numbered from 0."""
    with open(run.log_path("maml")) as f:
        values = [int(r[column]) for r in csv.DictReader(f)]
    return values if column == "epoch" else [v // steps - 1 for v in values]


def _weights(kind, run_dir):
    import dataclasses

    from maml_tf import presets
    from maml_tf.experiments import rl, sinusoid
    if kind == "sinusoid":
        preset = dataclasses.replace(presets.SINUSOID["smoke"], iterations=1000, steps_per_epoch=50, meta_batch_size=5)
        return sinusoid.load_latest(preset, str(run_dir)).get_weights()
    learner = rl.load(dataclasses.replace(presets.NAVIGATION["smoke"], iterations=12), "maml", str(run_dir))
    return [v.numpy() for v in learner.model.trainable_variables] + [np.array([learner.iteration, learner.env_steps])]


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_run_killed_at_any_moment_resumes_losing_at_most_the_interval_in_progress(tmp_path, kind):
    steps, iterations, column, _ = CASES[kind]
    reference = tmp_path / "uninterrupted"
    whole = _start(kind, reference)
    assert whole.wait() == 0, whole.stderr.read().decode()[-2000:]

    run_dir = tmp_path / "killed"
    run = RunDirectory(run_dir)
    for moment in (while_writing, mid_interval, right_after_a_checkpoint):
        listed = _kill_when(kind, run_dir, moment)
        restored = run.iteration("maml")  # what the same call resumes from; reading writes nothing
        assert listed <= restored <= listed + steps, (moment.__name__, listed, restored)
        assert restored < iterations
        logged = _intervals_logged(run, column, steps)  # may hold the interval in progress: the resume trims it
        assert logged[:restored // steps] == list(range(restored // steps)), logged
        assert len(logged) <= restored // steps + 1, logged
        # TensorFlow lists a new checkpoint before it deletes the oldest: one more at most.
        assert len(_listed(run.part("maml"))) <= KEEP + 1
    resumed = _start(kind, run_dir)
    assert resumed.wait() == 0, resumed.stderr.read().decode()[-2000:]

    assert run.iteration("maml") == iterations
    assert _intervals_logged(run, column, steps) == list(range(iterations // steps))  # each once, none lost
    assert sorted(os.listdir(run.part("maml"))) == sorted([f"ckpt-{iterations}.data-00000-of-00001",
                                                           f"ckpt-{iterations}.index", "checkpoint", "log.csv"])
    for a, b in zip(_weights(kind, reference), _weights(kind, run_dir)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
