"""Sampling split over worker processes (ProcessBatchedEnvironment, sampling_workers=N):
the same trajectories as one process, and workers that stop on an error or an interrupt."""
import os
import signal

import keras
import numpy as np
import pytest

from maml_tf import presets
from maml_tf.models.policy import gaussian_mlp_policy
from maml_tf.rl import envs
from maml_tf.rl.envs.processes import ProcessBatchedEnvironment, SamplingWorkerError
from maml_tf.rl.learner import PolicyLearner
from maml_tf.rl.sampler import Sampler

# Restarting rows twice the horizon long: a wide policy makes the ants fall and restart
# within their rows, so the start-state noise is drawn mid-row too, not only at the reset;
# the ant presets' physics (rllab's), which the workers build from the same options.
ANT = dict(restart_on_termination=True, row_steps=400, physics="rllab")


@pytest.fixture(scope="module")
def ant_workers():
    env = ProcessBatchedEnvironment("ant-vel", 6, 2, **ANT)
    yield env
    env.close()


def _ant_policy(env):
    keras.utils.set_random_seed(0)
    return gaussian_mlp_policy(env.observation_spec().shape[0], env.action_spec().shape[0], hidden=(16,),
                               init_log_std=1.0)


@pytest.mark.slow
def test_two_workers_sample_exactly_what_one_process_does(ant_workers):
    one = envs.make("ant-vel", batch_size=6, **ANT)
    model = _ant_policy(one)
    tasks = one.sample_tasks(2, seed=0)
    for seed in (3, 4):
        expected = Sampler(one, model).sample(tasks, seed)
        got = Sampler(ant_workers, model).sample(tasks, seed)
        for key in ("observations", "actions", "rewards", "valid", "ends", "timesteps", "final_observations",
                    "displacements"):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # The comparison covered restarts within rows (noise drawn mid-row, members of both workers).
    restarts = expected["ends"].sum(axis=-1) - 1
    assert restarts[:1].sum() > 0 and restarts[1:].sum() > 0
    assert ant_workers.sizes == [3, 3]


@pytest.mark.slow
def test_workers_leave_ctrl_c_to_the_parent(ant_workers):
    # Ctrl-C reaches the whole process group: the workers ignore it, the parent stops them.
    for process in ant_workers._processes:
        os.kill(process.pid, signal.SIGINT)
    ant_workers.reset_task(ant_workers.sample_tasks(6, seed=0))
    ant_workers.seed(0)
    ant_workers.reset()
    assert ant_workers.alive() == [True, True]


@pytest.mark.slow
def test_a_workers_error_names_it_and_stops_every_worker(ant_workers):
    ant_workers.reset()
    with pytest.raises(SamplingWorkerError, match=r"(?s)Sampling worker 0 failed in step.*Traceback"):
        ant_workers.step(np.zeros((6, 5), np.float32))  # 5 actions, the ant has 8
    assert ant_workers.alive() == [False, False] and ant_workers.closed
    with pytest.raises(RuntimeError, match="shut down"):
        ant_workers.reset()


class _Interrupted:
    """A worker's pipe whose parent end is interrupted (Ctrl-C) while it waits for the step."""

    def __init__(self, connection):
        self.connection = connection

    def send(self, message):
        self.connection.send(message)

    def recv(self):
        raise KeyboardInterrupt

    def close(self):
        self.connection.close()


@pytest.mark.slow
def test_the_learner_samples_the_same_with_two_workers_and_stops_them_on_ctrl_c():
    keras.utils.set_random_seed(0)
    model = gaussian_mlp_policy(17, 6, hidden=(8,))
    one = PolicyLearner(model, env="cheetah-dir", episodes_per_task=2)
    two = PolicyLearner(model, env="cheetah-dir", episodes_per_task=2, sampling_workers=2)
    try:
        tasks = one.sample_tasks(2, seed=1)
        a, b = one.sample(tasks, seed=5), two.sample(tasks, seed=5)
        env = two._samplers[(4, "episodes")].env
        assert isinstance(env, ProcessBatchedEnvironment) and env.sizes == [2, 2]
        for key in ("observations", "actions", "rewards", "valid"):
            np.testing.assert_array_equal(b[key], a[key], err_msg=key)
        env._connections[1] = _Interrupted(env._connections[1])
        with pytest.raises(KeyboardInterrupt):
            two.sample(tasks, seed=6)
        assert env.alive() == [False, False] and env.closed
    finally:
        two.close()
    assert two._samplers == {}


@pytest.mark.parametrize("workers", [0, 5, 1.5, True])
def test_bad_worker_counts_are_refused_before_any_process_starts(workers):
    with pytest.raises(ValueError, match=r"workers must be an integer from 1 to the batch size \(4\)"):
        ProcessBatchedEnvironment("navigation", 4, workers)


@pytest.mark.parametrize("workers", [0, -1, 2.0])
def test_bad_sampling_workers_name_the_argument(workers):
    model = gaussian_mlp_policy(2, 2, hidden=(4,))
    with pytest.raises(ValueError, match=f"sampling_workers must be a positive integer.*got {workers!r}"):
        PolicyLearner(model, sampling_workers=workers)
    with pytest.raises(ValueError, match="sampling_workers must be a positive integer"):
        presets.RLPreset(sampling_workers=workers)


def _worker_stderr(**env_vars):
    """The stderr of a fresh process that starts two navigation workers and closes them."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import maml_tf; maml_tf.import_tensorflow_quietly()\n"
            "from maml_tf.rl.envs.processes import ProcessBatchedEnvironment\n"
            "ProcessBatchedEnvironment('navigation', 2, 2).close()\n")
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**environment, "PYTHONPATH": root, **env_vars})
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.slow
def test_workers_start_tensorflow_as_quietly_as_the_parent():
    """TensorFlow's C++ start-up lines stay off the output in every worker too (each imports
    TensorFlow through tf-agents), unless the user set TF_CPP_MIN_LOG_LEVEL."""
    quiet = _worker_stderr()
    assert "absl::InitializeLog" not in quiet and "oneDNN" not in quiet, quiet
    asked = _worker_stderr(TF_CPP_MIN_LOG_LEVEL="0")
    assert asked.count("absl::InitializeLog") >= 3 or asked.count("cpu_feature_guard") >= 3, asked
