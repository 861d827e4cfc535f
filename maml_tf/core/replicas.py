"""Corrections that make a meta-step under ``tf.distribute`` equal the single-device one.

Keras splits a meta-batch's task axis over the replicas and its optimizer sums the
replicas' gradients; each correction here undoes one assumption Keras makes for
ordinary (example-batched) training that does not hold for a meta-batch of tasks.
"""
import keras
import tensorflow as tf

# Keras Loss reductions it divides by the replica count under tf.distribute.
_REPLICA_SCALED_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


def undo_loss_scaling(loss, loss_fn):
    """``loss_fn``'s value as the plain mean over a task's examples.

    Under tf.distribute Keras divides mean-reduced losses by the replica count (it
    expects per-replica losses of one global batch to be summed); a task's loss drives
    its own inner steps, so it must stay the plain mean.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if (replicas > 1 and isinstance(loss_fn, keras.losses.Loss)
            and loss_fn.reduction in _REPLICA_SCALED_REDUCTIONS):
        loss = loss * tf.cast(replicas, loss.dtype)
    return loss


def replica_share(local_tasks):
    """This replica's fraction of the global meta-batch, or None on a single replica.

    Keras' optimizer sums gradients over replicas; each replica's gradient is a mean
    over its own tasks, so weighting it by ``local tasks / global tasks`` makes the sum
    the mean over the whole meta-batch, as on one device (even for an uneven split).
    Metrics need no weights: with the even split ``maml_tf.distribute`` checks for,
    Keras' average of the replicas' task means is the mean over all tasks.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    local = tf.cast(tf.shape(local_tasks)[0], tf.float32)
    return local / context.all_reduce(tf.distribute.ReduceOp.SUM, local)


def share_step(local_tasks, grads, state, state_kinds):
    """``(grads, state)`` of this replica's tasks, weighted so that the optimizer's sum
    over replicas is the whole meta-batch's mean gradient and every replica writes back
    the same state (BN moving statistics: their task-weighted mean over all replicas)."""
    share = replica_share(local_tasks)
    if share is None:
        return grads, state
    grads = [None if g is None else g * tf.cast(share, g.dtype) for g in grads]
    context = tf.distribute.get_replica_context()
    state = [context.all_reduce(tf.distribute.ReduceOp.SUM, value * tf.cast(share, value.dtype))
             if kind == "mean" else value for kind, value in zip(state_kinds, state)]
    return grads, state


def step_logs(logs):
    """Step logs Keras can aggregate: across workers Keras averages them along axis 0,
    which scalars lack (tensorflow/tensorflow#72388); the average is a scalar again."""
    strategy = tf.distribute.get_strategy()
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs
