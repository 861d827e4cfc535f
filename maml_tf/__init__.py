"""maml-tf: Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, 2017) for TensorFlow/Keras 3."""
import os
import sys

# Whether the user asked for TensorFlow's C++ log themselves; if not, keep its CUDA-probe noise
# off CPU machines (the ``maml`` command also hides what this variable no longer filters).
TF_LOG_REQUESTED = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly(user_asked=None):
    """Import TensorFlow and Keras and probe the devices with the C++ stderr silenced: since
    TF 2.16 the start-up lines (CUDA probe, "failed call to cuInit", the oneDNN notice) are
    written by absl before TF_CPP_MIN_LOG_LEVEL applies. Setting TF_CPP_MIN_LOG_LEVEL
    yourself keeps them (``user_asked``: whether you did, for a worker process that inherited
    the variable from this package). Python errors still show: the descriptor is restored first."""
    if (TF_LOG_REQUESTED if user_asked is None else user_asked) or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import keras  # noqa: F401
        import tensorflow as tf
        tf.config.list_logical_devices()  # the CUDA probe happens here
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)

# The core's names, imported on first use so that ``maml --help`` and the presets load without TensorFlow.
_CORE = ("MAML", "EpisodeError", "FunctionalModel", "InnerSGD", "MetaSGD", "PerLayerPerStepLR", "make_episodes")
__all__ = list(_CORE)


def __getattr__(name):
    if name in _CORE:
        from maml_tf import core
        return getattr(core, name)
    raise AttributeError(f"module 'maml_tf' has no attribute {name!r}")


__version__ = "0.1.0"
