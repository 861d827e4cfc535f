"""Open questions about MAML answered by experiment (``maml study NAME``, ``reproduce/<name>.py``).

Each study is a module here with ``PRESETS`` (name -> frozen dataclass: its budgets, seeds and
grids; ``full`` is the stated budget of the results page, ``smoke`` runs in seconds for tests)
and ``run(preset, run_dir, out, time_limit, verbose, echo)``, which trains what it needs
(resuming from ``run_dir``), measures with ``maml_tf.evaluation`` and writes ``out``
(metrics.json, table.md ending in the answer, PNGs). Study modules import TensorFlow only
inside functions, so that ``maml --help`` stays fast.
"""


def training_verbose(verbose):
    """A study's ``verbose`` (0 silent, 1 a line per training run and measurement, 2 also per
    epoch) as its trainings' Keras one: 2, a line per epoch (and once a minute within long
    ones), never the progress bar, which fills a log file with one update per step."""
    return 2 if verbose >= 2 else 0
