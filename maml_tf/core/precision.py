"""Mixed precision (``keras.mixed_precision``) for MAML.

``mixed_float16`` and ``mixed_bfloat16`` keep the weights, the inner updates and the
losses in float32 and run the layers in half precision. float16's narrow range needs
loss scaling for the meta-gradient (``keras.optimizers.LossScaleOptimizer``, which also
skips steps whose scaled gradient overflowed); bfloat16 has float32's range and needs
none. Weights in half precision (the ``float16`` / ``bfloat16`` policies) would lose
the small inner updates, so MAML refuses them.

Meta-training's ``precision`` option (:data:`PRECISIONS`) builds the model inside
:func:`policy`; :func:`native_bfloat16` says whether this CPU runs bfloat16 natively.
"""
import contextlib
import logging
import os

import keras

from maml_tf.core import keras_internals
from maml_tf.core.arguments import one_of

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


# ----------------------------------------------------------------------------- the option
# The global policies MAML meta-trains correctly, which :func:`policy` accepts. The presets
# offer float32 and mixed_bfloat16 (maml_tf.presets.PRECISIONS); mixed_float16 needs loss
# scaling and gains nothing on CPUs.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# CPU flags of native bfloat16 arithmetic (oneDNN's avx512_core_bf16 and avx512_core_amx ISAs).
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# oneDNN's ISA caps (ONEDNN_MAX_CPU_ISA) below its first bfloat16 one, avx512_core_bf16.
_BELOW_BF16_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")
logger = logging.getLogger("maml_tf")


def check_precision(name, argument="precision"):
    """``name`` if it is one of :data:`PRECISIONS`, else a one-line ``ValueError``."""
    return one_of(argument, name, PRECISIONS)


def native_bfloat16(cpuinfo="/proc/cpuinfo", environ=None):
    """The CPU flags (of :data:`BFLOAT16_FLAGS`) with which this machine runs bfloat16 natively;
    empty where TensorFlow emulates it (AMD EPYC here: bfloat16 is then slower than float32),
    or where oneDNN is switched off (``TF_ENABLE_ONEDNN_OPTS=0``) or capped below a bfloat16
    ISA (``ONEDNN_MAX_CPU_ISA``)."""
    environ = os.environ if environ is None else environ
    if environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip() in ("0", "false", "False"):
        return ()
    cap = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap in _BELOW_BF16_ISAS:
        return ()
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return ()
    return tuple(flag for flag in BFLOAT16_FLAGS if flag in flags)


@contextlib.contextmanager
def policy(name):
    """Build models under precision ``name`` (:data:`PRECISIONS`) inside the block; the previous
    global Keras dtype policy comes back after it, so other models of the process keep theirs.
    A model keeps the policy it was built with. Warns (logger ``maml_tf``) when bfloat16 would
    be emulated on this CPU."""
    check_precision(name)
    if name == "mixed_bfloat16" and not native_bfloat16():
        logger.warning("mixed_bfloat16 on a CPU without native bfloat16 (no amx_bf16 / avx512_bf16 "
                       "flag, or oneDNN off): it runs slower than float32 here.")
    previous = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
