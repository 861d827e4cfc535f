"""The episode format every task distribution yields and the core consumes.

``{"support": (x, y), "query": (x, y)}``, each tensor with a leading task axis:
``x`` is ``[tasks, examples, *features]``, ``y`` is ``[tasks, examples, *targets]``.
"""
import tensorflow as tf


class EpisodeError(ValueError):
    """Episodes that do not fit the model or the format."""


def make(support_x, support_y, query_x, query_y):
    return {"support": (support_x, support_y), "query": (query_x, query_y)}


def unpack(data, model=None):
    """Validate a meta-batch of episodes (statically where possible) and return
    ``(support, query)`` as ``(x, y)`` tuples."""
    if isinstance(data, tuple) and data and all(d is None for d in data[1:]):
        data = data[0]  # Keras' (x,) from fit, (x, None, None) from train_on_batch
    if not isinstance(data, dict) or set(data) != {"support", "query"}:
        raise EpisodeError(
            "Expected episodes as {'support': (x, y), 'query': (x, y)} with a leading task "
            f"axis; got {type(data).__name__}"
            + (f" with keys {sorted(data)}" if isinstance(data, dict) else "")
            + ". Use maml_tf.core.episodes.make(...) or a maml_tf.tasks distribution.")
    parts = {}
    for name in ("support", "query"):
        pair = data[name]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise EpisodeError(f"episodes['{name}'] must be a pair (x, y), got {type(pair).__name__}.")
        x, y = (tf.convert_to_tensor(t) for t in pair)
        if x.shape.rank is not None and x.shape.rank < 3:
            raise EpisodeError(
                f"{name} x has shape {x.shape}; expected [tasks, examples, *features] "
                "(rank >= 3). Add a task axis with tf.expand_dims(x, 0) for one task.")
        if y.shape.rank is not None and y.shape.rank < 2:
            raise EpisodeError(f"{name} y has shape {y.shape}; expected [tasks, examples, ...].")
        if not x.shape[:2].is_compatible_with(y.shape[:2]):
            raise EpisodeError(
                f"{name} x {x.shape} and y {y.shape} disagree on [tasks, examples].")
        if x.shape[1] == 0:
            raise EpisodeError(f"The {name} set is empty (shape {x.shape}): every task needs "
                               "at least one support and one query example.")
        parts[name] = (x, y)
    (sx, sy), (qx, qy) = parts["support"], parts["query"]
    if not sx.shape[:1].is_compatible_with(qx.shape[:1]):
        raise EpisodeError(f"support has {sx.shape[0]} tasks but query has {qx.shape[0]}.")
    if not sx.shape[2:].is_compatible_with(qx.shape[2:]):
        raise EpisodeError(f"support features {sx.shape[2:]} differ from query features {qx.shape[2:]}.")
    if model is not None:
        checks = _check_model_fit(model, sx, sy, qy)
        if checks:  # make every use of the labels wait for the range check
            with tf.control_dependencies(checks):
                sy, qy = tf.identity(sy), tf.identity(qy)
    return (sx, sy), (qx, qy)


def _check_model_fit(model, sx, sy, qy):
    inputs = getattr(model, "inputs", None)
    try:
        expected = inputs[0].shape[1:] if inputs else None
    except (AttributeError, IndexError, TypeError):
        expected = None
    if expected is not None and not tf.TensorShape(expected).is_compatible_with(sx.shape[2:]):
        raise EpisodeError(
            f"Episode features have shape {tuple(sx.shape[2:])} but the model expects inputs "
            f"of shape {tuple(expected)} (per example). Check the task distribution's "
            "image size / feature count against the model.")
    if sy.dtype.is_integer:
        outputs = getattr(model, "outputs", None)
        num_classes = outputs[0].shape[-1] if outputs else None
        if num_classes is not None:
            checks = []
            for y in (sy, qy):
                checks.append(tf.debugging.assert_non_negative(y, message="Class labels must be >= 0."))
                checks.append(tf.debugging.assert_less(
                    y, tf.cast(num_classes, y.dtype),
                    message=f"A class label is >= the model's {num_classes} outputs: for N-way "
                            "tasks labels must be 0..N-1 and the head must have N units."))
            return [c for c in checks if c is not None]  # None in eager mode (checked already)
    return []
