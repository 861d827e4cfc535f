"""Meta-gradient engines: the mean post-adaptation query loss of a meta-batch and its
gradient w.r.t. the meta-parameters (Finn et al. 2017, Algorithm 2, line 10).

The engines compute the same numbers and differ in how a meta-batch's tasks run
(``MAML(task_parallelism=...)``). Each is called as

    engine(task, episodes, variables, state_kinds, scale_loss=None) -> MetaStep

``task(episode)`` runs one task from the current meta-parameters (read inside it, so
the engine's tape sees them) and returns ``loss``, ``predictions`` and, when there are
any, ``accuracy`` and ``state``; ``episodes`` is ``(support_x, support_y, query_x,
query_y)`` with a leading task axis; ``state_kinds`` says how each state value combines
over tasks (``"mean"`` or ``"first"``); ``scale_loss`` (mixed float16) multiplies each
loss before differentiation, so the gradients come out scaled by the same factor.
"""
import collections

import tensorflow as tf

from maml_tf.core import functional

TASK_PARALLELISM = ("auto", "vectorized", "loop", "unrolled")

MetaStep = collections.namedtuple("MetaStep", "loss accuracy predictions grads state")
# Tasks the loop engine runs at once (read when a step is traced). Each task in flight holds
# its own activations: 1 instead of 2 cut peak memory by 0.1 GB (Omniglot) and 0.5 GB
# (MiniImagenet) but slowed the step by 26% and 6% on 2 cores (benchmarks/README.md).
LOOP_PARALLEL_TASKS = 2


def resolve(task_parallelism, model):
    """The engine for ``task_parallelism``; ``"auto"`` is vectorized for models without
    convolutions, loop otherwise (measured fastest on CPU, benchmarks/README.md)."""
    if task_parallelism != "auto":
        return task_parallelism
    return "loop" if functional.convolutions(model) else "vectorized"


def _scaled(loss, scale_loss):
    return loss if scale_loss is None else scale_loss(loss)


def _reduce_state(per_task, kind):
    return tf.reduce_mean(per_task, axis=0) if kind == "mean" else per_task[0]


def _step(out, loss, grads, state_kinds):
    accuracy = tf.reduce_mean(out["accuracy"]) if "accuracy" in out else None
    state = [_reduce_state(value, kind) for kind, value in zip(state_kinds, out.get("state", []))]
    return MetaStep(loss, accuracy, out["predictions"], grads, state)


def vectorized(task, episodes, variables, state_kinds, scale_loss=None):
    """Per-task meta-gradients inside ``tf.vectorized_map``, averaged outside.

    Differentiating *through* vectorized_map instead makes XLA treat every input as
    a compile-time constant (pfor's reduction converter computes the axes, and the
    gradient needs them constant across pfor's function boundary), so it recompiled
    at every weight update. Costs [tasks, *weight] memory for the per-task grads.
    """
    connected = []

    def one(episode):
        with tf.GradientTape() as tape:
            out = task(episode)
            objective = _scaled(out["loss"], scale_loss)
        grads = tape.gradient(objective, variables)
        connected[:] = [g is not None for g in grads]
        out["grads"] = [tf.zeros_like(v) if g is None else g for v, g in zip(variables, grads)]
        return out

    out = tf.vectorized_map(one, episodes)
    grads = [tf.reduce_mean(g, axis=0) if c else None for g, c in zip(out.pop("grads"), connected)]
    return _step(out, tf.reduce_mean(out["loss"]), grads, state_kinds)


def unrolled(task, episodes, variables, state_kinds, scale_loss=None):
    """One graph copy per task, differentiated together."""
    with tf.GradientTape() as tape:
        out = _unrolled_map(task, episodes)
        loss = tf.reduce_mean(out["loss"])
        objective = _scaled(loss, scale_loss)
    grads = tape.gradient(objective, variables)
    return _step(out, loss, grads, state_kinds)


def loop(task, episodes, variables, state_kinds, scale_loss=None):
    """Sum per-task meta-gradients in a ``tf.while_loop``: one task's graph, one
    task's activations in memory at a time."""
    num_tasks = tf.shape(episodes[0])[0]
    signature = output_signature(task, episodes)
    predictions = tf.TensorArray(signature["predictions"].dtype, size=num_tasks,
                                 element_shape=signature["predictions"].shape)
    zero = tf.zeros([], variables[0].dtype)
    state_init = [tf.zeros(s.shape, s.dtype) for s in signature.get("state", [])]

    def body(i, grads, loss_sum, acc_sum, predictions, state):
        with tf.GradientTape() as tape:
            out = task(tuple(t[i] for t in episodes))
            objective = _scaled(out["loss"], scale_loss)
        task_grads = tape.gradient(objective, variables,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads = [g + t for g, t in zip(grads, task_grads)]
        acc = out.get("accuracy", zero)
        # running sum of BN statistics (averaged below); the last task's RNG state
        state = [s + t if kind == "mean" else t
                 for s, t, kind in zip(state, out.get("state", []), state_kinds)]
        return (i + 1, grads, loss_sum + out["loss"], acc_sum + tf.cast(acc, zero.dtype),
                predictions.write(i, out["predictions"]), state)

    init = (tf.constant(0), [tf.zeros_like(v) for v in variables], zero, zero, predictions, state_init)
    _, grads, loss_sum, acc_sum, predictions, state = tf.while_loop(
        lambda i, *_: i < num_tasks, body, init, parallel_iterations=LOOP_PARALLEL_TASKS)
    n = tf.cast(num_tasks, zero.dtype)
    grads = [g / tf.cast(n, g.dtype) for g in grads]
    accuracy = acc_sum / n if "accuracy" in signature else None
    state = [s / tf.cast(n, s.dtype) if kind == "mean" else s for s, kind in zip(state, state_kinds)]
    return MetaStep(loss_sum / n, accuracy, predictions.stack(), grads, state)


ENGINES = {"vectorized": vectorized, "loop": loop, "unrolled": unrolled}


def map_tasks(task, episodes, mode):
    """``task`` on every task of the meta-batch (forward only), outputs stacked.
    ``"unrolled"`` evaluates with a loop: unrolling a whole test chunk only adds
    compile time."""
    if mode == "vectorized":
        return tf.vectorized_map(task, episodes)
    return tf.map_fn(task, episodes, fn_output_signature=output_signature(task, episodes))


def _unrolled_map(task, episodes):
    outs = [task(tuple(t[i] for t in episodes)) for i in range(episodes[0].shape[0])]
    return tf.nest.map_structure(lambda *per_task: tf.stack(per_task), *outs)


def output_signature(task, episodes):
    """Trace one task abstractly to get its outputs' ``TensorSpec``s."""
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape[1:], t.dtype), episodes)
    out = tf.function(lambda *ep: task(ep)).get_concrete_function(*spec).structured_outputs
    return tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), out)
