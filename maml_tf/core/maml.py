"""MAML as a ``keras.Model``: ``train_step`` is one meta-update, ``test_step`` adapts
and evaluates (Finn, Abbeel & Levine 2017, Algorithm 2).

Data is a meta-batch of episodes, ``{"support": (x, y), "query": (x, y)}`` with a
leading task axis. Each task starts from the meta-parameters, takes ``inner_steps``
functional gradient steps on its support set and is scored on its query set; the
mean query loss is differentiated w.r.t. the meta-parameters through the inner
steps (second order) or treating the inner gradients as constants (first order).
"""
import copy
import functools
import re

import keras
import tensorflow as tf

from maml_tf.core import episodes as episode_utils
from maml_tf.core import inner as inner_rules
from maml_tf.core.functional import FunctionalModel

_CONV_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
TASK_PARALLELISM = ("auto", "vectorized", "loop", "unrolled")
LOSS_REDUCTIONS = ("mean", "sum_over_shots")
# Keras Loss reductions it divides by the replica count under tf.distribute.
_REPLICA_SCALED_REDUCTIONS = ("sum_over_batch_size", "mean", "mean_with_sample_weight")


class MAML(keras.Model):
    """Meta-learns the initial weights of any built Keras model.

    Args:
        model: the network to meta-train (Sequential, functional or subclassed; built).
        inner_lr: inner step size alpha (initial value when the rule learns it).
        inner_steps: gradient steps per task during meta-training.
        eval_inner_steps: steps at meta-test (``evaluate``); defaults to ``inner_steps``.
        first_order: drop the second-order terms (first-order MAML, Section 5.2).
        adapt: which weights the inner loop changes: ``"all"`` (paper), ``"head"``
            (the last layer with weights, ANIL), ``"no_batch_norm"`` (all but batch
            norm's scale and offset, as the authors' code), a list of regexes matched
            against variable paths, or a predicate ``f(variable) -> bool``.
        inner_rule: ``"sgd"`` (paper), ``"meta-sgd"`` (learned per-parameter rates) or
            ``"lslr"`` (learned per-layer-per-step rates, MAML++), or an ``InnerSGD``.
        multi_step_loss: MAML++ multi-step loss: the outer loss weights the query loss
            after every inner step, annealing towards the last step over
            ``multi_step_loss_iterations`` meta-iterations.
        batch_norm: ``"transductive"`` (default; batch statistics everywhere, as the
            authors' code) or ``"inductive"`` (Keras' standard train/test behaviour).
        loss_reduction: ``"mean"`` over examples (paper) or ``"sum_over_shots"``: summed
            over examples and divided by the shots K, as the authors' code does for
            cross-entropy (equals the mean times the number of classes).
        task_parallelism: how tasks of a meta-batch run: ``"vectorized"``
            (``tf.vectorized_map``), ``"loop"`` (``tf.while_loop`` that sums per-task
            gradients, least memory), ``"unrolled"`` (one graph copy per task in the
            meta-gradient; evaluation then loops, since unrolling a whole test chunk
            only adds compile time) or
            ``"auto"`` (vectorized for models without convolutions, loop otherwise:
            measured fastest on CPU, see benchmarks/README.md).
    """

    def __init__(self, model, inner_lr=0.01, inner_steps=1, eval_inner_steps=None,
                 first_order=False, adapt="all", inner_rule="sgd", multi_step_loss=False,
                 multi_step_loss_iterations=10000, batch_norm="transductive",
                 loss_reduction="mean", task_parallelism="auto", **kwargs):
        super().__init__(**kwargs)
        if int(inner_steps) < 0 or (eval_inner_steps is not None and int(eval_inner_steps) < 0):
            raise ValueError("inner_steps and eval_inner_steps must be >= 0.")
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got {loss_reduction!r}.")
        if task_parallelism not in TASK_PARALLELISM:
            raise ValueError(f"task_parallelism must be one of {TASK_PARALLELISM}, got {task_parallelism!r}.")
        self.functional = FunctionalModel(model, batch_norm=batch_norm)
        self.model = model
        self.inner_steps = int(inner_steps)
        self.eval_inner_steps = self.inner_steps if eval_inner_steps is None else int(eval_inner_steps)
        self.first_order = bool(first_order)
        self.multi_step_loss = bool(multi_step_loss)
        self.multi_step_loss_iterations = int(multi_step_loss_iterations)
        self.batch_norm = batch_norm
        self.loss_reduction = loss_reduction
        self.__dict__["adapt_spec"] = adapt  # user data, kept out of Keras' tracking
        self._adapted = _select_adapted(model, adapt)
        self.inner_rule = inner_rules.get(inner_rule, inner_lr)
        self.inner_rule.build_for([model.trainable_variables[i] for i in self._adapted], self.inner_steps)
        self.inner_lr = self.inner_rule.learning_rate
        self.task_parallelism = task_parallelism
        self.task_loss = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self._state_updates = _state_updates(model, batch_norm)
        # Compiled functions; stored past Keras' attribute tracking.
        self.__dict__["_compiled_fns"] = {}
        self.__dict__["_xla"] = False
        self.built = True

    # ------------------------------------------------------------------ Keras API
    def compile(self, optimizer="adam", loss="mse", metrics=None, jit_compile="auto", **kwargs):
        """Like ``keras.Model.compile``; ``loss`` is the per-task loss (inner and outer).

        ``jit_compile="auto"``: XLA for vectorized task parallelism (the MLP default),
        off for conv nets, where on CPU it was slower and slow to compile (STACK.md,
        benchmarks/README.md).
        """
        loss_fn = keras.losses.get(loss)
        if loss_fn is None:
            raise ValueError("compile() needs a per-task loss, e.g. loss='mse' or "
                             "keras.losses.SparseCategoricalCrossentropy(from_logits=True).")
        if not isinstance(loss_fn, keras.losses.Loss):
            per_example = loss_fn

            @functools.wraps(per_example)  # keeps the name; __wrapped__ is the Keras function
            def loss_fn(y, p):
                return tf.reduce_mean(per_example(y, p))
        self.task_loss = loss_fn
        if jit_compile == "auto":
            jit_compile = self._resolved_parallelism() == "vectorized"
        # XLA compiles only the math (_xla_compiled); input checks, the NaN check and the
        # update stay outside, because XLA drops tf.debugging assertions.
        self.__dict__["_xla"] = bool(jit_compile)
        self._compiled_fns.clear()
        super().compile(optimizer=optimizer, metrics=metrics, jit_compile=False, **kwargs)

    @property
    def adapted_variables(self):
        """The model's weights the inner loop adapts (``adapt=``), in model order."""
        return [self.model.trainable_variables[i] for i in self._adapted]

    def call(self, inputs, training=False):
        """The meta-learned model itself (no adaptation)."""
        return self.model(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Create the optimizer's and compile metrics' variables in the strategy's scope
        before a distributed fit / evaluate (the TF trainer's hook; on one device they
        are created when the step is traced).

        Keras' own version averages a batch over the replicas, which fails for dict data
        under MultiWorkerMirroredStrategy (keras-team/keras#20329), then calls the model
        on it, which takes examples, not episodes.
        """
        if self._distribute_strategy is None:
            return
        with self.distribute_strategy.scope():
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)
            if self._compile_metrics is not None and not self._compile_metrics.built:
                if data_batch is None:  # one meta-batch, as Keras takes one
                    _, _, distributed = next(iter(iterator))
                    data_batch = next(distributed)
                else:  # (x, y, sample_weight) from train_on_batch / test_on_batch
                    data_batch = data_batch[0]
                local = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0], data_batch)
                _, (qx, qy) = episode_utils.unpack(local)
                examples = lambda t: keras.KerasTensor((None, *t.shape[2:]), t.dtype.name)  # noqa: E731
                self._compile_metrics.build(examples(qy), self.model.compute_output_spec(examples(qx)))

    def train_step(self, data):
        support, query = episode_utils.unpack(data, self.model)
        variables = self.trainable_variables
        objective = self._xla_compiled(
            "train", lambda s, q: self._meta_objective(s, q, self.trainable_variables))
        loss, accuracy, query_predictions, grads, state = objective(support, query)
        loss = _check_finite(loss, "meta-loss")
        grad_norm = _check_finite(tf.linalg.global_norm([g for g in grads if g is not None]),
                                  "meta-gradient")
        share = _replica_share(support[0])
        if share is not None:  # the optimizer sums gradients over replicas
            grads = [None if g is None else g * tf.cast(share, g.dtype) for g in grads]
            state = [_all_replicas_mean(value, share) if kind == "mean" else value
                     for (_, kind), value in zip(self._state_updates, state)]
        with tf.control_dependencies([loss, grad_norm]):  # no update from a NaN step
            self.optimizer.apply(grads, variables)
        for (index, _), value in zip(self._state_updates, state):
            self.model.non_trainable_variables[index].assign(value)
        return self._update_metrics(loss, accuracy, query, query_predictions)

    def test_step(self, data):
        support, query = episode_utils.unpack(data, self.model)
        evaluate = self._xla_compiled(
            "test", lambda s, q: self._map_tasks(s, q, self.eval_inner_steps, training=False, per_step=False))
        out = evaluate(support, query)
        return self._update_metrics(tf.reduce_mean(out["loss"]), out.get("accuracy"), query,
                                    out["predictions"])

    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "inner_lr": self.inner_lr, "inner_steps": self.inner_steps,
            "eval_inner_steps": self.eval_inner_steps, "first_order": self.first_order,
            "adapt": "custom" if callable(self.adapt_spec) else (
                self.adapt_spec if isinstance(self.adapt_spec, str) else list(self.adapt_spec)),
            "inner_rule": {v: k for k, v in inner_rules.INNER_RULES.items()}.get(type(self.inner_rule), "custom"),
            "multi_step_loss": self.multi_step_loss,
            "multi_step_loss_iterations": self.multi_step_loss_iterations,
            "batch_norm": self.batch_norm, "loss_reduction": self.loss_reduction,
            "task_parallelism": self.task_parallelism,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = copy.deepcopy(config)  # Keras consumes nested model configs in place
        config["model"] = keras.saving.deserialize_keras_object(config["model"], custom_objects=custom_objects)
        return cls(**config)

    # ------------------------------------------------------------------ public helpers
    def adapt(self, support_x, support_y, steps=None, training=False):
        """Adapted weights for one task (a list in ``model.trainable_variables`` order)."""
        self._require_compiled()
        steps = self.eval_inner_steps if steps is None else int(steps)
        values = self._meta_values()
        return self._adapt(values, support_x, support_y, steps, training, per_step=False)[0]

    def meta_gradients(self, episodes):
        """Mean post-adaptation query loss of a meta-batch and its gradient w.r.t.
        ``trainable_variables`` (what ``train_step`` applies); changes nothing."""
        self._require_compiled()
        support, query = episode_utils.unpack(episodes, self.model)
        loss, _, _, grads, _ = self._meta_objective(support, query, self.trainable_variables)
        return loss, grads

    def predict_with(self, weights, x, training=False):
        """Run the model with weights from ``adapt`` (a list in model variable order)."""
        return self.functional(weights, x, training=training)[0]

    def evaluate_tasks(self, episodes, steps=None):
        """Per-task query loss (and accuracy for integer labels) after 0..steps inner steps.

        Returns a dict of ``[num_tasks, steps + 1]`` tensors; the basis of
        ``maml_tf.evaluation.meta_test``.
        """
        self._require_compiled()
        steps = self.eval_inner_steps if steps is None else int(steps)
        support, query = episode_utils.unpack(episodes, self.model)
        key = ("evaluate_tasks", steps) + tuple(tuple(t.shape) for t in support + query)
        out = self._xla_compiled(
            key, lambda s, q: self._map_tasks(s, q, steps, training=False, per_step=True),
            always_trace=True)(support, query)
        out.pop("predictions")
        return out

    # ------------------------------------------------------------------ internals
    def _xla_compiled(self, key, fn, always_trace=False):
        """``fn`` compiled with XLA when enabled (cached per key); otherwise ``fn`` itself,
        or a plain ``tf.function`` with ``always_trace`` (for calls from eager code)."""
        if not (self._xla or always_trace):
            return fn
        if key not in self._compiled_fns:
            self._compiled_fns[key] = tf.function(fn, jit_compile=self._xla)
        return self._compiled_fns[key]

    def _meta_values(self):
        """The meta-parameters, as the inner loop starts from them. A model built under
        tf.distribute has mirrored variables, which only its replicas may watch, so
        their values serve instead (``evaluate_tasks`` after distributed training)."""
        values = [v.value for v in self.model.trainable_variables]
        if isinstance(values[0], tf.distribute.DistributedValues):
            values = [tf.convert_to_tensor(v) for v in values]
        return values

    def _require_compiled(self):
        if self.task_loss is None:
            raise RuntimeError("Call compile(optimizer=..., loss=...) before adapting: "
                               "the per-task loss comes from compile().")

    def _has_convolutions(self):
        return any(isinstance(l, _CONV_LAYERS) for l in self.model._flatten_layers(include_self=False))

    def _resolved_parallelism(self):
        if self.task_parallelism != "auto":
            return self.task_parallelism
        return "loop" if self._has_convolutions() else "vectorized"

    def _evaluation_parallelism(self):
        mode = self._resolved_parallelism()
        return "loop" if mode == "unrolled" else mode

    def _task_loss(self, y, predictions):
        loss = self.task_loss(y, predictions)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if (replicas > 1 and isinstance(self.task_loss, keras.losses.Loss)
                and self.task_loss.reduction in _REPLICA_SCALED_REDUCTIONS):
            # Under tf.distribute Keras divides mean-reduced losses by the replica count
            # (it expects per-replica losses of one global batch to be summed); a task's
            # loss drives its own inner steps, so it must stay the plain mean.
            loss = loss * tf.cast(replicas, loss.dtype)
        if self.loss_reduction == "sum_over_shots":
            loss = loss * tf.cast(tf.shape(predictions)[-1], loss.dtype)
        return loss

    def _accuracy(self, y, predictions):
        if not y.dtype.is_integer:
            return None
        hits = tf.equal(tf.argmax(predictions, axis=-1, output_type=y.dtype), y)
        return tf.reduce_mean(tf.cast(hits, predictions.dtype))

    def _adapt(self, meta_values, x, y, steps, training, per_step, query=None):
        """Inner loop on one task. Returns (full weight list, query record per step)."""
        fast = [meta_values[i] for i in self._adapted]
        record = []

        def full(fast_values):
            values = list(meta_values)
            for i, v in zip(self._adapted, fast_values):
                values[i] = v
            return values

        def score(fast_values):
            preds, state = self.functional(full(fast_values), query[0], training=training)
            return self._task_loss(query[1], preds), self._accuracy(query[1], preds), preds, state

        if query is not None and steps == 0:
            record.append(score(fast))
        for step in range(steps):
            if query is not None and step == 0 and per_step:
                record.append(score(fast))
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(fast)
                preds, _ = self.functional(full(fast), x, training=training)
                loss = self._task_loss(y, preds)
            grads = tape.gradient(loss, fast, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            if self.first_order:
                grads = [tf.stop_gradient(g) for g in grads]
            fast = self.inner_rule.update(fast, grads, step)
            if query is not None and (per_step or step == steps - 1):
                record.append(score(fast))
        return full(fast), record

    def _task(self, meta_values, episode, steps, training, per_step):
        """One task: adapt on support, score on query. Returns a dict of tensors."""
        sx, sy, qx, qy = episode
        multi_step = self.multi_step_loss and training and steps > 1 and not per_step
        _, record = self._adapt(meta_values, sx, sy, steps, training, per_step or multi_step,
                                query=(qx, qy))
        losses = tf.stack([r[0] for r in record])
        out = {"predictions": record[-1][2]}
        if training and self._state_updates:
            out["state"] = [record[-1][3][i] for i, _ in self._state_updates]
        if per_step:
            out["loss"] = losses
        elif multi_step:  # record = query loss before and after each of the steps
            out["loss"] = tf.reduce_sum(self._multi_step_weights(steps, losses.dtype) * losses[1:])
        else:
            out["loss"] = losses[-1]
        if record[-1][1] is not None:
            accuracies = tf.stack([r[1] for r in record])
            out["accuracy"] = accuracies if per_step else accuracies[-1]
        return out

    def _multi_step_weights(self, steps, dtype):
        """MAML++ importance weights: uniform at first, annealed to the last step."""
        progress = tf.minimum(
            tf.cast(self.optimizer.iterations, dtype) / float(max(self.multi_step_loss_iterations, 1)), 1.0)
        early = tf.maximum((1.0 - progress) / steps, 0.03 / steps) * tf.ones([steps - 1], dtype)
        return tf.concat([early, [1.0 - tf.reduce_sum(early)]], axis=0)

    def _map_tasks(self, support, query, steps, training, per_step, mode=None):
        """Run every task of the meta-batch (forward only); ``mode`` defaults to the
        evaluation parallelism."""
        meta_values = self._meta_values()
        episodes = (support[0], support[1], query[0], query[1])
        fn = lambda ep: self._task(meta_values, ep, steps, training, per_step)
        mode = mode or self._evaluation_parallelism()
        if mode == "vectorized":
            return tf.vectorized_map(fn, episodes)
        if mode == "unrolled":
            outs = [fn(tuple(t[i] for t in episodes)) for i in range(support[0].shape[0])]
            return tf.nest.map_structure(lambda *per_task: tf.stack(per_task), *outs)
        signature = self._output_signature(episodes, steps, training, per_step)
        return tf.map_fn(fn, episodes, fn_output_signature=signature)

    def _output_signature(self, episodes, steps, training, per_step):
        """Trace one task abstractly to get map_fn's output signature."""
        spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape[1:], t.dtype), episodes)
        meta_values = self._meta_values()
        graph = tf.function(lambda *ep: self._task(meta_values, ep, steps, training, per_step))
        out = graph.get_concrete_function(*spec).structured_outputs
        return tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), out)

    def _meta_objective(self, support, query, variables):
        """Mean post-adaptation query loss over tasks and its meta-gradient."""
        mode = self._resolved_parallelism()
        if mode == "loop":
            return self._meta_objective_loop(support, query, variables)
        if mode == "vectorized":
            out, grads = self._vectorized_meta_gradients(support, query, variables)
            loss = tf.reduce_mean(out["loss"])
        else:
            with tf.GradientTape() as tape:
                out = self._map_tasks(support, query, self.inner_steps, training=True, per_step=False,
                                      mode=mode)
                loss = tf.reduce_mean(out["loss"])
            grads = tape.gradient(loss, variables)
        accuracy = tf.reduce_mean(out["accuracy"]) if "accuracy" in out else None
        state = [_reduce_state(value, kind) for (_, kind), value in zip(self._state_updates, out.get("state", []))]
        return loss, accuracy, out["predictions"], grads, state

    def _vectorized_meta_gradients(self, support, query, variables):
        """Per-task meta-gradients inside ``tf.vectorized_map``, averaged outside.

        Differentiating *through* vectorized_map instead makes XLA treat every input as
        a compile-time constant (pfor's reduction converter computes the axes, and the
        gradient needs them constant across pfor's function boundary), so it recompiled
        at every weight update. Costs [tasks, *weight] memory for the per-task grads.
        """
        episodes = (support[0], support[1], query[0], query[1])
        connected = []

        def task(episode):
            with tf.GradientTape() as tape:
                meta_values = self._meta_values()
                out = self._task(meta_values, episode, self.inner_steps, True, False)
            grads = tape.gradient(out["loss"], variables)
            connected[:] = [g is not None for g in grads]
            out["grads"] = [tf.zeros_like(v) if g is None else g for v, g in zip(variables, grads)]
            return out

        out = tf.vectorized_map(task, episodes)
        grads = [tf.reduce_mean(g, axis=0) if c else None for g, c in zip(out.pop("grads"), connected)]
        return out, grads

    def _meta_objective_loop(self, support, query, variables):
        """Sum per-task meta-gradients in a ``tf.while_loop``: one task's graph, one
        task's activations in memory at a time."""
        episodes = (support[0], support[1], query[0], query[1])
        num_tasks = tf.shape(support[0])[0]
        signature = self._output_signature(episodes, self.inner_steps, True, False)
        predictions = tf.TensorArray(signature["predictions"].dtype, size=num_tasks,
                                     element_shape=signature["predictions"].shape)
        zero = tf.zeros([], variables[0].dtype)

        state_init = [tf.zeros(s.shape, s.dtype) for s in signature.get("state", [])]

        def body(i, grads, loss_sum, acc_sum, predictions, state):
            episode = tuple(t[i] for t in episodes)
            with tf.GradientTape() as tape:
                meta_values = self._meta_values()
                out = self._task(meta_values, episode, self.inner_steps, True, False)
            task_grads = tape.gradient(out["loss"], variables,
                                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
            grads = [g + t for g, t in zip(grads, task_grads)]
            acc = out.get("accuracy", zero)
            # running sum of BN statistics (averaged below); the last task's RNG state
            state = [s + t if kind == "mean" else t
                     for s, t, (_, kind) in zip(state, out.get("state", []), self._state_updates)]
            return (i + 1, grads, loss_sum + out["loss"], acc_sum + tf.cast(acc, zero.dtype),
                    predictions.write(i, out["predictions"]), state)

        init = (tf.constant(0), [tf.zeros_like(v) for v in variables], zero, zero, predictions, state_init)
        _, grads, loss_sum, acc_sum, predictions, state = tf.while_loop(
            lambda i, *_: i < num_tasks, body, init, parallel_iterations=2)
        n = tf.cast(num_tasks, zero.dtype)
        grads = [g / tf.cast(n, g.dtype) for g in grads]
        accuracy = acc_sum / n if "accuracy" in signature else None
        state = [s / tf.cast(n, s.dtype) if kind == "mean" else s
                 for s, (_, kind) in zip(state, self._state_updates)]
        return loss_sum / n, accuracy, predictions.stack(), grads, state

    def _update_metrics(self, loss, accuracy, query, predictions):
        self.loss_tracker.update_state(loss)
        if accuracy is not None:
            self.accuracy_tracker.update_state(accuracy)
        if self._compile_metrics is not None:
            y, p = query[1], predictions
            self._compile_metrics.update_state(
                tf.reshape(y, [-1] + y.shape[2:].as_list()), tf.reshape(p, [-1] + p.shape[2:].as_list()))
        logs = {"loss": self.loss_tracker.result()}
        if accuracy is not None:
            logs["accuracy"] = self.accuracy_tracker.result()
        if self._compile_metrics is not None:
            logs.update(self._compile_metrics.result())
        strategy = tf.distribute.get_strategy()
        if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)):
            # Across workers Keras averages step logs along axis 0, which scalars lack
            # (tensorflow/tensorflow#72388); the average is a scalar again.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


