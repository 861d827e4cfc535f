"""Wall-clock seconds per phase of an RL training iteration (sampling, baseline fits, the
inner step, TRPO's parts), for benchmarks/bench_rl_iteration.py: a learner given a
:class:`Timings` adds to it; one without (the default) times nothing."""
import contextlib
import time


class Timings:
    """Seconds and calls per named part, summed over every ``part(name)`` block."""

    def __init__(self):
        self.seconds = {}
        self.calls = {}

    @contextlib.contextmanager
    def part(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.calls[name] = self.calls.get(name, 0) + 1

    def clear(self):
        self.seconds.clear()
        self.calls.clear()


def timed(timings, name):
    """``timings.part(name)``, or a context that times nothing when ``timings`` is None."""
    return contextlib.nullcontext() if timings is None else timings.part(name)
