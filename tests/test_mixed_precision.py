"""MAML under keras.mixed_precision: mixed_float16 (loss scaling) and mixed_bfloat16
against float32, and the policies it refuses.

Tolerances (relative L2 error of the meta-gradient against float32's at the same
weights): 1e-2 for mixed_float16 (observed ~5e-4 MLP, ~2e-3 conv + BN) and 0.1 for
mixed_bfloat16, whose 8-bit mantissa rounds every activation to ~0.4% (observed ~5e-3
MLP, ~6e-2 conv + BN through two second-order inner steps).
"""
import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import classification_episodes, classification_loss, conv_bn_model, flat
from maml_tf import MAML
from maml_tf.models import mlp
from maml_tf.tasks import SinusoidTasks

TOLERANCE = {"mixed_float16": 1e-2, "mixed_bfloat16": 0.1}
SINE = SinusoidTasks(support_shots=10, query_shots=10)


def _under(policy, build):
    keras.mixed_precision.set_global_policy(policy)
    try:
        return build()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _mlp_maml(policy, optimizer):
    def build():
        keras.utils.set_random_seed(0)
        maml = MAML(mlp(hidden=(40, 40)), inner_lr=0.01, inner_steps=2)
        maml.compile(optimizer=optimizer, loss="mse")
        return maml
    return _under(policy, build)


def _conv_maml(policy):
    def build():
        keras.utils.set_random_seed(0)
        maml = MAML(conv_bn_model(), inner_lr=0.2, inner_steps=2)
        maml.compile(optimizer=keras.optimizers.SGD(0.1), loss=classification_loss())
        return maml
    return _under(policy, build)


def _trainable(maml):
    return flat([v.numpy() for v in maml.model.trainable_variables])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("kind", ["mlp", "conv_bn"])
def test_meta_gradient_and_update_match_float32(policy, kind, rng):
    if kind == "mlp":
        episodes, _ = SINE.sample(4, seed=[1, 1])
        reference, maml = (_mlp_maml(p, keras.optimizers.SGD(0.01)) for p in ("float32", policy))
    else:
        episodes = classification_episodes(rng, tasks=2, ways=3, shots=2, dtype="float32")
        reference, maml = _conv_maml("float32"), _conv_maml(policy)
    assert maml.model.layers[-1].compute_dtype == policy.split("_")[1]
    assert isinstance(maml.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    maml.model.set_weights(reference.model.get_weights())
    _, expected = reference.meta_gradients(episodes)
    loss, grads = maml.meta_gradients(episodes)
    assert loss.dtype == tf.float32
    error = np.linalg.norm(flat(grads) - flat(expected)) / np.linalg.norm(flat(expected))
    assert error < TOLERANCE[policy], error

    # One train step applies -lr * (unscaled) meta-gradient: under mixed_float16 the loss
    # is scaled before differentiation and the optimizer divides the scale out again.
    before = _trainable(maml)
    for _ in range(8):  # a step whose scaled gradient overflows is skipped, the scale halved
        maml.train_on_batch(episodes)
        if int(maml.optimizer.iterations.numpy()):
            break
    assert int(maml.optimizer.iterations.numpy()) == 1
    step = _trainable(maml) - before
    lr = float(maml.optimizer.learning_rate.numpy())
    error = np.linalg.norm(step + lr * flat(expected)) / np.linalg.norm(lr * flat(expected))
    assert error < TOLERANCE[policy], error


@functools.lru_cache(maxsize=None)
def _training_losses(policy):
    maml = _mlp_maml(policy, keras.optimizers.Adam(1e-2))
    history = maml.fit(SINE.dataset(meta_batch_size=4, seed=0), epochs=3, steps_per_epoch=25, verbose=0)
    return history.history["loss"]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_meta_training_lowers_the_loss_like_float32(policy):
    """75 meta-steps (observed: float32 3.30 -> 2.78, mixed_float16 3.33 -> 2.90 after
    skipping its first overflowed steps, mixed_bfloat16 3.30 -> 2.76)."""
    reference, losses = _training_losses("float32"), _training_losses(policy)
    for history in (reference, losses):
        assert history[-1] < 0.9 * history[0], history
    assert abs(losses[-1] - reference[-1]) < 0.1 * reference[-1], (losses, reference)


def test_an_overflowing_float16_step_is_skipped_and_the_scale_lowered():
    maml = _mlp_maml("mixed_float16", keras.optimizers.SGD(0.01))
    episodes, _ = SINE.sample(4, seed=[1, 1])
    maml.optimizer.build(maml.trainable_variables)
    maml.optimizer.dynamic_scale.assign(1e30)  # the scaled float16 gradient overflows
    before = _trainable(maml)
    maml.train_on_batch(episodes)  # no NaN error: the LossScaleOptimizer skips the step
    np.testing.assert_array_equal(_trainable(maml), before)
    assert int(maml.optimizer.iterations.numpy()) == 0
    np.testing.assert_allclose(float(maml.optimizer.dynamic_scale.numpy()), 5e29, rtol=1e-6)


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
def test_half_precision_weights_are_refused_at_compile(policy):
    model = _under(policy, lambda: mlp(hidden=(8,)))
    maml = MAML(model)
    with pytest.raises(ValueError, match=f"^MAML cannot meta-train under the '{policy}' dtype "
                                         rf"policy .*set_global_policy\('mixed_{policy}'\)[^\n]*$"):
        maml.compile(optimizer="adam", loss="mse")
