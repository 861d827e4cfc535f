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
