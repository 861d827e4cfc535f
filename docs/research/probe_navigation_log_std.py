"""Issue 32, navigation after 2-3 steps: is the gap to the paper the meta-learned action noise?

Reads the log-std of the authors' meta-trained point policy from their released test paths
(cbfinn/maml_rl ``icml/maml_paths_itr{0..4}.pkl``: 40 to 133 episodes per adaptation step on
one goal, each step's ``agent_infos["log_std"]``), then meta-tests our committed ``code`` run
(``checkpoints/fig4_navigation/code``, MAML) with the authors' protocol (``--preset
authors``: their 40 goals, whole episodes) once as trained and once with its log-std
replaced by theirs, and by shifts of its own. Same goals, seeds and step sizes in every row:
only the noise differs. Then it separates the noise's two roles: adapted with its own noise
for 2 and 3 steps (the adapted weights and their log-std as meta-test computes them), the
policy is sampled once more with each log-std, so that only the noise of the episodes that
score it differs. Writes a JSON line per row to ``--out``.

    git --git-dir=$(fetch github:cbfinn/maml_rl) archive HEAD icml | tar -x -C /tmp/maml_rl
    python docs/research/probe_navigation_log_std.py --authors /tmp/maml_rl/icml
"""
import argparse
import json
import os
import pickle
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from maml_tf import reporting  # noqa: E402
from maml_tf.evaluation.protocol import mean_ci95  # noqa: E402
from maml_tf.experiments import registry, rl  # noqa: E402
from maml_tf.rl.learner import mean_returns  # noqa: E402


def authors_log_std(directory):
    """Per adaptation step k: the authors' log-std (mean over the episodes' steps; it is one
    parameter vector, constant within a step), episodes and mean return, mean length."""
    rows = []
    for k in range(5):
        with open(os.path.join(directory, f"maml_paths_itr{k}.pkl"), "rb") as f:
            paths = pickle.load(f, encoding="latin1")
        log_std = np.concatenate([p["agent_infos"]["log_std"] for p in paths])
        rows.append({"step": k, "episodes": len(paths), "log_std": log_std.mean(axis=0).round(4).tolist(),
                     "return": float(np.mean([p["rewards"].sum() for p in paths])),
                     "length": float(np.mean([len(p["rewards"]) for p in paths]))})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--authors", required=True, help="the maml_rl repository's icml/ folder")
    ap.add_argument("--run-dir", default="checkpoints/fig4_navigation/code")
    ap.add_argument("--shifts", type=float, nargs="*", default=[-0.3, -0.6],
                    help="also meta-test with our log-std plus each shift")
    ap.add_argument("--out", default="docs/research/probe_navigation_log_std.jsonl")
    args = ap.parse_args()

    theirs = authors_log_std(args.authors)
    preset = registry.preset("navigation", "authors")
    learner = rl.load(preset, "maml", args.run_dir)
    tasks = rl.test_tasks(preset)
    log_std = next(w for w in learner.model.weights if "log_std" in w.path)
    ours = log_std.numpy().copy()
    variants = [("as trained", ours), ("the authors' log-std", np.array(theirs[0]["log_std"], ours.dtype))]
    variants += [(f"ours {s:+.1f}", ours + np.float32(s)) for s in args.shifts]
    common = {"probe": "navigation_log_std", "run_dir": args.run_dir, "iteration": learner.iteration,
              "preset": preset.name, "tasks": len(tasks), "authors_paths": theirs,
              "machine": reporting.machine(), "load_average": os.getloadavg(), "command": " ".join(sys.argv)}
    with open(args.out, "a") as out:
        for name, value in variants:
            log_std.assign(value)
            start = time.perf_counter()
            per_task = rl.meta_test(preset, learner, tasks, preset.step_sizes("maml"))
            row = {"variant": name, "log_std": np.round(value, 4).tolist(), "mean": per_task["mean"],
                   "ci95": per_task["ci95"], "seconds": round(time.perf_counter() - start, 1), **common}
            print(f"{name:>22}: log-std {[round(v, 3) for v in row['log_std']]}  returns after 0..{len(row['mean']) - 1} steps "
                  + " / ".join(f"{m:.2f}" for m in row["mean"]), flush=True)
            out.write(json.dumps(row) + "\n")
        log_std.assign(ours)
        episodes, sampling = preset.eval_episodes_per_task, preset.eval_sampling
        for steps in (2, 3):
            weights, _ = learner.adapt(tasks, steps, preset.step_sizes("maml"), episodes, preset.seed,
                                       sampling=sampling)
            adapted = weights[-1].numpy()  # [tasks, action_dim]: each task's adapted log-std
            for name, value in variants:
                value = adapted if name == "as trained" else np.broadcast_to(value, adapted.shape)
                weights[-1] = tf.constant(value, weights[-1].dtype)
                samples = learner.sample(tasks, 7, weights, episodes, sampling)
                returns = mean_returns(samples)
                mean, ci = mean_ci95(returns[:, None])
                lengths = samples["valid"].sum() / samples["ends"].sum()
                row = {"variant": name, "scored_only": True, "after_steps": steps,
                       "log_std": np.round(value.mean(axis=0), 4).tolist(), "mean": float(mean[0]),
                       "ci95": float(ci[0]), "episode_length": float(lengths), **common}
                print(f"{name:>22}, adapted {steps} steps with our noise, scored with log-std "
                      f"{[round(v, 3) for v in row['log_std']]}: {row['mean']:.2f} +- {row['ci95']:.2f}, "
                      f"episodes of {lengths:.1f} steps", flush=True)
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
