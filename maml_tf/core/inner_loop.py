"""One task's inner loop (Finn et al. 2017, Algorithm 2, lines 5-8): adapt the weights
on the support set with functional gradient steps, score the query set."""
import re

import keras
import tensorflow as tf

from maml_tf.core import keras_internals, replicas

LOSS_REDUCTIONS = ("mean", "sum_over_shots")
_HALF = (tf.float16, tf.bfloat16)


class InnerLoop:
    """Adapts a model's weights to one task and scores the task's query set.

    Args:
        functional: the ``FunctionalModel`` to run with given weights.
        adapted: indices into ``model.trainable_variables`` of the weights it adapts.
        inner_rule: an ``InnerSGD`` (the update of Eq. 1, or a learned-rate variant).
        first_order: treat the inner gradients as constants (Section 5.2).
        loss_reduction: ``"mean"`` or ``"sum_over_shots"`` (see ``MAML``).
        multi_step_loss, multi_step_loss_iterations: MAML++'s multi-step loss.
        state_updates: ``state_updates(model, batch_norm)`` of the model.
        iterations: callable returning the meta-iteration counter (anneals the
            multi-step weights).
    """

    def __init__(self, functional, adapted, inner_rule, first_order, loss_reduction,
                 multi_step_loss, multi_step_loss_iterations, state_updates, iterations):
        self.functional = functional
        self.adapted = adapted
        self.inner_rule = inner_rule
        self.first_order = first_order
        self.loss_reduction = loss_reduction
        self.multi_step_loss = multi_step_loss
        self.multi_step_loss_iterations = multi_step_loss_iterations
        self.state_updates = state_updates
        self.iterations = iterations
        self.loss = None  # the per-task loss, set by MAML.compile

    def task_loss(self, y, predictions):
        """The per-task loss (inner and outer), a plain mean over the task's examples."""
        if predictions.dtype in _HALF:  # mixed precision: the loss in float32
            predictions = tf.cast(predictions, tf.float32)
        loss = replicas.undo_loss_scaling(self.loss(y, predictions), self.loss)
        if self.loss_reduction == "sum_over_shots":
            loss = loss * tf.cast(tf.shape(predictions)[-1], loss.dtype)
        return loss

    @staticmethod
    def accuracy(y, predictions):
        if not y.dtype.is_integer:
            return None
        hits = tf.equal(tf.argmax(predictions, axis=-1, output_type=y.dtype), y)
        dtype = tf.float32 if predictions.dtype in _HALF else predictions.dtype
        return tf.reduce_mean(tf.cast(hits, dtype))

    def adapt(self, meta_values, x, y, steps, training, per_step, query=None):
        """Inner loop on one task. Returns (full weight list, query record per step)."""
        fast = [meta_values[i] for i in self.adapted]
        record = []

        def full(fast_values):
            values = list(meta_values)
            for i, v in zip(self.adapted, fast_values):
                values[i] = v
            return values

        def score(fast_values):
            preds, state = self.functional(full(fast_values), query[0], training=training)
            return self.task_loss(query[1], preds), self.accuracy(query[1], preds), preds, state

        if query is not None and steps == 0:
            record.append(score(fast))
        for step in range(steps):
            if query is not None and step == 0 and per_step:
                record.append(score(fast))
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(fast)
                preds, _ = self.functional(full(fast), x, training=training)
                loss = self.task_loss(y, preds)
            grads = tape.gradient(loss, fast, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            if self.first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            fast = self.inner_rule.update(fast, grads, step)
            if query is not None and (per_step or step == steps - 1):
                record.append(score(fast))
        return full(fast), record

    def task(self, meta_values, episode, steps, training, per_step):
        """One task: adapt on support, score on query. Returns a dict of tensors:
        ``loss`` and ``predictions``, ``accuracy`` for integer labels, ``state`` (the
        model's new non-trainable values) when training a model that has some."""
        sx, sy, qx, qy = episode
        multi_step = self.multi_step_loss and training and steps > 1 and not per_step
        _, record = self.adapt(meta_values, sx, sy, steps, training, per_step or multi_step,
                               query=(qx, qy))
        losses = tf.stack([r[0] for r in record])
        out = {"predictions": record[-1][2]}
        if training and self.state_updates:
            out["state"] = [record[-1][3][i] for i, _ in self.state_updates]
        if per_step:
            out["loss"] = losses
        elif multi_step:  # record = query loss before and after each of the steps
            out["loss"] = tf.reduce_sum(self.multi_step_weights(steps, losses.dtype) * losses[1:])
        else:
            out["loss"] = losses[-1]
        if record[-1][1] is not None:
            accuracies = tf.stack([r[1] for r in record])
            out["accuracy"] = accuracies if per_step else accuracies[-1]
        return out

    def multi_step_weights(self, steps, dtype):
        """MAML++ importance weights: uniform at first, annealed to the last step."""
        progress = tf.minimum(
            tf.cast(self.iterations(), dtype) / float(max(self.multi_step_loss_iterations, 1)), 1.0)
        early = tf.maximum((1.0 - progress) / steps, 0.03 / steps) * tf.ones([steps - 1], dtype)
        return tf.concat([early, [1.0 - tf.reduce_sum(early)]], axis=0)


def state_updates(model, batch_norm):
    """Non-trainable state a meta-step writes back: ``(index, "mean")`` for BN moving
    statistics in inductive mode (averaged over the meta-batch's query passes) and
    ``(index, "first")`` for integer RNG state (so dropout masks change every step)."""
    moving = set()
    if batch_norm == "inductive":
        moving = {id(w) for l in keras_internals.all_layers(model)
                  if isinstance(l, keras.layers.BatchNormalization)
                  for w in (l.moving_mean, l.moving_variance)}
    updates = []
    for i, v in enumerate(model.non_trainable_variables):
        if id(v) in moving:
            updates.append((i, "mean"))
        elif tf.as_dtype(v.dtype).is_integer:
            updates.append((i, "first"))
    return updates


def select_adapted(model, adapt):
    """Indices into ``model.trainable_variables`` of the weights the inner loop adapts."""
    variables = model.trainable_variables
    if not variables:
        raise ValueError("The model has no trainable weights to meta-learn.")
    if adapt == "all":
        chosen = list(range(len(variables)))
    elif adapt == "head":
        last = [l for l in keras_internals.all_layers(model) if l.trainable_weights][-1]
        ids = {id(w) for w in last.trainable_weights}
        chosen = [i for i, v in enumerate(variables) if id(v) in ids]
    elif adapt == "no_batch_norm":
        bn = {id(w) for l in keras_internals.all_layers(model)
              if isinstance(l, keras.layers.BatchNormalization) for w in l.trainable_weights}
        chosen = [i for i, v in enumerate(variables) if id(v) not in bn]
    elif callable(adapt):
        chosen = [i for i, v in enumerate(variables) if adapt(v)]
    elif isinstance(adapt, (list, tuple)):
        chosen = [i for i, v in enumerate(variables) if any(re.search(p, v.path) for p in adapt)]
    else:
        raise ValueError("adapt must be 'all', 'head', 'no_batch_norm', a list of regexes "
                         f"or a predicate, got {adapt!r}.")
    if not chosen:
        paths = ", ".join(v.path for v in variables)
        raise ValueError(f"adapt={adapt!r} selects no trainable weight. Weights are: {paths}")
    return chosen
