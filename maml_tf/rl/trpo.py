"""TRPO's outer step (Schulman et al. 2015), as rllab's ``ConjugateGradientOptimizer``
that MAML-TRPO uses (Section 5.3): natural gradient by conjugate gradient on
Hessian-vector products of the mean KL, scaled to the trust region ``max_kl`` and
backtracked until the surrogate loss falls inside it.

Three products: :func:`hessian_vector_product` (exact, by double backprop: ``trpo_step``'s
default), :func:`kl_hessian_vector_product` (the Fisher form at the trust-region centre,
equal to it there and cheaper: the learners' ``hvp="exact"``) and
:func:`finite_difference_hessian_vector_product` (the authors' code's: ``hvp="finite_difference"``).

Vectors are lists of tensors parallel to ``params`` (the gradient's own shape), so
nothing is flattened and the same code serves a plain policy and a MAML meta-policy,
whose ``loss_fn``/``kl_fn`` adapt per task from the meta-parameters (second order).
"""
import contextlib
import math

import tensorflow as tf
from tensorflow.compiler.tf2xla.ops import gen_xla_ops
from tensorflow.python.framework import ops
from tensorflow.python.ops import control_flow_util
from tensorflow.python.ops.parallel_for import control_flow_ops as pfor_ops

from maml_tf.core.arguments import one_of
from maml_tf.rl.timings import timed


def _dot(a, b):
    """Inner product of two same-structured nests of tensors."""
    return tf.add_n([tf.reduce_sum(x * y) for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b))])


def _axpy(alpha, x, y):
    """``alpha * x + y`` over nests."""
    return tf.nest.map_structure(lambda u, v: alpha * u + v, x, y)


def _watch(tape, params):
    """Watch tensors and ``tf.Variable``s explicitly; Keras 3 variables are neither,
    and the tape (``watch_accessed_variables=True``) watches them when read."""
    tape.watch([p for p in params if isinstance(p, (tf.Tensor, tf.Variable))])


def _xla_dynamic_update_slice_gradient(op, grad):
    """Gradient of ``XlaDynamicUpdateSlice(input, update, begin)``, the op ``Slice``'s gradient
    becomes under XLA: the update's window of ``grad`` for ``update``, the rest for ``input``.
    TensorFlow registers none, and reverse-over-reverse products (``jvp="reverse"``) under XLA
    differentiate it (the policy's concatenated mean and log-std)."""
    update, begin = op.inputs[1], op.inputs[2]
    window = tf.slice(grad, begin, tf.shape(update, out_type=begin.dtype))
    return gen_xla_ops.xla_dynamic_update_slice(grad, tf.zeros_like(update), begin), window, None


try:
    ops.gradient_registry.lookup("XlaDynamicUpdateSlice")
except LookupError:  # not registered by TensorFlow (2.21) or a later import
    tf.RegisterGradient("XlaDynamicUpdateSlice")(_xla_dynamic_update_slice_gradient)


@contextlib.contextmanager
def _vectorized_map_inlined():
    """While tracing for XLA, ``tf.vectorized_map`` builds its ops in the caller's graph
    instead of a nested ``tf.function`` (what it does under XLA). Through that nested function's
    gradient, XLA's constant analysis takes the function's inputs (the data, the variables) for
    compile-time constants: the product recompiled for every new batch and weight (about 30 s
    per meta-iteration at the locomotion batch) and folded the data into the program."""
    original = pfor_ops._is_under_xla_context
    pfor_ops._is_under_xla_context = lambda: False
    try:
        yield
    finally:
        pfor_ops._is_under_xla_context = original


