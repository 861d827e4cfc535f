"""The second-order term first-order MAML drops, measured on one meta-batch.

With one inner step ``theta' = theta - alpha * grad L_support(theta)``, the meta-gradient is
``g_SO = (I - alpha * H) g_FO`` where ``g_FO = grad L_query(theta')`` and ``H`` the Hessian of
the support (inner) loss at ``theta`` (Finn et al. 2017, Section 5.2: first-order MAML drops
the ``H`` term, guessed to be small because ReLU networks are almost linear locally).
:func:`meta_gradient_terms` computes both meta-gradients of the same meta-batch, how far
apart they are, and the curvature the dropped term comes from.
"""
import weakref

import numpy as np
import tensorflow as tf

from maml_tf.core import MAML
from maml_tf.core import episodes as episode_utils

# Compiled functions per MAML (traced once, reused along training); dropped with the MAML.
_COMPILED = weakref.WeakKeyDictionary()


def _compiled(maml, name, fn):
    """``fn`` as a ``tf.function`` cached on ``maml`` (retraced if compile() changed the loss)."""
    cache = _COMPILED.setdefault(maml, {})
    key = (name, id(maml.task_loss))
    if key not in cache:
        cache[key] = tf.function(fn)
    return cache[key]


def _flat(grads, variables):
    """One float64 vector of a gradient list (None: a variable the loss does not reach)."""
    return np.concatenate([np.zeros(np.prod(v.shape)) if g is None else np.asarray(g, np.float64).ravel()
                           for g, v in zip(grads, variables)])


def support_curvature(maml, episodes):
    """Per task, at the meta-parameters: the inner-loss gradient ``g`` (over the adapted
    weights), its Hessian-vector product ``H g``, ``g.H.g``, and the two parts of ``H g``:
    the Gauss-Newton part ``J^T H_loss J g`` (``J`` the Jacobian of the predictions, present
    whatever the activation) and the rest, ``sum_i dloss/dp_i * Hessian(p_i) g``, which comes
    from the network's own second derivatives (what the paper's guess says ReLU lacks).

    Returns ``{"inner_gradient_norm", "hvp_norm", "gHg", "gauss_newton_norm",
    "network_curvature_norm"}``, each a ``[tasks]`` array.
    """
    _check(maml)
    (sx, sy), _ = episode_utils.unpack(episodes, maml.model)
    adapted = list(maml.inner_loop.adapted)

    def one(task):
        x, y = task
        values = [v.value for v in maml.model.trainable_variables]
        fast = [values[i] for i in adapted]
        with tf.GradientTape(watch_accessed_variables=False) as outer:
            outer.watch(fast)
            with tf.GradientTape(watch_accessed_variables=False, persistent=True) as inner:
                inner.watch(fast)
                full = list(values)
                for i, v in zip(adapted, fast):
                    full[i] = v
                predictions = maml.predict_with(full, x, training=True)
                loss = maml.inner_loop.task_loss(y, predictions)
            grads = inner.gradient(loss, fast, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        g = [tf.stop_gradient(t) for t in grads]
        # H g: differentiate the gradient along g itself (g held constant).
        hvp = outer.gradient(grads, fast, output_gradients=g, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        # J g by the double-backward trick (J^T u is linear in u), then H_loss (J g), then J^T.
        with tf.GradientTape() as along:
            u = tf.zeros_like(predictions)
            along.watch(u)
            jtu = inner.gradient(predictions, fast, output_gradients=u,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
            jtu_g = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(jtu, g)])
        jg = along.gradient(jtu_g, u, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        p = tf.stop_gradient(predictions)
        with tf.GradientTape() as second:
            second.watch(p)
            with tf.GradientTape() as first:
                first.watch(p)
                loss_p = maml.inner_loop.task_loss(y, p)
            dloss = first.gradient(loss_p, p, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        # (ZERO, not None: None as output_gradients would mean ones.)
        loss_hessian_jg = second.gradient(dloss, p, output_gradients=jg,
                                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
        gauss_newton = inner.gradient(predictions, fast, output_gradients=loss_hessian_jg,
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
        norm = lambda ts: tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(t)) for t in ts]))  # noqa: E731
        ghg = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(g, hvp)])
        rest = [h - gn for h, gn in zip(hvp, gauss_newton)]
        return tf.stack([norm(g), norm(hvp), ghg, norm(gauss_newton), norm(rest)])

    dtype = maml.model.trainable_variables[0].dtype
    fn = _compiled(maml, "support_curvature",
                   lambda x, y: tf.map_fn(one, (x, y), fn_output_signature=tf.TensorSpec([5], dtype)))
    out = np.asarray(fn(sx, sy), np.float64)
    return {"inner_gradient_norm": out[:, 0], "hvp_norm": out[:, 1], "gHg": out[:, 2],
            "gauss_newton_norm": out[:, 3], "network_curvature_norm": out[:, 4]}


