"""One batched task environment split over worker processes, so that a sampler with more
cores steps its members' physics in parallel (the policy still runs in the parent, once
per time step for every member).

Worker ``k`` holds ``make(name, batch_size=B_k, **kwargs)`` for a contiguous slice of
the members. Their start-state noise is drawn in the parent, member by member from the
one seeded stream, so the members start (and restart, after an ant falls) exactly as in
one environment of all of them: any number of workers gives the same trajectories.
"""
import multiprocessing
import traceback

import numpy as np

import maml_tf
from maml_tf.rl import tf_agents_missing, worker

try:
    from tf_agents.environments import py_environment
    from tf_agents.trajectories import time_step as ts
except ModuleNotFoundError as error:
    raise tf_agents_missing(error) from error


class SamplingWorkerError(RuntimeError):
    """A sampling worker process failed; the message holds its traceback."""


class ProcessBatchedEnvironment(py_environment.PyEnvironment):
    """``make(name, batch_size=batch_size, **kwargs)`` stepped by ``workers`` processes.

    Offers what the :class:`~maml_tf.rl.sampler.Sampler` uses of a batched
    :class:`~maml_tf.rl.envs.TaskEnvironment` (``reset_task``, ``seed``, ``reset``,
    ``step``, the specs, ``horizon``, ``restart_on_termination``, ``row_steps``). Any
    error or interrupt while the workers step (one of theirs, or Ctrl-C in the parent)
    shuts them all down before it propagates; so does :meth:`close`, and a worker whose
    parent is gone exits by itself.
    """

    def __init__(self, name, batch_size, workers, **kwargs):
        from maml_tf.rl import envs

        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= batch_size:
            raise ValueError(f"workers must be an integer from 1 to the batch size ({batch_size}), got {workers!r}.")
        super().__init__(handle_auto_reset=False)  # the workers' environments reset themselves
        # One member here: the specs, and the start-state noise in member order.
        self._local = envs.make(name, **kwargs)
        self.horizon = self._local.horizon
        self.restart_on_termination = self._local.restart_on_termination
        self.row_steps = self._local.row_steps
        self._batch_size = int(batch_size)
        if hasattr(self._local, "displacement"):  # a robot's x displacement per step, as one environment's
            self.displacement = np.zeros(self._batch_size)
        self.sizes = [len(part) for part in np.array_split(np.arange(batch_size), workers)]
        self._offsets = np.cumsum(self.sizes)[:-1]
        context = multiprocessing.get_context("spawn")  # never fork a process that runs TensorFlow
        self._connections, self._processes = [], []
        try:
            for size in self.sizes:
                parent, child = context.Pipe()
                process = context.Process(target=worker.start,
                                          args=(child, name, size, kwargs, maml_tf.TF_LOG_REQUESTED),
                                          daemon=True, name=f"sampling worker {len(self._processes)}")
                process.start()
                child.close()
                self._connections.append(parent)
                self._processes.append(process)
            self._gather("ready", [()] * workers, send=False)
        except BaseException:
            self.close()
            raise

    @property
    def batched(self):
        return True

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def workers(self):
        return len(self._processes)

    @property
    def closed(self):
        """True once the workers are shut down (by :meth:`close` or an error)."""
        return not self._connections

    def alive(self):
        """Whether each worker process is running."""
        return [p.is_alive() for p in self._processes]

    def observation_spec(self):
        return self._local.observation_spec()

    def action_spec(self):
        return self._local.action_spec()

    def sample_tasks(self, n, seed):
        return self._local.sample_tasks(n, seed)

    def reset_task(self, task):
        if len(task) != self._batch_size:
            raise ValueError(f"Expected {self._batch_size} tasks (one per batch member), got {len(task)}.")
        task = list(task)
        bounds = np.concatenate([[0], np.cumsum(self.sizes)])
        self._gather("reset_task", [(task[a:b],) for a, b in zip(bounds[:-1], bounds[1:])])

    def seed(self, seed):
        """Restart the start-state noise (drawn here, in member order) from ``seed``."""
        self._local.seed(seed)

    def _reset(self):
        if hasattr(self, "displacement"):
            self.displacement = np.zeros(self._batch_size)
        return _concatenate(self._gather("reset", [()] * self.workers))

    def _step(self, action):
        parts = np.split(np.asarray(action), self._offsets)
        results = self._gather("step", [(part,) for part in parts])
        if hasattr(self, "displacement"):  # the workers send (time step, displacement)
            results, moves = zip(*results)
            self.displacement = np.concatenate(moves)
        return _concatenate(results)

    def close(self):
        """Stop the workers (at once if one is stuck) and release the pipes."""
        for connection in self._connections:
            try:
                connection.send(("close", ()))
            except (OSError, ValueError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
        for connection in self._connections:
            connection.close()
        self._connections = []
        if getattr(self, "_local", None) is not None:
            self._local.close()
            self._local = None

    def _gather(self, command, arguments, send=True):
        """Run ``command(*arguments[k])`` on worker k, all at once; their results in order.

        The workers' requests for start-state noise are answered worker by worker, in
        member order (worker 0's members come first), from the one stream here."""
        if not self._connections:
            raise RuntimeError("The sampling workers are shut down (closed, or stopped by an error).")
        try:
            if send:
                for connection, args in zip(self._connections, arguments):
                    connection.send((command, args))
            results = []
            for k, connection in enumerate(self._connections):
                while True:
                    kind, value = connection.recv()
                    if kind == "noise":
                        connection.send(("noise", self._local.draw_reset_noise(value)))
                    elif kind == "error":
                        raise SamplingWorkerError(f"Sampling worker {k} failed in {command}:\n{value}")
                    else:
                        results.append(value)
                        break
            return results
        except BaseException:
            self.close()
            raise


def _concatenate(time_steps):
    return ts.TimeStep(*(np.concatenate(parts) for parts in zip(*time_steps)))


def work(connection, name, batch_size, kwargs):
    """A worker's loop (started by :func:`maml_tf.rl.worker.start`): build its environment,
    then run the parent's commands until told to close."""
    env = None
    try:
        from maml_tf.rl import envs

        env = envs.make(name, batch_size=batch_size, **kwargs)

        def parents_noise(count):
            connection.send(("noise", count))
            return connection.recv()[1]

        env.reset_noise_source = parents_noise
        connection.send(("ready", None))
        while True:
            command, args = connection.recv()
            if command == "close":
                break
            result = getattr(env, command)(*args)
            if command == "step" and hasattr(env, "displacement"):
                result = (result, env.displacement)
            connection.send(("result", result))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):  # the parent is gone
        pass
    except BaseException:  # noqa: BLE001 (reported to the parent, which raises it)
        try:
            connection.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        if env is not None:
            env.close()
        connection.close()
