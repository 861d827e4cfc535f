"""With XLA on, ``train_step`` runs the meta-gradient, the NaN guard and the update in one
XLA call; it must train exactly as the step that applies the update outside XLA."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf import MAML
from maml_tf.tasks import SinusoidTasks


class _Unfused(MAML):
    def _fuses_train_step(self, scale_loss):
        return False


def _model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((1,))
    h = keras.layers.Dense(16, activation="tanh")(inputs)
    h = keras.layers.BatchNormalization()(h)  # inductive BN: the step writes moving statistics
    return keras.Model(inputs, keras.layers.Dense(1)(h))


@pytest.mark.parametrize("first_order", [False, True])
def test_fused_step_trains_as_the_unfused_one(first_order):
    data = SinusoidTasks(5, 5).dataset(4, seed=1)
    learned = []
    for cls in (MAML, _Unfused):
        maml = cls(_model(), inner_lr=0.05, first_order=first_order, batch_norm="inductive")
        maml.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", jit_compile=True,
                     steps_per_execution=2)
        history = maml.fit(data, epochs=1, steps_per_epoch=6, verbose=0).history["loss"]
        learned.append((maml.model.get_weights(), history, int(maml.optimizer.iterations.numpy())))
    (fused, fused_loss, fused_steps), (unfused, unfused_loss, unfused_steps) = learned
    assert fused_steps == unfused_steps == 6
    np.testing.assert_allclose(fused_loss, unfused_loss, rtol=1e-5)
    for a, b in zip(fused, unfused):  # trainable weights and BN moving statistics alike
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(fused[0], _model().get_weights()[0])  # it did train
