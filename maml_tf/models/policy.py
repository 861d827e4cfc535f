"""The paper's Gaussian MLP policy (Section 5.3): 100-100 ReLU, learned log-std."""
import keras
import tensorflow as tf
import tensorflow_probability as tfp


@keras.saving.register_keras_serializable(package="maml_tf")
class AppendLogStd(keras.layers.Layer):
    """Concatenates a learned, state-independent log-std to the mean.

    The log-std is a trainable weight of the model, so MAML's inner step adapts it
    like every other weight (as the authors' rllab policy did).
    """

    def __init__(self, init_log_std=0.0, **kwargs):
        super().__init__(**kwargs)
        self.init_log_std = float(init_log_std)

    def build(self, input_shape):
        self.log_std = self.add_weight(
            name="log_std", shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_log_std))

    def call(self, mean):
        log_std = keras.ops.broadcast_to(self.log_std, keras.ops.shape(mean))
        return keras.ops.concatenate([mean, log_std], axis=-1)

    def get_config(self):
        return {**super().get_config(), "init_log_std": self.init_log_std}


def gaussian_mlp_policy(observation_dim, action_dim, hidden=(100, 100), init_log_std=0.0,
                        activation="relu", name="gaussian_mlp_policy"):
    """Keras model: observation -> ``[mean, log_std]`` (``2 * action_dim`` outputs).

    Read it with :func:`action_distribution`.
    """
    inputs = keras.Input((observation_dim,))
    h = inputs
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(h)
    mean = keras.layers.Dense(action_dim, name="mean")(h)
    outputs = AppendLogStd(init_log_std, name="log_std")(mean)
    return keras.Model(inputs, outputs, name=name)


def action_distribution(output):
    """The diagonal Gaussian ``pi(.|s)`` of a policy output ``[..., 2 * action_dim]``."""
    mean, log_std = tf.split(output, 2, axis=-1)
    return tfp.distributions.Independent(
        tfp.distributions.Normal(mean, tf.exp(log_std)), reinterpreted_batch_ndims=1)
