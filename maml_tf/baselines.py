"""The paper's non-meta-learned baselines (Sections 5.1-5.3)."""
import tensorflow as tf


def joint_training_dataset(episode_dataset):
    """Turn a stream of meta-batches into plain (x, y) batches of all their examples:
    the "pretrained" baseline trains on every task at once, ignoring task identity."""

    def flatten(episodes):
        xs, ys = [], []
        for x, y in (episodes["support"], episodes["query"]):
            xs.append(tf.reshape(x, [-1] + x.shape[2:].as_list()))
            ys.append(tf.reshape(y, [-1] + y.shape[2:].as_list()))
        return tf.concat(xs, 0), tf.concat(ys, 0)

    return episode_dataset.map(flatten, num_parallel_calls=tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- few-shot classification
def classifier_dataset(images, batch_size, seed=0, start=0, rotate=True):
    """Endless ``tf.data`` stream of ``(x, label)`` batches over every image of ``images``
    (uint8 ``[classes, examples, H, W, C]``), the "pretrained" baseline's data: one classifier
    over all training classes, each class x rotation its own class (``rotate``: 4 per class,
    as the Omniglot meta-training tasks treat them). Batch ``i`` comes from seed ``(seed, i)``."""
    import numpy as np
    classes, per_class = images.shape[:2]
    labels = classes * (4 if rotate else 1)

    def batch(i):
        rng = np.random.default_rng([seed, int(i)])
        label = rng.integers(labels, size=batch_size)
        x = images[label % classes, rng.integers(per_class, size=batch_size)]
        for k in (1, 2, 3):
            turn = label // classes == k
            x[turn] = np.rot90(x[turn], k, axes=(-3, -2))
        return x.astype(np.float32) / 255.0, label.astype(np.int32)

    def make(i):
        x, y = tf.numpy_function(batch, [i], [tf.float32, tf.int32], stateful=False)
        return tf.ensure_shape(x, [batch_size, *images.shape[2:]]), tf.ensure_shape(y, [batch_size])

    return tf.data.Dataset.counter(start).map(make, num_parallel_calls=2, deterministic=True).prefetch(4)


def with_new_head(model, outputs, head="head"):
    """``model``'s layers up to its ``head`` layer (shared, not copied) under a new zero-initialised
    ``outputs``-way linear head: the pretrained baseline's network for N-way test tasks, which
    predicts uniformly before fine-tuning."""
    import keras
    features = model.get_layer(head).input
    new = keras.layers.Dense(outputs, kernel_initializer="zeros", name=head)
    return keras.Model(model.inputs, new(features), name=f"{model.name}_{outputs}way")


def fine_tuner(model, inner_lr, steps, adapt="all", batch_norm="transductive", loss="mse"):
    """A ``MAML`` wrapper that only fine-tunes ``model`` (``steps`` SGD steps of size ``inner_lr``
    on each task's support set, weights ``adapt``): how the baselines are scored with the same
    measures as MAML. Never trained itself."""
    import keras

    from maml_tf.core import MAML
    learner = MAML(model, inner_lr=inner_lr, inner_steps=max(int(steps), 1), eval_inner_steps=steps,
                   adapt=adapt, batch_norm=batch_norm)
    learner.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    return learner
