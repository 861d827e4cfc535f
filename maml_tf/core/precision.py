"""Mixed precision (``keras.mixed_precision``) for MAML.

``mixed_float16`` and ``mixed_bfloat16`` keep the weights, the inner updates and the
losses in float32 and run the layers in half precision. float16's narrow range needs
loss scaling for the meta-gradient (``keras.optimizers.LossScaleOptimizer``, which also
skips steps whose scaled gradient overflowed); bfloat16 has float32's range and needs
none. Weights in half precision (the ``float16`` / ``bfloat16`` policies) would lose
the small inner updates, so MAML refuses them.
"""
import keras

from maml_tf.core import keras_internals

_HALF_WEIGHTS = ("float16", "bfloat16")


def policies(model):
    """The dtype policy names of ``model``'s layers that hold weights."""
    return sorted({layer.dtype_policy.name for layer in keras_internals.all_layers(model)
                   if layer.weights})


def check(model):
    """A one-line ``ValueError`` for a dtype policy MAML cannot meta-train correctly."""
    for name in policies(model):
        if name in _HALF_WEIGHTS:
            raise ValueError(
                f"MAML cannot meta-train under the '{name}' dtype policy (weights in {name} "
                f"lose the inner updates): use keras.mixed_precision.set_global_policy("
                f"'mixed_{name}') before building the model (float32 weights, {name} compute).")


def needs_loss_scaling(model):
    return "mixed_float16" in policies(model)


def loss_scaler(optimizer):
    """``optimizer.scale_loss`` when the optimizer unscales what it applies (a
    ``LossScaleOptimizer``), else None (no scaling)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss
    return None