def _state_updates(model, batch_norm):
    """Non-trainable state a meta-step writes back: ``(index, "mean")`` for BN moving
    statistics in inductive mode (averaged over the meta-batch's query passes) and
    ``(index, "first")`` for integer RNG state (so dropout masks change every step)."""
    moving = set()
    if batch_norm == "inductive":
        moving = {id(w) for l in model._flatten_layers(include_self=False)
                  if isinstance(l, keras.layers.BatchNormalization)
                  for w in (l.moving_mean, l.moving_variance)}
    updates = []
    for i, v in enumerate(model.non_trainable_variables):
        if id(v) in moving:
            updates.append((i, "mean"))
        elif tf.as_dtype(v.dtype).is_integer:
            updates.append((i, "first"))
    return updates


def _reduce_state(per_task, kind):
    return tf.reduce_mean(per_task, axis=0) if kind == "mean" else per_task[0]


def _replica_share(local_tasks):
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


def _all_replicas_mean(value, share):
    """Task-weighted mean of a replica's state (BN moving statistics) over all replicas,
    so every replica writes back the same value the single-device step would."""
    context = tf.distribute.get_replica_context()
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value * tf.cast(share, value.dtype))


def _check_finite(value, what):
    return tf.debugging.check_numerics(
        value, f"MAML {what} became NaN or Inf: lower inner_lr or the outer learning "
               "rate, or check the episodes for NaN inputs")


def _select_adapted(model, adapt):
    """Indices into ``model.trainable_variables`` of the weights the inner loop adapts."""
    variables = model.trainable_variables
    if not variables:
        raise ValueError("The model has no trainable weights to meta-learn.")
    if adapt == "all":
        chosen = list(range(len(variables)))
    elif adapt == "head":
        last = [l for l in model._flatten_layers(include_self=False) if l.trainable_weights][-1]
        ids = {id(w) for w in last.trainable_weights}
        chosen = [i for i, v in enumerate(variables) if id(v) in ids]
    elif adapt == "no_batch_norm":
        bn = {id(w) for l in model._flatten_layers(include_self=False)
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
