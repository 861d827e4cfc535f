"""The weights after one MAML-TRPO meta-iteration from fixed seeds, small half-cheetah and
ant problems (the paper's exact Hessian-vector products with episodes or a budget of steps,
where a fallen ant restarts; the authors' finite differences). ``rl_iteration_reference.json`` holds them as
the code before the speed work (commit a715c40) computed them with NumPy's OpenBLAS on one
thread (``OPENBLAS_NUM_THREADS=1``, as the learner now fits its baselines: with 2 threads the
fits differ in the last bits, and the ant's chaotic physics turns that into another
post-update return); tests/test_rl_iteration_speed.py checks that the learner still does.

    OPENBLAS_NUM_THREADS=1 python tests/rl_iteration_reference.py tests/rl_iteration_reference.json   # on purpose only
"""
import json
import sys

CONFIGS = {"cheetah-dir exact episodes": dict(env="cheetah-dir", hvp="exact", sampling="episodes"),
           "ant-vel exact steps": dict(env="ant-vel", hvp="exact", sampling="steps"),
           "cheetah-vel finite_difference steps": dict(env="cheetah-vel", hvp="finite_difference", sampling="steps")}


def small_policy(env):
    """A function building the tests' policy for ``env`` (one hidden layer of 8, seeded)."""
    import keras

    from maml_tf.models.policy import gaussian_mlp_policy
    from maml_tf.rl import envs

    with envs.make(env) as probe:
        dims = probe.observation_spec().shape[0], probe.action_spec().shape[0]

    def make():
        keras.utils.set_random_seed(3)
        return gaussian_mlp_policy(*dims, hidden=(8,))

    return make


def _learner(env, hvp, sampling, **options):
    from maml_tf.rl.maml_trpo import MAMLTRPO

    return MAMLTRPO(small_policy(env)(), env=env, meta_batch_size=2, episodes_per_task=2, hvp=hvp, sampling=sampling,
                    seed=1, **options)


def weights_after_one_iteration(env, hvp, sampling, **options):
    """Flat list per variable of the policy's weights after one meta-iteration, and its diagnostics."""
    algo = _learner(env, hvp, sampling, **options)
    try:
        stats = algo.train_iteration()
        return [v.numpy().ravel().tolist() for v in algo.model.trainable_variables], \
            {k: stats[k] for k in ("pre_update_return", "post_update_return", "loss_before", "loss_after", "kl")}
    finally:
        algo.close()


def trpo_data_of_one_iteration(env, hvp, sampling, **options):
    """What the first meta-iteration gives its TRPO step: the data ``(pre, post, old_outputs)``
    and the weights before the step (a list of arrays)."""
    algo = _learner(env, hvp, sampling, **options)
    captured = {}

    def capture(*data):
        captured["data"], captured["before"] = data, [v.numpy() for v in algo.model.trainable_variables]
        return {}

    algo._trpo_step = capture
    try:
        algo.train_iteration()
    finally:
        algo.close()
    return captured["data"], captured["before"]


def trpo_steps_against_float64(make_policy, data, before, learner_options, variants):
    """The TRPO step (change of the flat weights) that each of ``variants`` (name -> MAMLTRPO
    options) takes from the float32 weights ``before`` on the fixed ``data`` (a meta-iteration's
    ``(pre, post, old_outputs)``), and ``"float64"``: the same step from a float64 twin of the
    policy (the data cast), the reference that float32 rounding is measured against."""
    import keras
    import numpy as np
    import tensorflow as tf

    from maml_tf.rl.maml_trpo import MAMLTRPO

    def step(model, options, data):
        learner = MAMLTRPO(model, **learner_options, **options)
        for v, b in zip(model.trainable_variables, before):
            v.assign(tf.cast(b, v.dtype))
        learner._trpo_step(*data)
        return np.concatenate([(v.numpy().astype(np.float64) - b).ravel()
                               for v, b in zip(model.trainable_variables, before)])

    model = make_policy()
    steps = {name: step(model, options, data) for name, options in variants.items()}
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        steps["float64"] = step(make_policy(), {"jit_compile": False},
                                tf.nest.map_structure(lambda t: tf.cast(t, tf.float64), data))
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    return steps


if __name__ == "__main__":
    reference = {}
    for name, config in CONFIGS.items():
        weights, stats = weights_after_one_iteration(**config)
        reference[name] = {"weights": weights, "stats": stats}
    with open(sys.argv[1], "w") as f:
        json.dump(reference, f)
