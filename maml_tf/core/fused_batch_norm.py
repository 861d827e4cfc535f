"""Training-mode batch norm through TensorFlow's fused ops, differentiable twice exactly.

The forward pass and its gradient are ``FusedBatchNormV3`` and ``FusedBatchNormGradV3``
(oneDNN kernels on CPU). Second-order MAML differentiates the inner gradient once more
(Finn et al. 2017, Section 2.2): TensorFlow's registered rule re-runs the BN gradient as a
composite under a tape; :func:`_second_order` does it in closed form with about half the work
(``closed_form=True``, 0.67 of the time of TensorFlow's rule on the MiniImagenet SO step,
benchmarks/README.md). Third derivatives are not provided.
"""
import tensorflow as tf

_AXES = [0, 1, 2]  # NHWC: statistics over batch and space, per channel


def batch_statistics(x, gamma, beta, epsilon, closed_form=True):
    """``(y, mean, variance)`` of BN on float32 NHWC ``x`` with its own batch statistics;
    ``variance`` is the biased one (the op's is Bessel-corrected). Gradients flow to ``x``,
    ``gamma`` and ``beta`` through ``y``; ``mean`` and ``variance`` (for moving averages)
    are constants. ``closed_form``: the second derivative by :func:`_second_order`, else by
    TensorFlow's registered rule.

    TensorFlow's own rule for the second derivative is exact for this use too: it
    differentiates a composite of the BN gradient once, and its ``stop_gradient(mean)`` in
    the variance changes no first derivative.
    """
    if not closed_form:
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.constant([], x.dtype), variance=tf.constant([], x.dtype),
            epsilon=epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        return y, tf.stop_gradient(mean), tf.stop_gradient(_biased(variance, x))
    stats = {}

    @tf.custom_gradient
    def normalize(x, gamma, beta):
        y, mean, variance, r1, r2, r3 = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.constant([], x.dtype), variance=tf.constant([], x.dtype),
            epsilon=epsilon, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        stats["mean"], stats["variance"] = mean, variance

        def grad(dy):
            return _first_order(dy, x, gamma, (r1, r2, r3), mean, _biased(variance, x), epsilon)
        return y, grad

    y = normalize(x, gamma, beta)
    return y, tf.stop_gradient(stats["mean"]), tf.stop_gradient(_biased(stats["variance"], x))


def _biased(variance, x):
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), x.dtype)
    return variance * tf.maximum(count - 1.0, 1.0) / count


def _first_order(dy, x, gamma, reserve, mean, variance, epsilon):
    @tf.custom_gradient
    def backward(dy, x, gamma):
        dx, dgamma, dbeta, _, _ = tf.raw_ops.FusedBatchNormGradV3(
            y_backprop=dy, x=x, scale=gamma, reserve_space_1=reserve[0], reserve_space_2=reserve[1],
            reserve_space_3=reserve[2], epsilon=epsilon, data_format="NHWC", is_training=True)

        def grad(d_dx, d_dgamma, d_dbeta):
            return _second_order(d_dx, d_dgamma, d_dbeta, dy, x, gamma, mean, variance, epsilon)
        return (dx, dgamma, dbeta), grad
    return backward(dy, x, gamma)


def _second_order(a, b, c, dy, x, gamma, mean, variance, epsilon):
    """Vector-Jacobian product of the BN gradient ``(dx, dgamma, dbeta)(dy, x, gamma)`` with
    cotangents ``(a, b, c)``: returns the cotangents of ``(dy, x, gamma)``. ``mean`` and
    ``variance`` (biased) are the batch statistics of ``x``.

    With x̂ = (x - mean) s, s = (variance + eps)^-1/2, N values per channel and the projection
    P(z) = z - mean(z) - x̂ mean(x̂ z), the BN gradient is dx = gamma s P(dy),
    dgamma = sum(dy x̂), dbeta = sum(dy). Then, with m = mean(dy x̂),
    alpha = sum(a (dy - mean(dy))), beta = sum(a x̂):
      d dy    = gamma s P(a) + b x̂ + c
      d gamma = s (alpha - m beta)
      d x     = k1 P(dy) + k2 P(a) + k3 x̂,  k1 = b s - gamma s^2 beta / N,
                k2 = -gamma s^2 m,  k3 = -gamma s^2 (alpha - m beta) / N.
    Written as per-channel combinations of dy, a and x - mean: 5 reductions, few passes.
    """
    a = tf.zeros_like(x) if a is None else a
    b = tf.zeros_like(gamma) if b is None else b
    c = tf.zeros_like(gamma) if c is None else c
    count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), x.dtype)
    centred = x - mean
    s = tf.math.rsqrt(variance + epsilon)
    mean_dy, mean_a = tf.reduce_mean(dy, _AXES), tf.reduce_mean(a, _AXES)
    m = s * tf.reduce_mean(centred * dy, _AXES)  # mean(x̂ dy)
    mean_xa = s * tf.reduce_mean(centred * a, _AXES)  # mean(x̂ a)
    alpha = tf.reduce_sum(a * dy, _AXES) - count * mean_a * mean_dy
    beta = count * mean_xa
    gs2 = gamma * s * s
    k1 = b * s - gs2 * beta / count
    k2 = -gs2 * m
    k3 = -gs2 * (alpha - m * beta) / count
    d_dy = (gamma * s) * a + centred * (b * s - gs2 * mean_xa) + (c - gamma * s * mean_a)
    d_x = k1 * dy + k2 * a + centred * (s * (k3 - k1 * m - k2 * mean_xa)) - (k1 * mean_dy + k2 * mean_a)
    d_gamma = s * (alpha - m * beta)
    return d_dy, d_x, d_gamma
