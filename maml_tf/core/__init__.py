"""The model-agnostic MAML algorithm: no data or environment code here."""
import importlib

# Name -> the module defining it, imported on first use: the TensorFlow-free checks in
# maml_tf.core.arguments serve the presets and the CLI without loading TensorFlow.
_NAMES = {"EpisodeError": "episodes", "make_episodes": ("episodes", "make"), "FunctionalModel": "functional",
          "InnerSGD": "inner", "MetaSGD": "inner", "PerLayerPerStepLR": "inner", "MAML": "maml"}
__all__ = list(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'maml_tf.core' has no attribute {name!r}")
    module, attribute = _NAMES[name] if isinstance(_NAMES[name], tuple) else (_NAMES[name], name)
    return getattr(importlib.import_module(f"maml_tf.core.{module}"), attribute)