def meta_gradient_terms(maml, episodes):
    """Second- against first-order meta-gradient of the same meta-batch, and the curvature
    of the inner loss they differ by. Works whatever ``maml.first_order`` is; changes no
    weight and no optimizer state.

    Args:
        maml: a compiled :class:`~maml_tf.core.MAML` (its inner steps, rule and loss).
        episodes: one meta-batch ``{"support": (x, y), "query": (x, y)}``.

    Returns a dict of floats: ``loss`` (mean query loss after adaptation),
    ``second_order_norm`` ||g_SO||, ``first_order_norm`` ||g_FO||, ``difference_norm``
    ||g_SO - g_FO||, ``relative_difference`` ||g_SO - g_FO|| / ||g_SO||, ``cosine``
    cos(g_SO, g_FO); per task averaged, at the meta-parameters (the inner loop's first
    step): ``inner_gradient_norm`` ||g||, ``hvp_norm`` ||H g||, ``relative_hvp`` ||H g|| / ||g||
    and ``curvature`` g.H.g / ||g||^2 (the inner loss's curvature along g), and ||H g||'s
    parts (:func:`support_curvature`) ``gauss_newton_norm`` and ``network_curvature_norm``;
    ``num_tasks``, ``inner_steps``.
    """
    _check(maml)
    episode_utils.unpack(episodes, maml.model)  # a one-line error before any tracing
    variables = maml.trainable_variables
    flat = {}
    for name, first_order in (("second_order", False), ("first_order", True)):
        fn = _compiled(maml, f"meta_gradients_{name}",
                       lambda e, fo=first_order: maml.meta_gradients(e, first_order=fo))
        loss, grads = fn(episodes)
        flat[name] = _flat(grads, variables)
    so, fo = flat["second_order"], flat["first_order"]
    so_norm, fo_norm, diff = (float(np.linalg.norm(v)) for v in (so, fo, so - fo))
    curvature = support_curvature(maml, episodes)
    g, hg = curvature["inner_gradient_norm"], curvature["hvp_norm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_hvp = np.where(g > 0, hg / g, 0.0)
        along = np.where(g > 0, curvature["gHg"] / g ** 2, 0.0)
    return {
        "loss": float(loss), "second_order_norm": so_norm, "first_order_norm": fo_norm,
        "difference_norm": diff, "relative_difference": diff / so_norm if so_norm > 0 else 0.0,
        "cosine": float(so @ fo / (so_norm * fo_norm)) if so_norm > 0 and fo_norm > 0 else 1.0,
        "inner_gradient_norm": float(g.mean()), "hvp_norm": float(hg.mean()),
        "relative_hvp": float(relative_hvp.mean()), "curvature": float(along.mean()),
        "gauss_newton_norm": float(curvature["gauss_newton_norm"].mean()),
        "network_curvature_norm": float(curvature["network_curvature_norm"].mean()),
        "num_tasks": int(g.shape[0]), "inner_steps": int(maml.inner_steps),
    }


def _check(maml):
    if not isinstance(maml, MAML):
        raise TypeError(f"meta_gradient_terms needs a maml_tf.MAML, got {type(maml).__name__}: "
                        "wrap the network with MAML(model, ...) and compile it.")
    if maml.task_loss is None:
        raise RuntimeError("Call compile(optimizer=..., loss=...) first: the per-task loss comes from compile().")
