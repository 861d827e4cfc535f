"""Networks of Section 5 (and the authors' code), built with stock Keras layers."""
import keras

from maml_tf.core.arguments import one_of


def dense_kernel_initializer(authors_layers=False):
    """Dense kernels: Keras' Glorot uniform, or the authors' (cbfinn/maml's
    ``construct_fc_weights``: truncated normal, std 0.01) for the sinusoid and FC nets."""
    return keras.initializers.TruncatedNormal(stddev=0.01) if authors_layers else "glorot_uniform"


def mlp(input_dim=1, output_dim=1, hidden=(40, 40), activation="relu", kernel_initializer="glorot_uniform",
        name="mlp"):
    """Regression MLP; the sinusoid network is 1-40-40-1 ReLU (Section 5.1).

    ``kernel_initializer`` (any Keras initializer) draws every layer's kernel.
    """
    inputs = keras.Input((input_dim,))
    h = inputs
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, activation=activation, kernel_initializer=kernel_initializer,
                               name=f"hidden_{i}")(h)
    head = keras.layers.Dense(output_dim, kernel_initializer=kernel_initializer, name="head")
    return keras.Model(inputs, head(h), name=name)


def conv4(num_classes, input_shape=(28, 28, 1), filters=64, downsample="stride",
          batch_norm=True, batch_norm_scale=True, head_initializer="glorot_uniform", activation="relu",
          conv_bias=False, name="conv4"):
    """Four 3x3 conv blocks + linear head (Section 5.2).

    ``downsample="stride"``: stride-2 convolutions and a spatial mean before the head
    (the Omniglot network); ``"maxpool"``: stride 1 then 2x2 max-pool and flatten
    (the MiniImagenet network, 32 filters in the paper). ``batch_norm_scale=False``
    leaves batch norm with an offset only, as ``tf.contrib.layers.batch_norm`` (the
    authors' code) by default; ``head_initializer`` is any Keras initializer; ``activation``
    any Keras activation name (the paper: ReLU).

    ``conv_bias=False`` (default): no conv bias where batch norm follows. Such a bias is a dead
    parameter: BN subtracts the per-channel batch mean, so it cancels exactly and its gradient is
    zero; the Section 5.2 network is otherwise unchanged (the authors' code has the bias; ``True``
    builds that layout, which older checkpoints have). Without it, batch norm runs through the
    fused ops by default (:mod:`maml_tf.core.functional`). Without batch norm convs keep a bias.
    """
    one_of("downsample", downsample, ("stride", "maxpool"))
    inputs = keras.Input(input_shape)
    h = inputs
    for i in range(4):
        strides = 2 if downsample == "stride" else 1
        h = keras.layers.Conv2D(filters, 3, strides=strides, padding="same",
                                use_bias=conv_bias or not batch_norm, name=f"conv_{i}")(h)
        if batch_norm:
            h = keras.layers.BatchNormalization(scale=batch_norm_scale, name=f"bn_{i}")(h)
        h = _activation(activation, i)(h)
        if downsample == "maxpool":
            h = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(h)
    h = keras.layers.GlobalAveragePooling2D()(h) if downsample == "stride" else keras.layers.Flatten()(h)
    head = keras.layers.Dense(num_classes, kernel_initializer=head_initializer, name="head")
    return keras.Model(inputs, head(h), name=name)


def fully_connected(num_classes, input_shape=(28, 28, 1), hidden=(256, 128, 64, 64),
                    batch_norm=True, batch_norm_scale=True, kernel_initializer="glorot_uniform",
                    activation="relu", name="fc"):
    """The paper's fully connected Omniglot network: 256-128-64-64, BN, ReLU.

    ``batch_norm_scale`` and ``activation`` as :func:`conv4`; ``kernel_initializer`` (any
    Keras initializer) draws every layer's kernel, the head's included.
    """
    inputs = keras.Input(input_shape)
    h = keras.layers.Flatten()(inputs)
    for i, units in enumerate(hidden):
        h = keras.layers.Dense(units, kernel_initializer=kernel_initializer, name=f"dense_{i}")(h)
        if batch_norm:
            h = keras.layers.BatchNormalization(scale=batch_norm_scale, name=f"bn_{i}")(h)
        h = _activation(activation, i)(h)
    head = keras.layers.Dense(num_classes, kernel_initializer=kernel_initializer, name="head")
    return keras.Model(inputs, head(h), name=name)


def _activation(name, index):
    """The hidden activation layer: ``keras.layers.ReLU`` for "relu" (the layer the networks
    always had, so that older models keep their structure), else ``keras.layers.Activation``."""
    if name == "relu":
        return keras.layers.ReLU()
    try:
        keras.activations.get(name)
    except ValueError:
        raise ValueError(f"Unknown activation {name!r}; use a Keras activation name, e.g. 'relu', "
                         "'silu', 'gelu' or 'tanh'.") from None
    return keras.layers.Activation(name, name=f"{name}_{index}")
