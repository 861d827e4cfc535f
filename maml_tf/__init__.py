"""maml-tf: Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, 2017) for TensorFlow/Keras 3."""
import os

# Whether the user asked for TensorFlow's C++ log themselves; if not, keep its CUDA-probe noise
# off CPU machines (the ``maml`` command also hides what this variable no longer filters).
TF_LOG_REQUESTED = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The core's names, imported on first use so that ``maml --help`` and the presets load without TensorFlow.
_CORE = ("MAML", "EpisodeError", "FunctionalModel", "InnerSGD", "MetaSGD", "PerLayerPerStepLR", "make_episodes")
__all__ = list(_CORE)


def __getattr__(name):
    if name in _CORE:
        from maml_tf import core
        return getattr(core, name)
    raise AttributeError(f"module 'maml_tf' has no attribute {name!r}")


__version__ = "0.1.0"
