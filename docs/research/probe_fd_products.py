"""Issue 32, half-cheetah direction: what rllab's finite-difference KL Hessian-vector products
(the authors' TRPO, our ``hvp="finite_difference"``) compute, against the exact products.

Builds a preset's MAML-TRPO learner (fresh weights, or a run directory's), samples one
meta-iteration's batch, and at that trust-region centre compares, for the surrogate's gradient
``g`` and for conjugate gradient's solution: the finite-difference product with the exact one
(cosine, norm ratio), how many coordinates of ``theta + eps v`` float32 leaves unchanged, and
the two TRPO directions' cosine. Appends one JSON line to ``--out``.

    python docs/research/probe_fd_products.py --experiment cheetah-dir --preset authors
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from maml_tf import reporting  # noqa: E402
from maml_tf.experiments import registry, rl  # noqa: E402
from maml_tf.rl.trpo import (conjugate_gradient, finite_difference_eps,  # noqa: E402
                             finite_difference_hessian_vector_product)


def flat(tensors):
    return np.concatenate([np.reshape(np.asarray(t, np.float64), -1) for t in tensors])


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default="cheetah-dir")
    ap.add_argument("--preset", default="authors")
    ap.add_argument("--run-dir", default=None, help="restore MAML from this run directory (default: fresh weights)")
    ap.add_argument("--out", default="docs/research/probe_fd_products.jsonl")
    args = ap.parse_args()

    preset = registry.preset(args.experiment, args.preset)
    algo = rl.load(preset, "maml", args.run_dir) if args.run_dir else rl.build(preset, "maml")
    captured = {}

    def capture(*data):  # the batch TRPO steps on; no step is taken
        captured["data"] = data
        return {"loss_before": 0.0, "loss_after": 0.0, "kl": 0.0, "accepted": False, "backtracks": 0}

    algo._trpo_step = capture
    algo.train_iteration()
    data, variables = captured["data"], algo.model.trainable_variables
    with tf.GradientTape() as tape:
        loss = algo._surrogate(*data)
    g = tape.gradient(loss, variables)
    exact = lambda v: algo._hvp(v, *data)  # noqa: E731
    fd = lambda v: finite_difference_hessian_vector_product(  # noqa: E731
        lambda: algo._kl_gradient(*data), variables, v)

    norm = float(np.linalg.norm(flat(variables)))
    eps = np.float32(finite_difference_eps(variables))  # the products' own perturbation size
    moved = [np.mean((v.numpy() + eps * gv.numpy()) != v.numpy()) for v, gv in zip(variables, g)]
    sizes = [int(np.prod(v.shape)) for v in variables]
    row = {"probe": "fd_products", "experiment": args.experiment, "preset": args.preset,
           "run_dir": args.run_dir, "batch_of_iteration": algo.iteration, "parameters": int(sum(sizes)),
           "theta_norm": norm, "eps": float(eps),
           "coordinates_moved_by_eps_g": float(np.average(moved, weights=sizes)),
           "moved_per_variable": {v.path: round(float(m), 4) for v, m in zip(variables, moved)},
           "kl_gradient_norm_at_centre": float(np.linalg.norm(flat(algo._kl_gradient(*data))))}
    e, f = flat(exact(g)), flat(fd(g))
    row.update(product_cosine=cosine(e, f), product_norm_ratio=float(np.linalg.norm(f) / np.linalg.norm(e)),
               damping_share_of_fd=float(np.linalg.norm(1e-5 * flat(g)) / np.linalg.norm(f)))
    s_exact = flat(conjugate_gradient(exact, g))
    s_fd = flat(conjugate_gradient(fd, g))
    row.update(direction_cosine=cosine(s_exact, s_fd), direction_fd_cosine_with_gradient=cosine(s_fd, flat(g)),
               direction_exact_cosine_with_gradient=cosine(s_exact, flat(g)),
               machine=reporting.machine(), load_average=os.getloadavg(), command=" ".join(sys.argv))
    print(json.dumps({k: v for k, v in row.items() if k not in ("machine", "moved_per_variable")}, indent=1))
    with open(args.out, "a") as out:
        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
