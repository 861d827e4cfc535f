"""Issue 32: how much of an RL policy's return after adapting is set by its meta-learned action
noise (the Gaussian policy's log-std), and, for navigation, what the authors' noise was.

Meta-tests a committed MAML run (the preset's test tasks, protocol and step sizes) twice over:
(1) with its log-std replaced before adapting, so that the noise of the adaptation episodes
and of the scored ones both change; (2) adapted with its own noise for k steps, then the
adapted policy sampled once more with each log-std, so that only the noise of the episodes
that score it differs. Variants: as trained, the adapted log-std plus each ``--shifts``, and
with ``--authors DIR`` (navigation) the authors' meta-trained log-std, read from their
released test episodes (cbfinn/maml_rl ``icml/maml_paths_itr{0..4}.pkl``: one goal, 40 to 133
episodes per adaptation step, each step's ``agent_infos["log_std"]``). The same tasks and
seeds in every row: only the noise differs. Appends a JSON line per row to ``--out``.

    git --git-dir=$(fetch github:cbfinn/maml_rl) archive HEAD icml | tar -x -C /tmp/maml_rl
    python docs/research/probe_action_noise.py --authors /tmp/maml_rl/icml
    python docs/research/probe_action_noise.py --experiment cheetah-dir --preset paper \
        --run-dir checkpoints/fig5_cheetah_dir/paper --steps 1 2 3 --no-adapt-variants
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
    ap.add_argument("--experiment", default="navigation")
    ap.add_argument("--preset", default="authors")
    ap.add_argument("--run-dir", default="checkpoints/fig4_navigation/code")
    ap.add_argument("--authors", default=None, help="navigation: the maml_rl repository's icml/ folder")
    ap.add_argument("--shifts", type=float, nargs="*", default=[-0.3, -0.6],
                    help="also test with the log-std plus each shift")
    ap.add_argument("--steps", type=int, nargs="+", default=[2, 3], help="(2): score after these many steps")
    ap.add_argument("--no-adapt-variants", dest="adapt_variants", action="store_false",
                    help="skip (1), the variants' noise in the adaptation episodes too")
    ap.add_argument("--out", default="docs/research/probe_action_noise.jsonl")
    args = ap.parse_args()

    theirs = authors_log_std(args.authors) if args.authors else None
    preset = registry.preset(args.experiment, args.preset)
    learner = rl.load(preset, "maml", args.run_dir)
    tasks = rl.test_tasks(preset)
    log_std = next(w for w in learner.model.weights if "log_std" in w.path)
    ours = log_std.numpy().copy()
    # (name, log-std from the one it replaces): a shift keeps each task's adapted log-std's shape.
    variants = [("as trained", lambda current: current)]
    if theirs:
        variants.append(("the authors' log-std",
                         lambda current: np.broadcast_to(np.array(theirs[0]["log_std"], ours.dtype), current.shape)))
    variants += [(f"log-std {s:+.1f}", lambda current, s=s: current + np.float32(s)) for s in args.shifts]
    common = {"probe": "action_noise", "experiment": args.experiment, "run_dir": args.run_dir,
              "iteration": learner.iteration, "preset": preset.name, "tasks": len(tasks), "authors_paths": theirs,
              "machine": reporting.machine(), "load_average": os.getloadavg(), "command": " ".join(sys.argv)}
    with open(args.out, "a") as out:
        for name, noise in variants if args.adapt_variants else ():
            log_std.assign(noise(ours))
            start = time.perf_counter()
            per_task = rl.meta_test(preset, learner, tasks, preset.step_sizes("maml"))
            row = {"variant": name, "log_std": np.round(log_std.numpy(), 4).tolist(), "mean": per_task["mean"],
                   "ci95": per_task["ci95"], "seconds": round(time.perf_counter() - start, 1), **common}
            print(f"{name:>22}, adapting and scoring: log-std {[round(v, 3) for v in row['log_std']]}, "
                  f"returns after 0..{len(row['mean']) - 1} steps " + " / ".join(f"{m:.2f}" for m in row["mean"]),
                  flush=True)
            out.write(json.dumps(row) + "\n")
        log_std.assign(ours)
        episodes, sampling = preset.eval_episodes_per_task, preset.eval_sampling
        for steps in args.steps:
            weights, _ = learner.adapt(tasks, steps, preset.step_sizes("maml"), episodes, preset.seed,
                                       sampling=sampling)
            adapted = weights[-1].numpy()  # [tasks, action_dim]: each task's adapted log-std
            for name, noise in variants:
                value = noise(adapted)
                weights[-1] = tf.constant(value, weights[-1].dtype)
                samples = learner.sample(tasks, 7, weights, episodes, sampling)
                mean, ci = mean_ci95(mean_returns(samples)[:, None])
                lengths = samples["valid"].sum() / samples["ends"].sum()
                row = {"variant": name, "scored_only": True, "after_steps": steps,
                       "log_std": np.round(value.mean(axis=0), 4).tolist(), "mean": float(mean[0]),
                       "ci95": float(ci[0]), "episode_length": float(lengths), **common}
                print(f"{name:>22}, adapted {steps} steps with its own noise, scored with log-std "
                      f"{[round(v, 3) for v in row['log_std']]}: {row['mean']:.2f} +- {row['ci95']:.2f}, "
                      f"episodes of {lengths:.1f} steps", flush=True)
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
