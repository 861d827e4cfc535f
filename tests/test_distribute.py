"""Meta-training under tf.distribute equals meta-training on one device.

MirroredStrategy runs over two logical CPUs and MultiWorkerMirroredStrategy over two
local worker processes; both need TensorFlow configured at start-up, so they run in
child processes (tests/distribute_worker.py) and this process stays single-CPU.
"""
import json
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

import distribute_worker
from maml_tf import distribute

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 600  # seconds per child process: ~20-60 s alone, several times that on busy cores
ATOL = 1e-5  # float32 sums in a different order


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return {**env, "CUDA_VISIBLE_DEVICES": "", **extra}


def _run_worker(tmp_path, *args):
    out = tmp_path / f"{args[0]}.npz"
    done = subprocess.run([sys.executable, "distribute_worker.py", args[0], str(out), *args[1:]],
                          cwd=HERE, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-5000:]
    return np.load(out)


def _assert_same_weights(results, a, b):
    keys = [k.split("/", 1)[1] for k in results.files if k.startswith(f"{a}/")]
    assert keys
    for key in keys:
        np.testing.assert_allclose(results[f"{b}/{key}"], results[f"{a}/{key}"], rtol=1e-5,
                                   atol=ATOL, err_msg=f"{a} vs {b}: {key}")


# --------------------------------------------------------------------- MirroredStrategy
@pytest.mark.parametrize("kind", ["mlp", "conv"])
@pytest.mark.slow
def test_mirrored_meta_step_equals_one_device(tmp_path, kind):
    """mlp: Keras MSE loss object; conv: inductive BN + sum_over_shots + cross-entropy."""
    results = _run_worker(tmp_path, "mirrored", kind)
    _assert_same_weights(results, "single", "mirrored")
    # every replica holds the same weights, BN moving statistics included
    spreads = {k: float(results[k]) for k in results.files if k.startswith("spread/")}
    assert max(spreads.values()) == 0.0, spreads
    # metrics are the mean over the whole meta-batch, in fit and evaluate
    np.testing.assert_allclose(results["mirrored_loss"], results["single_loss"], rtol=1e-5)
    # the meta-test path (evaluate_tasks) runs on a model trained under the strategy
    np.testing.assert_allclose(results["mirrored_tasks"], results["single_tasks"], rtol=1e-5)
    for key in [k for k in results.files if k.startswith("single_evaluate/")]:
        np.testing.assert_allclose(results[key.replace("single", "mirrored", 1)], results[key],
                                   rtol=1e-5, err_msg=key)
    assert "3 tasks does not split evenly over 2 replicas" in str(results["uneven_error"])


@pytest.mark.slow
def test_checkpoints_move_between_strategies(tmp_path):
    """A BackupAndRestore backup written under MirroredStrategy resumes on one device
    and vice versa, optimizer state included."""
    results = _run_worker(tmp_path, "checkpoints", str(tmp_path))
    for resumed in ("to_single", "to_mirrored"):
        assert int(results[f"{resumed}_epochs_run"]) == 1  # the backed-up epoch is skipped
        _assert_same_weights(results, "reference", resumed)


# --------------------------------------------------------- MultiWorkerMirroredStrategy
def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_multi_worker_equals_one_process(tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    try:
        for index in range(2):
            config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            with open(tmp_path / f"worker{index}.log", "w") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "distribute_worker.py", "worker", str(tmp_path / f"worker{index}.npz")],
                    cwd=HERE, env=_env(TF_CONFIG=config), stdout=subprocess.DEVNULL, stderr=log))
        for index, process in enumerate(processes):
            code = process.wait(timeout=TIMEOUT)
            assert code == 0, (tmp_path / f"worker{index}.log").read_text()[-5000:]
    finally:  # a failed or hung worker leaves the other waiting in a collective
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    reference, logs = distribute_worker.train("mlp", tf.distribute.get_strategy(), steps=2)
    results = [np.load(tmp_path / f"worker{index}.npz") for index in range(2)]
    # each worker meta-trains on its own half of every meta-batch
    meta_batch = next(iter(distribute_worker.meta_batches("mlp", 2)))["support"][0].numpy()
    np.testing.assert_array_equal(np.concatenate([r["support_x"] for r in results]), meta_batch)
    for v in reference.weights:
        expected = np.asarray(v)
        np.testing.assert_array_equal(results[1][f"worker/{v.path}"], results[0][f"worker/{v.path}"])
        np.testing.assert_allclose(results[0][f"worker/{v.path}"], expected, rtol=1e-5, atol=ATOL,
                                   err_msg=v.path)
    np.testing.assert_allclose(results[0]["loss"], logs["loss"], rtol=1e-5)


# ------------------------------------------------------------------------------ errors
def test_meta_batch_must_split_evenly():
    four = types.SimpleNamespace(num_replicas_in_sync=4)
    assert distribute.check_meta_batch(8, four) == 2
    with pytest.raises(ValueError, match="6 tasks does not split evenly over 4 replicas.*multiple of 4"):
        distribute.check_meta_batch(6, four)
    unknown = tf.data.Dataset.from_tensors({"support": (tf.zeros([4, 2, 1]), tf.zeros([4, 2, 1])),
                                            "query": (tf.zeros([4, 2, 1]), tf.zeros([4, 2, 1]))})
    with pytest.raises(ValueError, match="must be static"):
        distribute.shard_episodes(unknown.unbatch().batch(4), four)
    with pytest.raises(ValueError, match="does not split evenly"):
        distribute.shard_episodes(unknown.unbatch().batch(3, drop_remainder=True), four)
    assert distribute.shard_episodes(unknown, four).element_spec == unknown.element_spec


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{cluster: ", "not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'needs "cluster"'),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', '"host:port"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', 'needs "task"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "in 0..1"),
])
def test_bad_tf_config_is_explained(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(distribute.TFConfigError, match=message):
        distribute.strategy("multi-worker")


def test_strategy_names():
    assert distribute.strategy("default").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="one of .*mirrored"):
        distribute.strategy("tpu")
