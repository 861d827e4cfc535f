"""MAML as a ``keras.Model``: ``train_step`` is one meta-update, ``test_step`` adapts
and evaluates (Finn, Abbeel & Levine 2017, Algorithm 2).

Data is a meta-batch of episodes, ``{"support": (x, y), "query": (x, y)}`` with a
leading task axis. Each task starts from the meta-parameters, takes ``inner_steps``
functional gradient steps on its support set and is scored on its query set; the
mean query loss is differentiated w.r.t. the meta-parameters through the inner
steps (second order) or treating the inner gradients as constants (first order).

The inner loop lives in ``inner_loop``, the meta-gradient engines in
``meta_gradient``, the tf.distribute corrections in ``replicas``, mixed precision in
``precision`` and the private Keras API this class needs in ``keras_internals``.
"""
import copy
import functools

import keras
import tensorflow as tf

from maml_tf.core import arguments
from maml_tf.core import episodes as episode_utils
from maml_tf.core import inner as inner_rules
from maml_tf.core import meta_gradient, precision, replicas
from maml_tf.core.functional import FunctionalModel
from maml_tf.core.inner_loop import LOSS_REDUCTIONS, InnerLoop, select_adapted, state_updates
from maml_tf.core.keras_internals import TrainerHooks
from maml_tf.core.meta_gradient import TASK_PARALLELISM

__all__ = ["MAML", "TASK_PARALLELISM", "LOSS_REDUCTIONS"]


