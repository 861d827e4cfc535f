"""End-to-end paper experiments behind one interface (``base.Experiment``: built from a
preset, ``train`` resuming a run directory, ``evaluate`` returning result records), named in
``registry`` (experiments, reproduce targets, the default run directory) and run by the
``maml`` command and ``reproduce/*.py`` alike (``targets``)."""
