"""Export a meta-trained MAML as a TensorFlow SavedModel that adapts at serving time.

The serving graph holds the meta-learned initialisation theta and runs the inner
loop of Finn, Abbeel & Levine (2017) (Section 2.2, Eq. 1; Algorithm 2, Section 3.1)
on the support set sent with each request: ``eval_inner_steps`` gradient steps of
the per-task loss with the configured rule (the paper's fixed alpha; Meta-SGD's learned
per-parameter rates, Li et al. 2017; MAML++ per-layer-per-step rates, Antoniou et
al. 2019), then predicts the queries with the adapted weights. Serving needs
neither ``maml_tf`` nor Keras: TF Serving or ``tf.saved_model.load`` run it as is.

Signatures (every input takes any number of examples; shapes are checked in the
graph, so a bad request fails with an ``InvalidArgumentError`` naming the input; so do
NaN or Inf values):

* ``adapt_and_predict(support_x, support_y, query_x)``
* ``adapt(support_x, support_y)``: the adapted weights, ``{variable path: tensor}``
* ``predict(x)``: the meta-learned weights, no adaptation
* ``config()``: how the graph adapts (see :func:`save`)

The signatures take the model's input dtype and int32 (classification) or the input
dtype (regression) labels; TF Serving converts JSON requests to them. Called as
``loaded.<name>(...)`` after ``tf.saved_model.load``, they also take what numpy and
clients produce by default, float64 features and int64 labels, and cast them; another
dtype fails naming the input and the dtypes it takes.

Predictions are ``{"predictions"}`` for regression (Section 5.1) and, for N-way
classification (integer labels, Section 5.2), ``{"logits", "probabilities",
"classes"}`` (``logits`` only when the loss takes logits).

Batch norm runs as in training (``MAML(batch_norm=...)``): transductive batch norm,
the default and the authors' code, normalises the queries of a request with their
own batch statistics, so a query's prediction depends on the other queries sent
with it. ``predict`` follows the same rule as the 0-step evaluation of ``MAML``.
"""
import inspect
import itertools
import json
import os

import keras
import tensorflow as tf

from maml_tf.core import inner as inner_rules

SIGNATURES = ("adapt_and_predict", "adapt", "predict", "config")


def check_destination(path, overwrite=False):
    """Refuse to write over an existing, non-empty SavedModel folder unless ``overwrite``."""
    if not overwrite and os.path.isdir(path) and os.listdir(path):
        raise FileExistsError(f"{path} exists and is not empty: choose a new directory (TF Serving expects "
                              "<model>/<version>/), or pass overwrite=True to replace it.")


