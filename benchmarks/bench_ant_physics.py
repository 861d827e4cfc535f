"""gymnasium's ant physics against rllab's (``Ant(physics="rllab")``: one RK4 step of 0.02 per
action instead of two of 0.01, rllab's contact softness and start pose): environment steps
per second of the batched ant under uniform random actions, the share of its episodes that
end early (the torso leaves [0.2, 1]: below, fallen; above, jumped) and whether the physics
stays sound (finite state, no MuJoCo bad-qpos / qvel / qacc warning).

    python benchmarks/bench_ant_physics.py --members 80 --rounds 3 --out benchmarks/ant_physics.jsonl
    python benchmarks/bench_ant_physics.py --table benchmarks/ant_physics.jsonl   # README block

Every round runs one 200-step episode of each physics in turn (A B A B ...), the same
actions for both, so that a load change hits both alike; the environments are built once.
The time is the process's CPU time (the stepping runs on one thread): on shared cores it
counts the work, where the wall time also counts the waits (recorded too).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from maml_tf import reporting  # noqa: E402
from maml_tf.report import blocks  # noqa: E402

START, END = "<!-- GENERATED: bench_ant_physics.py -->", "<!-- END GENERATED: bench_ant_physics.py -->"
# MuJoCo's warnings that it met a non-finite or huge state and reset the data.
BAD_STATE = ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC")


def episode(env, seed):
    """One horizon of uniform random actions from a seeded start: CPU and wall seconds, the
    episodes that ended below and above the healthy heights, bad-state warnings and whether
    every state is finite."""
    import mujoco

    spec, members = env.action_spec(), env.batch_size
    actions = np.random.default_rng(seed).uniform(spec.minimum, spec.maximum,
                                                  (env.horizon, members) + spec.shape).astype(spec.dtype)
    env.seed(seed)
    env.reset()
    ended, fell = np.zeros(members, bool), 0
    cpu, wall = time.process_time(), time.perf_counter()
    for action in actions:
        step = env.step(action)
        if np.any((step.discount == 0) & ~ended):  # the height at the step an episode ended
            newly = (step.discount == 0) & ~ended
            fell += int(np.sum(env._state("qpos")[newly, 2] < 0.2))
            ended |= newly
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    warnings = sum(data.warning[getattr(mujoco.mjtWarning, w)].number for data in env._data for w in BAD_STATE)
    finite = bool(np.isfinite(env._state("qpos")).all() and np.isfinite(env._state("qvel")).all())
    return {"cpu_seconds": cpu, "wall_seconds": wall, "fell": fell, "jumped": int(np.sum(ended)) - fell,
            "warnings": int(warnings), "finite": finite}


def write_table(jsonl, readme):
    """One row per recorded run and physics: steps per second, the time against gymnasium's
    physics (the median of the rounds' ratios), the episodes that ended early."""
    lines = ["| run | physics | env steps/s by CPU time (median) | by wall time | CPU time vs gymnasium "
             "(median of rounds) | fell (torso < 0.2) | jumped (torso > 1) | bad-state warnings | finite |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for i, r in enumerate(reporting.read_json_lines(jsonl), 1):
        base = r["physics"]["gymnasium"]["cpu_seconds"]
        total = r["members"] * r["rounds"]
        for name, p in r["physics"].items():
            ratio = np.median(np.divide(p["cpu_seconds"], base))
            fell, jumped = sum(p["fell"]), sum(p["jumped"])
            lines.append(f"| {i} | {name} | {rate(r, p['cpu_seconds']):,.0f} | {rate(r, p['wall_seconds']):,.0f} | "
                         f"{ratio:.2f} | {fell} of {total} ({100 * fell / total:.0f}%) | {jumped} of {total} "
                         f"({100 * jumped / total:.0f}%) | {p['warnings']} | {p['finite']} |")
        m = r["machine"]
        notes.append(f"Run {i}: {r['env']}, {r['members']} members x {r['horizon']} steps, {r['rounds']} "
                     f"alternated rounds, code {r['commit']}; {m['cpu']}, {m['cores']} cores, load (1 min) "
                     f"{r['load_average'][0]:.1f} before, {r['load_after'][0]:.1f} after; `{r['command']}`.")
    blocks.publish_table(readme, START, END, lines + [""] + notes)


def rate(record, seconds):
    """Median environment steps per second over the rounds' ``seconds``."""
    return float(np.median(record["members"] * record["horizon"] / np.asarray(seconds)))


def main():
    from bench_rl_iteration import git_commit, positive

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="ant-vel", choices=("ant-vel", "ant-dir"))
    ap.add_argument("--members", type=positive, default=80, help="ants stepped together")
    ap.add_argument("--rounds", type=positive, default=3, help="alternating rounds (one episode each)")
    blocks.add_table_arguments(ap, __file__)
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    from maml_tf.rl import envs
    from maml_tf.rl.envs.locomotion import PHYSICS

    load = os.getloadavg()
    physics = {}
    for name in PHYSICS:
        env = envs.make(a.env, batch_size=a.members, physics=name)
        env.reset_task(env.sample_tasks(a.members, seed=0))
        physics[name] = env
    runs = {name: [] for name in PHYSICS}
    for r in range(a.rounds):
        for name, env in physics.items():
            runs[name].append(episode(env, seed=r))
            print(f"round {r} {name}: {runs[name][-1]}", flush=True)
    record = {"benchmark": "ant_physics", "env": a.env, "members": a.members,
              "horizon": physics[PHYSICS[0]].horizon, "rounds": a.rounds, "commit": git_commit(),
              "physics": {name: {key: [x[key] for x in rs] for key in ("cpu_seconds", "wall_seconds", "fell", "jumped")}
                          | {"warnings": sum(x["warnings"] for x in rs), "finite": all(x["finite"] for x in rs)}
                          for name, rs in runs.items()},
              "machine": reporting.machine(), "load_average": load, "load_after": os.getloadavg(),
              "command": reporting.command()}
    print(json.dumps(record))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
