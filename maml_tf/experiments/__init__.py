"""End-to-end paper experiments: train, run baselines, meta-test. Shared by the
reproduce scripts and the ``maml`` CLI."""