def save(maml, path, *, input_shape=None, label_dtype=None, steps=None, overwrite=False):
    """Write ``maml`` to ``path`` as a SavedModel with the signatures above.

    Args:
        maml: a compiled ``maml_tf.MAML`` (compile gives the per-task loss).
        path: the SavedModel directory.
        input_shape: the shape of one example; defaults to the model's input shape.
        label_dtype: dtype of the labels: an integer dtype means N-way classification
            with N the model's output units (labels ``0..N-1``, one per example);
            a float dtype means regression (labels shaped like one model output).
            Defaults to int32 when the loss is a sparse categorical cross-entropy,
            else the model's input dtype.
        steps: inner steps at serving time; defaults to ``maml.eval_inner_steps``.
        overwrite: replace an existing SavedModel at ``path`` (else refused).

    The SavedModel records its configuration as variables readable after
    ``tf.saved_model.load`` (``loaded.inner_steps``, ``inner_rule``, ``inner_lr``,
    ``num_classes`` (0 for regression), ``loss``, ``loss_reduction``, ``batch_norm``,
    ``input_shape``, ``label_shape``; the learned rates as ``loaded.inner_rates``)
    and returns the same from the ``config`` signature, plus ``step_size/<path>``
    for every adapted weight: the step size applied at each inner step,
    ``[steps]`` or, for Meta-SGD, ``[steps, *weight shape]``.
    """
    check_destination(os.fspath(path), overwrite)
    if maml.task_loss is None:
        raise ValueError("Compile the MAML before exporting: the per-task loss the "
                         "graph adapts with comes from compile(loss=...).")
    model, loss = maml.model, maml.task_loss
    input_shape, input_dtype = _input_spec(model, input_shape)
    output_shape = tuple(model.compute_output_spec(
        keras.KerasTensor((None, *input_shape), dtype=input_dtype)).shape[1:])
    label_dtype = tf.as_dtype(label_dtype or (tf.int32 if _is_sparse_categorical(loss) else input_dtype))
    if label_dtype.is_integer and len(output_shape) != 1:
        raise ValueError(f"Integer labels mean N-way classification, which needs outputs of "
                         f"shape [batch, N]; the model outputs [batch, {output_shape}].")
    num_classes = output_shape[0] if label_dtype.is_integer else 0
    label_shape = () if num_classes else output_shape
    steps = maml.eval_inner_steps if steps is None else int(steps)
    names = [v.path for v in model.trainable_variables]
    if len(set(names)) != len(names):
        raise ValueError(f"Model variable paths must be unique to name the adapted weights: {names}")
    outputs = _outputs(num_classes, label_dtype,
                       from_logits=isinstance(loss, keras.losses.Loss)
                       and loss.get_config().get("from_logits", False))

    def adapted_weights(support_x, support_y):
        checks = _Checks()
        checks.shape(support_x, "support_x", input_shape, "support")
        checks.shape(support_y, "support_y", label_shape, "support")
        checks.finite(support_x, "support_x")
        checks.finite(support_y, "support_y")
        checks.support_set(support_x, support_y, num_classes)
        return maml.adapt(*checks.passed((support_x, input_shape), (support_y, label_shape)),
                          steps=steps)

    x_spec, y_spec = tf.TensorSpec(None, input_dtype), tf.TensorSpec(None, label_dtype)

    @tf.function(input_signature=[x_spec, y_spec, x_spec], autograph=False)
    def adapt_and_predict(support_x, support_y, query_x):
        weights = adapted_weights(support_x, support_y)
        return outputs(maml.predict_with(weights, _checked(query_x, "query_x", input_shape, "query")))

    @tf.function(input_signature=[x_spec, y_spec], autograph=False)
    def adapt(support_x, support_y):
        return dict(zip(names, adapted_weights(support_x, support_y)))

    @tf.function(input_signature=[x_spec], autograph=False)
    def predict(x):
        weights = [v.value for v in model.trainable_variables]
        return outputs(maml.predict_with(weights, _checked(x, "x", input_shape, "examples")))

    signatures = dict(zip(SIGNATURES[:3], (adapt_and_predict, adapt, predict)))
    features, labels = _accepted(input_dtype), _accepted(label_dtype)
    accepted = {"support_x": features, "support_y": labels, "query_x": features, "x": features}

    module = tf.Module()
    module.model_variables = list(model.variables)
    module.inner_rates = list(maml.inner_rule.variables)
    settings = {
        "inner_steps": tf.constant(steps, tf.int32),
        "inner_rule": _rule_name(maml.inner_rule),
        "inner_lr": tf.constant(maml.inner_lr, tf.float32),
        "num_classes": tf.constant(num_classes, tf.int32),
        "loss": _loss_name(loss),
        "loss_reduction": maml.loss_reduction,
        "batch_norm": maml.batch_norm,
        "input_shape": _int_vector(input_shape),
        "label_shape": _int_vector(label_shape),
    }
    for key, value in settings.items():
        setattr(module, key, tf.Variable(value, trainable=False, name=key))
    adapted = maml.adapted_variables

    @tf.function(input_signature=[], autograph=False)
    def config():
        out = {key: tf.identity(getattr(module, key)) for key in settings}
        for variable, sizes in zip(adapted, _step_sizes(maml.inner_rule, steps, adapted)):
            out[f"step_size/{variable.path}"] = sizes
        return out

    for name, fn in signatures.items():  # loaded.<name>(...) casts what it accepts
        setattr(module, name, _casting(fn, accepted))
    module.config = signatures["config"] = config
    tf.saved_model.save(module, str(path), signatures={**signatures, "serving_default": adapt_and_predict})


def _accepted(dtype):
    """The dtypes ``loaded.<name>(...)`` takes for an input of ``dtype``: itself and
    what numpy and clients produce by default (float64 features, int64 labels)."""
    wide = tf.int64 if dtype.is_integer else tf.float64
    return (dtype,) if dtype == wide else (dtype, wide)


