"""Open questions about MAML answered by experiment (``maml study NAME``, ``reproduce/<name>.py``).

Each study is a module here with ``PRESETS`` (name -> frozen dataclass: its budgets, seeds and
grids; ``full`` is the stated budget of the results page, ``smoke`` runs in seconds for tests)
and ``run(preset, run_dir, out, time_limit, verbose, echo)``, which trains what it needs
(resuming from ``run_dir``), measures with ``maml_tf.evaluation`` and writes ``out``
(metrics.json, table.md ending in the answer, PNGs). Study modules import TensorFlow only
inside functions, so that ``maml --help`` stays fast.
"""
