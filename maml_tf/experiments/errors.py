"""A diverged meta-training run as one clear error instead of a TensorFlow traceback."""
import contextlib

import tensorflow as tf

# The words MAML's train step puts in its check_numerics message (maml_tf/core/maml.py).
_MARKER = "became NaN or Inf"


class TrainingDiverged(RuntimeError):
    """Meta-training produced NaN or Inf; the last checkpoint on disk is from before it."""


@contextlib.contextmanager
def raise_if_diverged(run_dir):
    """Turn MAML's NaN/Inf check failing inside ``fit`` into :class:`TrainingDiverged`,
    whose message is the check's own line plus where the last good checkpoint is."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        if _MARKER not in error.message:
            raise
        # In graph mode the message opens with "Graph execution error:" and a stack.
        line = next(line for line in error.message.splitlines() if _MARKER in line)
        raise TrainingDiverged(
            f"{line.split(' : ')[0].strip()}. Checkpoints up to the last good epoch are in "
            f"{run_dir}; to train with other hyperparameters, use a new run directory.") from None