def conjugate_gradient(matvec, b, iterations=10, residual_tol=1e-10, return_residual=False):
    """Approximate ``x = A^-1 b`` for symmetric positive-definite ``A`` given as
    ``matvec(v) = A v``, as rllab's ``krylov.cg``.

    ``b`` is a tensor or a nest of tensors (a list parallel to the parameters in
    TRPO); ``x`` and the vectors passed to ``matvec`` have its structure. Stops after
    ``iterations`` products or once ``|r|^2 < residual_tol``. Graph-safe: the loop
    becomes a ``tf.while_loop`` inside ``tf.function``. ``return_residual``: return
    ``(x, r)``, ``r = b - A x`` as the recurrences carry it (to rounding: ``A x = b - r``
    without another product).
    """
    x = tf.nest.map_structure(tf.zeros_like, b)
    r = p = b
    rdotr = _dot(r, r)
    for _ in tf.range(iterations):
        # Checked before the first product too: b = 0 gives x = 0 rather than 0 / 0.
        if rdotr < residual_tol:
            break
        z = matvec(p)
        alpha = rdotr / _dot(p, z)
        x = _axpy(alpha, p, x)
        r = _axpy(-alpha, z, r)
        new_rdotr = _dot(r, r)
        p = _axpy(new_rdotr / rdotr, p, r)
        rdotr = new_rdotr
    return (x, r) if return_residual else x