class MAML(TrainerHooks, keras.Model):
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

    Mixed precision: build the model under ``keras.mixed_precision`` policy
    ``mixed_float16`` (compile adds loss scaling) or ``mixed_bfloat16``.
    """

    def __init__(self, model, inner_lr=0.01, inner_steps=1, eval_inner_steps=None,
                 first_order=False, adapt="all", inner_rule="sgd", multi_step_loss=False,
                 multi_step_loss_iterations=10000, batch_norm="transductive",
                 loss_reduction="mean", task_parallelism="auto", **kwargs):
        super().__init__(**kwargs)
        inner_steps = arguments.whole_number("inner_steps", inner_steps)
        eval_inner_steps = arguments.whole_number("eval_inner_steps", eval_inner_steps, none_ok=True)
        if not isinstance(inner_rule, inner_rules.InnerSGD):  # a rule instance brings its own rate
            inner_lr = arguments.positive_number("inner_lr", inner_lr)
        first_order = arguments.flag("first_order", first_order)
        multi_step_loss = arguments.flag("multi_step_loss", multi_step_loss)
        multi_step_loss_iterations = arguments.whole_number("multi_step_loss_iterations", multi_step_loss_iterations, 1)
        arguments.one_of("loss_reduction", loss_reduction, LOSS_REDUCTIONS)
        arguments.one_of("task_parallelism", task_parallelism, TASK_PARALLELISM)
        self.functional = FunctionalModel(model, batch_norm=batch_norm)
        self.model = model
        self.inner_steps = int(inner_steps)
        self.eval_inner_steps = self.inner_steps if eval_inner_steps is None else int(eval_inner_steps)
        self.batch_norm = batch_norm
        self.__dict__["adapt_spec"] = adapt  # user data, kept out of Keras' tracking
        self._adapted = select_adapted(model, adapt)
        self.inner_rule = inner_rules.get(inner_rule, inner_lr)
        self.inner_rule.build_for([model.trainable_variables[i] for i in self._adapted], self.inner_steps)
        self.inner_lr = self.inner_rule.learning_rate
        self.task_parallelism = task_parallelism
        self._state_updates = state_updates(model, batch_norm)
        self.inner_loop = InnerLoop(
            self.functional, self._adapted, self.inner_rule, bool(first_order), loss_reduction,
            bool(multi_step_loss), int(multi_step_loss_iterations), self._state_updates,
            iterations=lambda: self.optimizer.iterations)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        # Compiled functions; stored past Keras' attribute tracking.
        self.__dict__["_compiled_fns"] = {}
        self.__dict__["_xla"] = False
        self.built = True

    # The inner loop's settings, read-only so that they cannot drift from it.
    first_order = property(lambda self: self.inner_loop.first_order)
    loss_reduction = property(lambda self: self.inner_loop.loss_reduction)
    multi_step_loss = property(lambda self: self.inner_loop.multi_step_loss)
    multi_step_loss_iterations = property(lambda self: self.inner_loop.multi_step_loss_iterations)
    task_loss = property(lambda self: self.inner_loop.loss, doc="The per-task loss from compile().")

    # ------------------------------------------------------------------ Keras API
    def compile(self, optimizer="adam", loss="mse", metrics=None, jit_compile="auto",
                auto_scale_loss=True, **kwargs):
        """Like ``keras.Model.compile``; ``loss`` is the per-task loss (inner and outer).

        ``jit_compile="auto"``: XLA for vectorized task parallelism (the MLP default),
        off for conv nets, where on CPU it was slower and slow to compile
        (benchmarks/README.md). A model built under ``mixed_float16`` gets its optimizer
        wrapped in a ``LossScaleOptimizer`` (unless ``auto_scale_loss=False``).
        """
        precision.check(self.model)
        loss_fn = keras.losses.get(loss)
        if loss_fn is None:
            raise ValueError("compile() needs a per-task loss, e.g. loss='mse' or "
                             "keras.losses.SparseCategoricalCrossentropy(from_logits=True).")
        if not isinstance(loss_fn, keras.losses.Loss):
            per_example = loss_fn

            @functools.wraps(per_example)  # keeps the name; __wrapped__ is the Keras function
            def loss_fn(y, p):
                return tf.reduce_mean(per_example(y, p))
        self.inner_loop.loss = loss_fn
        optimizer = keras.optimizers.get(optimizer)
        if (auto_scale_loss and precision.needs_loss_scaling(self.model)
                and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        if jit_compile == "auto":
            jit_compile = self._resolved_parallelism() == "vectorized"
        # XLA compiles the math (_xla_compiled; on one device without loss scaling also the
        # update, _fused_train_step); the input checks and the NaN checks stay outside,
        # because XLA drops tf.debugging assertions.
        self.__dict__["_xla"] = bool(jit_compile)
        self._compiled_fns.clear()
        super().compile(optimizer=optimizer, metrics=metrics, jit_compile=False,
                        auto_scale_loss=False, **kwargs)

    @property
    def adapted_variables(self):
        """The model's weights the inner loop adapts (``adapt=``), in model order."""
        return [self.model.trainable_variables[i] for i in self._adapted]

    def fit(self, x=None, y=None, *args, **kwargs):
        """``keras.Model.fit`` on meta-batches of episodes. A ``tf.data`` stream is used in its
        own order (task streams are seeded per batch, so a resumed run sees the same tasks):
        ``shuffle`` defaults to False there, where Keras would warn that it ignores it."""
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)
        steps = arguments.whole_number("steps_per_epoch", kwargs.get("steps_per_epoch"), 1, none_ok=True)
        endless = isinstance(x, tf.data.Dataset) and x.cardinality() == tf.data.INFINITE_CARDINALITY
        if endless and steps is None:  # Keras would run the first epoch forever
            raise ValueError("fit() on an endless task stream needs steps_per_epoch, a whole number >= 1 "
                             "(meta-batches per epoch); got None.")
        return super().fit(x, y, *args, **kwargs)

    def call(self, inputs, training=False):
        """The meta-learned model itself (no adaptation)."""
        return self.model(inputs, training=training)

    def train_step(self, data):
        support, query = episode_utils.unpack(data, self.model)
        variables = self.trainable_variables
        scale_loss = precision.loss_scaler(self.optimizer)
        if scale_loss is not None and not self.optimizer.built:
            self.optimizer.build(variables)  # else scale_loss uses the initial scale for good
        if self._fuses_train_step(scale_loss):
            return self._fused_train_step(support, query)
        objective = self._xla_compiled(
            "train", lambda s, q: self._meta_objective(s, q, self.trainable_variables, scale_loss))
        step = objective(support, query)
        loss = _check_finite(step.loss, "meta-loss")
        checks = [loss]
        if scale_loss is None:  # a LossScaleOptimizer skips a step whose scaled gradient overflowed
            checks.append(_check_finite(tf.linalg.global_norm([g for g in step.grads if g is not None]),
                                        "meta-gradient"))
        grads, state = replicas.share_step(support[0], step.grads, step.state,
                                           [kind for _, kind in self._state_updates])
        with tf.control_dependencies(checks):  # no update from a NaN step
            self.optimizer.apply(grads, variables)
        for (index, _), value in zip(self._state_updates, state):
            self.model.non_trainable_variables[index].assign(value)
        return self._update_metrics(loss, step.accuracy, query, step.predictions)

    def _fuses_train_step(self, scale_loss):
        return self._xla and scale_loss is None and tf.distribute.get_strategy().num_replicas_in_sync == 1

    def _fused_train_step(self, support, query):
        """``train_step`` with the meta-gradient, the NaN guard and the update in one XLA
        call (one device, no loss scaling): per meta-iteration the sinusoid's step is
        small enough that TensorFlow's per-op cost outside XLA was a quarter to a half of it
        (benchmarks/README.md). XLA drops assertions, so the call skips a non-finite
        step's update itself and the checks on its outputs raise afterwards."""
        variables = self.trainable_variables
        if not self.optimizer.built:
            self.optimizer.build(variables)  # no variables may be created inside XLA

        def step(support, query):
            step = self._meta_objective(support, query, variables)
            norm = tf.linalg.global_norm([g for g in step.grads if g is not None])
            finite = tf.logical_and(tf.math.is_finite(step.loss), tf.math.is_finite(norm))

            def update():
                self.optimizer.apply(step.grads, variables)
                return tf.constant(True)

            tf.cond(finite, update, lambda: tf.constant(False))  # no update from a NaN step
            for (index, _), value in zip(self._state_updates, step.state):
                self.model.non_trainable_variables[index].assign(value)
            return step.loss, norm, step.accuracy, step.predictions

        loss, norm, accuracy, predictions = self._xla_compiled("fused_train", step)(support, query)
        loss = _check_finite(loss, "meta-loss")
        with tf.control_dependencies([_check_finite(norm, "meta-gradient")]):
            loss = tf.identity(loss)
        return self._update_metrics(loss, accuracy, query, predictions)

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
    def adapt(self, support_x, support_y, steps=None, training=False, start=None):
        """Adapted weights for one task (a list in ``model.trainable_variables`` order).

        ``start``: weights to adapt from, in the same order (e.g. those adapted to another
        task, ``maml_tf.evaluation.task_switching``); default the meta-learned ones."""
        self._require_compiled()
        steps = self.eval_inner_steps if steps is None else arguments.whole_number("steps", steps)
        return self.inner_loop.adapt(self._start_values(start), support_x, support_y, steps, training,
                                     per_step=False)[0]

    def meta_gradients(self, episodes, first_order=None):
        """Mean post-adaptation query loss of a meta-batch and its gradient w.r.t.
        ``trainable_variables`` (what ``train_step`` applies); changes nothing.

        ``first_order``: True / False gives the first- / second-order meta-gradient whatever
        this MAML trains with (None: its own setting), to compare both on one meta-batch.
        """
        self._require_compiled()
        support, query = episode_utils.unpack(episodes, self.model)
        inner_loop = self.inner_loop
        if first_order is not None and bool(first_order) != inner_loop.first_order:
            inner_loop = copy.copy(inner_loop)  # shares the model, the rule and the loss
            inner_loop.first_order = bool(first_order)
        step = self._meta_objective(support, query, self.trainable_variables, inner_loop=inner_loop)
        return step.loss, step.grads

    def predict_with(self, weights, x, training=False):
        """Run the model with weights from ``adapt`` (a list in model variable order)."""
        return self.functional(weights, x, training=training)[0]

    def evaluate_tasks(self, episodes, steps=None):
        """Per-task query loss (and accuracy for integer labels) after 0..steps inner steps.

        Returns a dict of ``[num_tasks, steps + 1]`` tensors; the basis of
        ``maml_tf.evaluation.meta_test``.
        """
        self._require_compiled()
        steps = self.eval_inner_steps if steps is None else arguments.whole_number("steps", steps)
        support, query = episode_utils.unpack(episodes, self.model)
        key = ("evaluate_tasks", steps) + tuple(tuple(t.shape) for t in support + query)
        out = self._xla_compiled(
            key, lambda s, q: self._map_tasks(s, q, steps, training=False, per_step=True),
            always_trace=True)(support, query)
        out.pop("predictions")
        return out

    # ------------------------------------------------------------------ internals
    def _meta_objective(self, support, query, variables, scale_loss=None, inner_loop=None):
        """Mean post-adaptation query loss over tasks and its meta-gradient, a
        ``meta_gradient.MetaStep`` (loss, accuracy, predictions, grads, state)."""
        episodes = (support[0], support[1], query[0], query[1])
        inner_loop = inner_loop or self.inner_loop

        def task(episode):  # reads the meta-parameters inside the engine's tape
            return inner_loop.task(self._meta_values(), episode, self.inner_steps,
                                        training=True, per_step=False)

        engine = meta_gradient.ENGINES[self._resolved_parallelism()]
        return engine(task, episodes, variables, [kind for _, kind in self._state_updates], scale_loss)

    def _map_tasks(self, support, query, steps, training, per_step):
        """Run every task of the meta-batch (forward only)."""
        meta_values = self._meta_values()
        episodes = (support[0], support[1], query[0], query[1])
        return meta_gradient.map_tasks(
            lambda episode: self.inner_loop.task(meta_values, episode, steps, training, per_step),
            episodes, self._resolved_parallelism())

    def _task_loss(self, y, predictions):
        return self.inner_loop.task_loss(y, predictions)

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

    def _start_values(self, start):
        """``start`` checked against the model's weights, or the meta-parameters if None."""
        if start is None:
            return self._meta_values()
        variables = self.model.trainable_variables
        start = list(start)
        if len(start) != len(variables) or any(
                not tf.TensorShape(v.shape).is_compatible_with(tf.convert_to_tensor(w).shape)
                for v, w in zip(variables, start)):
            raise ValueError(f"start must be {len(variables)} tensors shaped as model.trainable_variables "
                             "(e.g. what adapt returned); got "
                             f"{[tuple(tf.convert_to_tensor(w).shape) for w in start]}.")
        return [tf.convert_to_tensor(w, dtype=v.dtype) for v, w in zip(variables, start)]

    def _require_compiled(self):
        if self.task_loss is None:
            raise RuntimeError("Call compile(optimizer=..., loss=...) before adapting: "
                               "the per-task loss comes from compile().")

    def _resolved_parallelism(self):
        return meta_gradient.resolve(self.task_parallelism, self.model)

    def _example_specs(self, episodes):
        """Symbolic (labels, predictions) of one query example batch, to build the
        compile metrics."""
        _, (qx, qy) = episode_utils.unpack(episodes)
        examples = lambda t: keras.KerasTensor((None, *t.shape[2:]), t.dtype.name)  # noqa: E731
        return examples(qy), self.model.compute_output_spec(examples(qx))

    def _update_metrics(self, loss, accuracy, query, predictions):
        self.loss_tracker.update_state(loss)
        if accuracy is not None:
            self.accuracy_tracker.update_state(accuracy)
        y, p = query[1], predictions
        logs = dict(self.compute_metrics(  # compile(metrics=...) see the query examples
            None, tf.reshape(y, [-1] + y.shape[2:].as_list()), tf.reshape(p, [-1] + p.shape[2:].as_list())))
        if accuracy is None:
            logs.pop(self.accuracy_tracker.name)
        return replicas.step_logs(logs)


def _check_finite(value, what):
    return tf.debugging.check_numerics(
        value, f"MAML {what} became NaN or Inf: lower inner_lr or the outer learning "
               "rate, or check the episodes for NaN inputs")