# Dtypes a client may send by mistake (strings, images as uint8, ...): one input of one of
# these, the others as the signature takes them, fails naming the input and its dtype.
MISTAKEN_DTYPES = (tf.string, tf.bool, tf.complex64, tf.complex128, tf.uint8, tf.int32, tf.int64, tf.float16,
                   tf.float32, tf.float64)


def _casting(fn, accepted):
    """``fn`` (one fixed dtype per input) as a function that also takes the dtypes in
    ``accepted[input]`` and casts them: one small concrete function per combination,
    each calling ``fn``'s graph. One input of a ``MISTAKEN_DTYPES`` dtype it does not take,
    the others all native or all wide, fails naming the input, its dtype and the dtypes it
    takes (any other mix: TensorFlow's "Could not find matching concrete function", listing
    the dtypes each input takes)."""
    inputs = list(inspect.signature(fn.python_function).parameters)
    native = [spec.dtype for spec in fn.input_signature]

    def cast_and_call(*args):
        for name, arg in zip(inputs, args):
            if arg.dtype not in accepted[name]:  # traced for MISTAKEN_DTYPES only: refuse at call time
                takes = " or ".join(d.name for d in accepted[name])
                refusal = tf.debugging.Assert(False, [f"{name} has dtype {arg.dtype.name}; it takes {takes}"])
                with tf.control_dependencies([refusal]):
                    return {"refused": tf.constant(False)}
        return fn(*(tf.cast(a, dtype) for a, dtype in zip(args, native)))

    cast_and_call.__signature__ = inspect.signature(fn.python_function)  # keyword calls too

    casting = tf.function(cast_and_call, autograph=False)

    def trace(dtypes):
        casting.get_concrete_function(*(tf.TensorSpec(None, d, name=n) for d, n in zip(dtypes, inputs)))

    for dtypes in itertools.product(*(accepted[n] for n in inputs)):
        trace(dtypes)
    for i, name in enumerate(inputs):  # the others all as the signature takes them, or all numpy's defaults
        others = {tuple(accepted[n][0] for n in inputs if n != name), tuple(accepted[n][-1] for n in inputs if n != name)}
        for mistaken in (d for d in MISTAKEN_DTYPES if d not in accepted[name]):
            for rest in others:
                trace([*rest[:i], mistaken, *rest[i:]])
    return casting


def _outputs(num_classes, label_dtype, from_logits):
    """Maps model outputs to the signature's output dict."""
    def outputs(predictions):
        if not num_classes:
            return {"predictions": predictions}
        out = {"logits": predictions} if from_logits else {}
        out["probabilities"] = tf.nn.softmax(predictions) if from_logits else predictions
        out["classes"] = tf.argmax(predictions, axis=-1, output_type=label_dtype)
        return out
    return outputs