def hessian_vector_product(kl_fn, params, vector, damping=1e-5):
    """``(H + damping I) v`` with ``H`` the Hessian of ``kl_fn()`` w.r.t. ``params``.

    Exact, by differentiating ``grad(kl) . v`` (double backprop, Pearlmutter 1994); see
    :func:`kl_hessian_vector_product` for the cheaper product at the trust-region centre.
    ``params`` are variables (TF or Keras) or tensors that ``kl_fn`` reads; ``vector``
    is a list parallel to them. ``damping`` is rllab's ``reg_coeff``: it keeps ``H`` positive
    definite for conjugate gradient. Graph-safe.
    """
    with tf.GradientTape() as outer:
        _watch(outer, params)
        with tf.GradientTape() as inner:
            _watch(inner, params)
            kl = kl_fn()
        grads = inner.gradient(kl, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grad_dot_v = _dot(grads, [tf.stop_gradient(v) for v in vector])
    hv = outer.gradient(grad_dot_v, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [h + damping * v for h, v in zip(hv, vector)]


JVP_MODES = ("reverse", "forward")


def kl_hessian_vector_product(outputs_fn, kl_of_outputs, params, vector, damping=1e-5, jvp="reverse"):
    """``(H + damping I) v`` for ``H`` the Hessian of ``kl_of_outputs(outputs_fn())`` in
    ``params`` at TRPO's trust-region centre, where the KL from the sampling policy and its
    gradient in the outputs vanish.

    There ``H = J^T M J`` exactly (``J`` = d outputs / d params, ``M`` = the KL's Hessian
    in the outputs: the Fisher matrix): the product takes ``J v``, a double backprop
    through the cheap ``kl_of_outputs`` for ``M``, and one reverse pass for ``J^T``, instead
    of :func:`hessian_vector_product`'s double backprop through ``outputs_fn`` (MAML's inner
    step makes that third order). ``outputs_fn`` runs once; the tape that takes ``J^T``
    records it. Equal to double backprop to rounding at the centre (tests); away from the
    centre it drops the curvature of ``outputs_fn``. ``params`` are TF or Keras variables
    that ``outputs_fn`` reads. Graph-safe.

    ``jvp``: how ``J v`` is taken. "reverse" (default) differentiates the linear map
    ``u -> J^T u`` in ``u`` (reverse over reverse, the "double-VJP" trick), which XLA
    compiles (``tf.function(jit_compile=True)``); "forward" carries ``v`` in a
    ``tf.autodiff.ForwardAccumulator``, the same numbers to rounding without XLA, but
    under XLA its tangents come out zero, so it refuses to run there.
    """
    one_of("jvp", jvp, JVP_MODES)
    under_xla = control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    with _vectorized_map_inlined() if under_xla else contextlib.nullcontext():
        return _kl_hessian_vector_product(outputs_fn, kl_of_outputs, params, vector, damping, jvp, under_xla)


def _kl_hessian_vector_product(outputs_fn, kl_of_outputs, params, vector, damping, jvp, under_xla):
    # A Keras 3 variable is tracked through the tf.Variable it holds (``.value``).
    variables = [p if isinstance(p, (tf.Tensor, tf.Variable)) else p.value for p in params]
    vector = [tf.convert_to_tensor(v) for v in vector]
    if jvp == "forward":
        if under_xla:
            raise ValueError("kl_hessian_vector_product(jvp='forward') under XLA (jit_compile=True) gives zero "
                             "tangents; use jvp='reverse' there.")
        # The accumulator carries J v along the same evaluation the tape records for J^T
        # (its tangents are off the tape's path to params).
        with tf.GradientTape() as tape:
            _watch(tape, params)
            with tf.autodiff.ForwardAccumulator(variables, vector) as accumulator:
                outputs = outputs_fn()
        jv = accumulator.jvp(outputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    else:
        with tf.GradientTape(persistent=True) as tape:
            _watch(tape, params)
            outputs = outputs_fn()
        # Any cotangent u will do (J^T u is linear in it); a constant one would have XLA
        # constant-fold whole backward passes while compiling.
        u = tf.stop_gradient(outputs)
        with tf.GradientTape() as dual:
            dual.watch(u)
            jtu = tape.gradient(outputs, params, output_gradients=u,
                                unconnected_gradients=tf.UnconnectedGradients.ZERO)
        jv = dual.gradient(jtu, u, output_gradients=vector, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    jv = tf.stop_gradient(jv)
    at = tf.stop_gradient(outputs)
    with tf.GradientTape() as outer:
        outer.watch(at)
        with tf.GradientTape() as inner:
            inner.watch(at)
            kl = kl_of_outputs(at)
        kl_grad = inner.gradient(kl, at)
        grad_dot_jv = tf.reduce_sum(kl_grad * jv)
    mjv = outer.gradient(grad_dot_jv, at)
    hv = tape.gradient(outputs, params, output_gradients=mjv,
                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [h + damping * v for h, v in zip(hv, vector)]


def finite_difference_eps(params, base_eps=1e-8):
    """rllab's ``FiniteDifferenceHvp`` perturbation size at ``params``: ``base_eps / |theta|``."""
    norm = math.sqrt(sum(float(tf.reduce_sum(tf.square(tf.cast(p, tf.float64)))) for p in params))
    return base_eps / (norm + 1e-8)


def finite_difference_hessian_vector_product(grad_fn, params, vector, base_eps=1e-8, damping=1e-5):
    """``(H + damping I) v`` as the MAML authors' TRPO computed it: rllab's
    ``FiniteDifferenceHvp``, the default of the ``ConjugateGradientOptimizer`` that
    ``maml_rl`` meta-trains with (Section 5.3).

    Central differences ``(g(theta + eps v) - g(theta - eps v)) / (2 eps)`` of the KL
    gradient ``grad_fn()`` (a list parallel to ``params``), with
    ``eps = base_eps / |theta|`` and theta moved in the parameters' own dtype. In float32
    with ``base_eps = 1e-8`` (rllab's), ``theta + eps v`` rounds back to ``theta`` in
    nearly every coordinate, so the product is mostly the damping term and TRPO's step
    becomes, in effect, a KL-limited gradient step rather than a natural-gradient one.
    Reproducing the authors' numbers needs that behaviour, not the exact product of
    :func:`hessian_vector_product`. Moves and restores the variables ``params``: eager only.
    """
    params = list(params)
    theta = [tf.identity(p) for p in params]
    eps = finite_difference_eps(theta, base_eps)
    grads = []
    for sign in (1.0, -1.0):
        for p, t, v in zip(params, theta, vector):
            p.assign(t + tf.cast(sign * eps, t.dtype) * tf.cast(v, t.dtype))
        grads.append(grad_fn())
    for p, t in zip(params, theta):
        p.assign(t)
    return [(plus - minus) / tf.cast(2 * eps, plus.dtype) + damping * v
            for plus, minus, v in zip(*grads, vector)]


# How trpo_step takes the curvature s^T H s that scales its step: "product", one more
# Hessian-vector product (rllab's); "residual", s^T (g - r) from conjugate gradient's residual
# r (H s = g - r, to rounding), which saves that product.
CURVATURES = ("product", "residual")


def trpo_step(loss_fn, kl_fn, params, max_kl=0.01, cg_iterations=10, backtrack_ratio=0.8,
              max_backtracks=15, damping=1e-5, hvp_fn=None, timings=None, curvature="product"):
    """One TRPO update of the variables ``params`` (TF or Keras), in place.

    The direction is the natural gradient ``s = H^-1 g`` (``g`` the gradient of
    ``loss_fn()``, ``H`` the Hessian of ``kl_fn()``, both at the current values),
    scaled so that the quadratic KL model ``0.5 beta^2 s^T H s`` equals ``max_kl``.
    Steps ``beta s``, ``backtrack_ratio beta s``, ... (``max_backtracks`` of them,
    from the full step) are tried and the first that lowers the loss with
    ``kl <= max_kl`` is kept; if none is, the old values are restored.

    ``loss_fn()`` (surrogate loss to minimise) and ``kl_fn()`` (mean KL from the
    fixed sampling policy, 0 with zero gradient at the current values) are re-run at
    each trial value, so they may depend on ``params`` through anything
    differentiable, e.g. MAML's inner step.

    Runs eagerly: the line search needs Python decisions, assignments and restores.
    Pass ``tf.function``-compiled ``loss_fn``/``kl_fn`` for speed; gradients and
    Hessian-vector products flow through them.

    ``hvp_fn(vector)``, if given, replaces the default damped product
    ``hessian_vector_product(kl_fn, params, vector, damping)`` (``damping`` is then
    unused: include it in ``hvp_fn``). Passing that same product wrapped in one
    ``tf.function`` compiles the double backprop as one graph, which is much faster
    than differentiating twice through a compiled ``kl_fn`` from eager code.

    Returns a dict of Python numbers: ``loss_before``, ``loss_after``, ``kl`` (at the
    values left in ``params``), ``backtracks`` (index of the accepted step, or
    ``max_backtracks`` if rejected), ``accepted`` and ``step_size`` (``beta``).
    ``timings`` (a :class:`~maml_tf.rl.timings.Timings`) gets the seconds of the loss and
    its gradient, conjugate gradient, the step size's product and the line search.
    ``curvature``: one of ``CURVATURES``.
    """
    one_of("curvature", curvature, CURVATURES)
    if not tf.executing_eagerly():
        raise RuntimeError("trpo_step runs eagerly (its line search assigns and restores "
                           "variables); compile loss_fn and kl_fn with tf.function instead.")
    params = list(params)
    with timed(timings, "surrogate and gradient"):
        with tf.GradientTape() as tape:
            _watch(tape, params)
            loss_before = loss_fn()
        grads = tape.gradient(loss_before, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        loss_before = float(loss_before)

    hvp = hvp_fn or (lambda v: hessian_vector_product(kl_fn, params, v, damping))  # noqa: E731
    with timed(timings, "conjugate gradient"):
        direction, residual = conjugate_gradient(hvp, grads, cg_iterations, return_residual=True)
    with timed(timings, "step size"):
        h_direction = hvp(direction) if curvature == "product" else _axpy(-1.0, residual, grads)
        # rllab's guards: +1e-8 against s = 0, and a unit step if the curvature is NaN
        # (or negative, where rllab's np.sqrt also gives NaN).
        s_h_s = float(_dot(direction, h_direction)) + 1e-8
        step_size = math.sqrt(2.0 * max_kl / s_h_s) if s_h_s > 0 else 1.0

    with timed(timings, "line search"):
        old = [tf.identity(p) for p in params]
        for backtracks in range(max_backtracks):
            scale = step_size * backtrack_ratio ** backtracks
            for p, o, d in zip(params, old, direction):
                p.assign(o - scale * d)
            loss, kl = float(loss_fn()), float(kl_fn())
            if loss < loss_before and kl <= max_kl:  # False for NaN too
                return {"loss_before": loss_before, "loss_after": loss, "kl": kl,
                        "backtracks": backtracks, "accepted": True, "step_size": step_size}
        for p, o in zip(params, old):
            p.assign(o)
    return {"loss_before": loss_before, "loss_after": loss_before, "kl": 0.0,
            "backtracks": max_backtracks, "accepted": False, "step_size": step_size}
