"""The one experiment interface: built from a preset and a run directory, ``train`` (resuming
it) and ``evaluate`` (result records of ``maml_tf.report.schema``). The time limit
(:class:`Deadline`) and the ``tf.distribute`` strategy are resolved here, once, for all."""
import dataclasses
import os
import time


class StrategyError(ValueError):
    """A strategy that cannot run this experiment (unknown, bad TF_CONFIG, uneven meta-batch)."""


class Deadline:
    """The moment training stops, checked at checkpoint boundaries only (after a Keras epoch,
    after an RL iteration), so a stopped run resumes from its last checkpoint."""

    def __init__(self, seconds=None):
        self.at = None if seconds is None else time.time() + seconds

    @classmethod
    def of(cls, time_limit):
        """``time_limit``: minutes (a number), an existing :class:`Deadline`, or None (never)."""
        return time_limit if isinstance(time_limit, Deadline) else cls(None if time_limit is None else 60 * time_limit)

    def passed(self):
        return self.at is not None and time.time() >= self.at


@dataclasses.dataclass
class Progress:
    """How far ``train`` got: iterations done per part (method), against the preset's budget."""
    iterations: dict
    target: int

    @property
    def finished(self):
        return all(done >= self.target for done in self.iterations.values())


def resolve_strategy(strategy, meta_batch_size=None):
    """``strategy`` (a name of ``distribute.STRATEGIES``, a ``tf.distribute.Strategy`` or None)
    as a strategy whose replicas split ``meta_batch_size`` evenly; else :class:`StrategyError`."""
    from maml_tf import distribute
    try:
        chosen = distribute.strategy(strategy or "default") if strategy is None or isinstance(strategy, str) else strategy
        if meta_batch_size is not None:
            distribute.check_meta_batch(meta_batch_size, chosen)
    except ValueError as error:
        raise StrategyError(str(error)) from None
    return chosen


class Experiment:
    """One paper experiment's run: ``preset`` (a ``maml_tf.presets`` dataclass) trained in
    ``run_dir``; ``result_name``: the results' name (results/<name>[_<preset>]). Subclasses
    set ``METHODS`` (the run directory's parts) and ``KIND``."""

    METHODS = ("maml",)
    KIND = None

    def __init__(self, name, preset, run_dir, data_dir=None, methods=None, result_name=None, verbose=0):
        self.name, self.preset, self.run_dir, self.data_dir = name, preset, str(run_dir), data_dir
        unknown = set(methods or ()) - set(self.METHODS)
        if unknown:
            from maml_tf.experiments.registry import UsageProblem
            raise UsageProblem(f"{name} has no method {', '.join(sorted(unknown))}; choose from {', '.join(self.METHODS)}.",
                               "--method")
        self.methods = tuple(m for m in self.METHODS if m in (methods or self.METHODS))
        self.result_name = result_name or name
        self.verbose = verbose

    def check(self):
        """Raise ``RunDirectoryMismatch`` if the run directory holds another setup. Writes nothing."""
        raise NotImplementedError

    def train(self, until=None, time_limit=None, strategy=None, callbacks=()):
        """Train every method up to ``preset.iterations`` (or ``until``), resuming from the run
        directory; stop at the first checkpoint past ``time_limit`` (minutes or a
        :class:`Deadline`); ``strategy``: see :func:`resolve_strategy`; ``callbacks``: Keras
        callbacks (RL: ``f(method, stats)`` per iteration). Returns :class:`Progress`."""
        raise NotImplementedError

    def learners(self):
        """Each method's model (or policy learner) at its latest checkpoint. Writes nothing."""
        raise NotImplementedError

    def evaluate(self, learners=None):
        """Meta-test ``learners`` (default: :meth:`learners`) on the fixed test tasks: a list of
        result records (``maml_tf.report.schema.record``)."""
        raise NotImplementedError

    def evaluate_and_store(self):
        """:meth:`evaluate`, saved as RUN_DIR/metrics.json (the results schema) for the tools
        that read a run's meta-test later: ``maml evaluate``, the reproduce targets."""
        from maml_tf.report import schema
        rows = self.evaluate()
        schema.save(self.metrics_path, self.document(rows))
        return rows

    @property
    def metrics_path(self):
        """Where :meth:`evaluate_and_store` keeps the run's meta-test."""
        return os.path.join(self.run_dir, "metrics.json")

    def shared(self):
        """Fields of the results document beside its rows."""
        return {}

    def document(self, rows, **shared):
        """The results document of ``rows`` (``schema.document``), with the command and machine."""
        from maml_tf import reporting
        from maml_tf.report import schema
        return schema.document(self.result_name, self.KIND, rows, command=reporting.command(),
                               machine=reporting.machine(), **{**self.shared(), **shared})


def epochs_until(preset, until):
    """Keras epochs to fit for ``until`` iterations (whole epochs: one checkpoint each)."""
    if until is None:
        return preset.epochs
    return min(preset.epochs, -(-int(until) // preset.steps_per_epoch))
