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


def weights_after_one_iteration(env, hvp, sampling, **options):
    """Flat list per variable of the policy's weights after one meta-iteration, and its diagnostics."""
    import keras

    from maml_tf.models.policy import gaussian_mlp_policy
    from maml_tf.rl import envs
    from maml_tf.rl.maml_trpo import MAMLTRPO

    with envs.make(env) as probe:
        dims = probe.observation_spec().shape[0], probe.action_spec().shape[0]
    keras.utils.set_random_seed(3)
    model = gaussian_mlp_policy(*dims, hidden=(8,))
    algo = MAMLTRPO(model, env=env, meta_batch_size=2, episodes_per_task=2, hvp=hvp, sampling=sampling, seed=1,
                    **options)
    stats = algo.train_iteration()
    try:
        return [v.numpy().ravel().tolist() for v in model.trainable_variables], \
            {k: stats[k] for k in ("pre_update_return", "post_update_return", "loss_before", "loss_after", "kl")}
    finally:
        if hasattr(algo, "close"):
            algo.close()


if __name__ == "__main__":
    reference = {}
    for name, config in CONFIGS.items():
        weights, stats = weights_after_one_iteration(**config)
        reference[name] = {"weights": weights, "stats": stats}
    with open(sys.argv[1], "w") as f:
        json.dump(reference, f)
