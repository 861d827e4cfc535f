"""A diverged meta-training run as one clear error instead of a TensorFlow traceback."""
import contextlib

import tensorflow as tf

# The words MAML's train step puts in its check_numerics message (maml_tf/core/maml.py).
_MARKER = "became NaN or Inf"


class TrainingDiverged(RuntimeError):
    """Meta-training produced NaN or Inf; the last checkpoint on disk is from before it."""


@contextlib.contextmanager
def raise_if_diverged(run_dir, what="model"):
    """Turn a NaN or Inf loss inside ``fit`` into :class:`TrainingDiverged`: MAML's own
    check (its message's line) or, for a plain Keras model (``what``, e.g. a baseline),
    ``TerminateOnNaN(raise_error=True)``; the message adds where the last good checkpoint is."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        if _MARKER not in error.message:
            raise
        # In graph mode the message opens with "Graph execution error:" and a stack.
        line = next(line for line in error.message.splitlines() if _MARKER in line)
        cause = line.split(' : ')[0].strip()
    except RuntimeError as error:
        if "NaN or Inf loss" not in str(error):  # Keras' TerminateOnNaN
            raise
        cause = f"The {what}'s loss became NaN or Inf: lower outer_lr"
    else:
        return
    raise TrainingDiverged(
        f"{cause}. Checkpoints up to the last good epoch are in {run_dir}; to train with other "
        "hyperparameters, use a new run directory.") from None