def _input_spec(model, input_shape):
    """(shape of one example, dtype) of the model's single input."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) > 1:
        raise ValueError(f"export supports single-input models; this one has {len(inputs)} inputs.")
    if input_shape is None:
        if not inputs:
            raise ValueError("The model has no symbolic input to read the example shape "
                             "from: pass input_shape=(...) (one example, no batch axis).")
        input_shape = inputs[0].shape[1:]
    if any(d is None for d in input_shape):
        raise ValueError(f"The example shape {tuple(input_shape)} has unknown dimensions: "
                         "pass a fully known input_shape=(...).")
    dtype = inputs[0].dtype if inputs else model.compute_dtype
    return tuple(int(d) for d in input_shape), tf.as_dtype(dtype)


class _Checks:
    """In-graph request checks whose ``InvalidArgumentError`` names the bad input.

    Control dependencies alone cannot put an assert before the model: Grappler
    specialises the serving graph to the request's shapes and may fail in a
    shape-dependent op first. So every condition is computed with ops that accept
    any shape, and the inputs reach the model through a ``tf.cond`` that hands it
    empty stand-ins when a check fails (the failed assert then ends the call).
    """

    def __init__(self):
        self.conditions, self.asserts = [], []

    def require(self, condition, message, *data):
        with tf.control_dependencies(self.asserts[-1:]):  # report the first failure
            self.asserts.append(tf.debugging.Assert(condition, [message, *data], summarize=8))
        self.conditions.append(condition)

    def shape(self, x, name, shape, what):
        """``x`` must be ``[num_<what>, *shape]``."""
        rank = 1 + len(shape)
        dims = _dims(x, rank)
        expected = "[" + ", ".join([f"num_{what}", *map(str, shape)]) + "]"
        self.require(tf.logical_and(tf.equal(tf.rank(x), rank),
                                    tf.reduce_all(tf.equal(dims[1:], _int_vector(shape)))),
                     f"{name} must have shape {expected}; got", tf.shape(x))

    def finite(self, x, name):
        """No NaN or Inf in a float input (it would adapt to NaN weights, or to one constant)."""
        if x.dtype.is_floating:
            self.require(tf.reduce_all(tf.math.is_finite(x)),
                         f"{name} holds NaN or Inf values: send finite numbers; count of non-finite values:",
                         tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(x)), tf.int32)))

    def support_set(self, support_x, support_y, num_classes):
        """A non-empty support set, one label per example; N-way labels in ``0..N-1``."""
        size_x, size_y = _dims(support_x, 1)[0], _dims(support_y, 1)[0]  # -1 for a scalar
        self.require(size_x > 0, "support_x is empty: adaptation needs at least one example")
        self.require(tf.equal(size_x, size_y), "support_x and support_y must have the same "
                     "number of examples; got (support_x, support_y):", size_x, size_y)
        if num_classes:
            last = num_classes - 1
            self.require(tf.reduce_all(support_y >= 0), "support_y holds a negative class "
                         f"label; labels must be 0..{last}; got", tf.reduce_min(support_y))
            self.require(tf.reduce_all(support_y <= last), f"support_y holds a class label "
                         f">= {num_classes}: this model is {num_classes}-way, labels must be "
                         f"0..{last}; got", tf.reduce_max(support_y))

    def passed(self, *tensors_and_shapes):
        """The tensors with static shapes ``[None, *shape]``, once every check holds."""
        def real():
            return [tf.reshape(t, [-1, *shape]) for t, shape in tensors_and_shapes]

        def stand_ins():
            return [tf.zeros([0, *shape], t.dtype) for t, shape in tensors_and_shapes]

        with tf.control_dependencies(self.asserts):
            out = tf.cond(tf.reduce_all(tf.stack(self.conditions)), real, stand_ins)
        return out[0] if len(out) == 1 else out


def _dims(x, rank):
    """The first ``rank`` dimensions of ``x``, padded with -1 (valid for any rank)."""
    return tf.concat([tf.shape(x), -tf.ones([rank], tf.int32)], axis=0)[:rank]


def _int_vector(values):
    return tf.constant(values, tf.int32, shape=[len(values)])


def _checked(x, name, shape, what):
    """``x`` checked to be ``[num_<what>, *shape]``, with that static shape."""
    checks = _Checks()
    checks.shape(x, name, shape, what)
    checks.finite(x, name)
    return checks.passed((x, shape))


def _step_sizes(rule, steps, adapted):
    """The step size the rule applies to each adapted weight at each inner step."""
    per_step = [rule.step_sizes(s) or [rule.learning_rate] * len(adapted) for s in range(steps)]
    return [tf.stack([tf.cast(sizes[i], v.dtype) for sizes in per_step]) if steps
            else tf.zeros([0], v.dtype) for i, v in enumerate(adapted)]


def _rule_name(rule):
    names = {cls: name for name, cls in inner_rules.INNER_RULES.items()}
    return names.get(type(rule), type(rule).__name__)


def _loss_name(loss):
    """The per-task loss as Keras serialises it (JSON for a ``keras.losses.Loss``)."""
    if isinstance(loss, keras.losses.Loss):
        return json.dumps(keras.losses.serialize(loss))
    return getattr(loss, "__name__", type(loss).__name__)


def _is_sparse_categorical(loss):
    return (isinstance(loss, keras.losses.SparseCategoricalCrossentropy)
            or getattr(loss, "__wrapped__", None) is keras.losses.sparse_categorical_crossentropy)
