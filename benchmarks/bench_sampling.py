"""How fast do the RL experiments (Section 5.3) collect experience? Environment steps per
second of the batched sampler (the 100-100 Gaussian policy in the loop, one call per
time step for every member) beside the environments stepped alone: navigation's batched
NumPy step; for half-cheetah the natively batched environment, the same robots as a
tf-agents ``BatchedPyEnvironment`` of one-robot environments, gymnasium's
``env.step`` and bare ``mujoco.mj_step`` on the same model.

    python benchmarks/bench_sampling.py                       # ~30 s
    python benchmarks/bench_sampling.py --cheetah-tasks 40 --cheetah-episodes 20   # paper batch
    python benchmarks/bench_sampling.py --out benchmarks/sampling.jsonl
    python benchmarks/bench_sampling.py --rllab      # also cheetah-dir with rllab's options
    python benchmarks/bench_sampling.py --table benchmarks/sampling.jsonl  # README block

Prints a table and one JSON line (appended to --out if given). An environment step is
one action; for MuJoCo it is ``frame_skip`` physics steps (1 for the cheetah at rllab's
dt 0.01), so every row counts the same unit.
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

START, END = "<!-- GENERATED: bench_sampling.py -->", "<!-- END GENERATED: bench_sampling.py -->"


def rate(step_batch, steps_per_call, seconds):
    """Environment steps per second of ``step_batch()`` (``steps_per_call`` steps each),
    after one warm-up call, over at least ``seconds``."""
    step_batch()
    calls, start = 0, time.perf_counter()
    while True:
        step_batch()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * steps_per_call / elapsed


def sampler_rate(env_name, tasks, episodes, seconds):
    """The ``Sampler`` collecting ``tasks x episodes`` trajectories (padded to the horizon) per call."""
    from maml_tf.models.policy import gaussian_mlp_policy
    from maml_tf.rl import envs
    from maml_tf.rl.sampler import Sampler

    env = envs.make(env_name, batch_size=tasks * episodes)
    spec = env.observation_spec().shape[0], env.action_spec().shape[0]
    sampler = Sampler(env, gaussian_mlp_policy(*spec))
    task_list = env.sample_tasks(tasks, seed=0)
    seeds = iter(range(1_000_000))
    return rate(lambda: sampler.sample(task_list, next(seeds)), tasks * episodes * env.horizon, seconds)


def task_env_rate(env_name, members, seconds, per_member=False, **options):
    """The batched task environment stepped with uniform random actions, no policy.

    ``per_member``: instead, ``members`` one-robot environments in tf-agents'
    ``BatchedPyEnvironment`` (how the locomotion tasks were batched before they
    stepped natively), for comparison. ``options``: the environment's (``env_options``).
    """
    from tf_agents.environments import batched_py_environment

    from maml_tf.rl import envs

    if per_member:
        singles = [envs.make(env_name) for _ in range(members)]
        for single, task in zip(singles, singles[0].sample_tasks(members, seed=0)):
            single.reset_task(task)
        env = batched_py_environment.BatchedPyEnvironment(singles, multithreading=False)
        env.horizon = singles[0].horizon
    else:
        env = envs.make(env_name, batch_size=members, **options)
        env.reset_task(env.sample_tasks(members, seed=0))
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    env.reset()

    def horizon():
        for _ in range(env.horizon):
            env.step(rng.uniform(spec.minimum, spec.maximum, (members,) + spec.shape).astype(spec.dtype))

    return rate(horizon, members * env.horizon, seconds)


def gymnasium_rate(seconds, steps=1000):
    """gymnasium's ``HalfCheetahEnv.step`` at the frame skip the experiments use."""
    from maml_tf.rl.envs import HalfCheetahVel

    robot = HalfCheetahVel().robot
    robot.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps,) + robot.action_space.shape)

    def run():
        for a in actions:
            robot.step(a)

    return rate(run, steps, seconds), robot


def mujoco_rate(robot, seconds, steps=1000):
    """Bare ``mujoco.mj_step`` (``frame_skip`` per action) on the same model and data."""
    import mujoco

    model, data, skip = robot.model, robot.data, robot.frame_skip
    controls = np.random.default_rng(0).uniform(-1, 1, (steps, model.nu))

    def run():
        for u in controls:
            data.ctrl[:] = u
            mujoco.mj_step(model, data, nstep=skip)

    return rate(run, steps, seconds)


def alternating_rates(env_name, members, seconds, variants, rounds=3):
    """Median steps per second of each ``variants`` entry (name -> environment options),
    measured in turn (A B A B ...) so that a load change hits both alike."""
    rates = {name: [] for name in variants}
    for _ in range(rounds):
        for name, options in variants.items():
            rates[name].append(task_env_rate(env_name, members, seconds, **options))
    return {name: float(np.median(r)) for name, r in rates.items()}


def write_table(jsonl, readme):
    """The recorded runs as one README table: a column of steps per second per run."""
    records = reporting.read_json_lines(jsonl)
    head = "| env | what | " + " | ".join(f"run {i + 1}: steps/s" for i in range(len(records))) + " |"
    rows = [head, "|---|---|" + "---|" * len(records)]
    for k, row in enumerate(records[-1]["rows"]):
        rates = [f"{r['rows'][k]['steps_per_second']:,.0f}" if k < len(r["rows"]) and
                 r["rows"][k]["what"] == row["what"] else "" for r in records]
        rows.append(f"| {row['env']} | {row['what']} | " + " | ".join(rates) + " |")
    rows.append("")
    rows += [f"Run {i + 1}: {r['machine']['cpu']}, {r['machine']['cores']} cores, load (1 min) before "
             f"{r['load_average'][0]:.1f}, `{r['command']}`." for i, r in enumerate(records)]
    blocks.publish_table(readme, START, END, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row (after warm-up)")
    ap.add_argument("--nav-tasks", type=int, default=20, help="navigation tasks per sampler call (paper 20)")
    ap.add_argument("--nav-episodes", type=int, default=20, help="trajectories per task (paper 20)")
    ap.add_argument("--cheetah-tasks", type=int, default=2, help="cheetah tasks per sampler call (paper 40)")
    ap.add_argument("--cheetah-episodes", type=int, default=10, help="trajectories per task (paper 20)")
    ap.add_argument("--rllab", action="store_true",
                    help="also cheetah-dir's batched env.step with rllab's observation, centre-of-mass velocity "
                         "and reset noise (the authors preset) beside the default, alternated 3 times")
    blocks.add_table_arguments(ap, __file__)
    a = ap.parse_args()
    if a.table:
        return write_table(a.table, a.readme)
    for name in ("seconds", "nav_tasks", "nav_episodes", "cheetah_tasks", "cheetah_episodes"):
        if getattr(a, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")

    load = os.getloadavg()
    nav_members, cheetah_members = a.nav_tasks * a.nav_episodes, a.cheetah_tasks * a.cheetah_episodes
    gym, robot = gymnasium_rate(a.seconds)
    rows = [
        ("navigation", f"Sampler, policy in the loop ({nav_members} members)",
         sampler_rate("navigation", a.nav_tasks, a.nav_episodes, a.seconds)),
        ("navigation", f"batched NumPy env.step, random actions ({nav_members} members)",
         task_env_rate("navigation", nav_members, a.seconds)),
        ("cheetah-vel", f"Sampler, policy in the loop ({cheetah_members} members)",
         sampler_rate("cheetah-vel", a.cheetah_tasks, a.cheetah_episodes, a.seconds)),
        ("cheetah-vel", f"batched env.step, random actions ({cheetah_members} members)",
         task_env_rate("cheetah-vel", cheetah_members, a.seconds)),
        ("cheetah-vel", f"tf-agents BatchedPyEnvironment of one-robot envs ({cheetah_members} members)",
         task_env_rate("cheetah-vel", cheetah_members, a.seconds, per_member=True)),
        ("cheetah-vel", "gymnasium HalfCheetah-v5 env.step (one env)", gym),
        ("cheetah-vel", f"mujoco.mj_step x {robot.frame_skip} on the same model (one env)",
         mujoco_rate(robot, a.seconds)),
    ]
    if a.rllab:
        from maml_tf import presets
        rllab = dict(presets.LOCOMOTION["cheetah-dir"]["authors"].env_options)
        medians = alternating_rates("cheetah-dir", cheetah_members, a.seconds, {"gymnasium": {}, "rllab": rllab})
        rows += [("cheetah-dir", f"batched env.step, gymnasium's observation ({cheetah_members} members, "
                                 "median of 3 alternated)", medians["gymnasium"]),
                 ("cheetah-dir", f"batched env.step, rllab's observation, centre-of-mass velocity, reset noise "
                                 f"({cheetah_members} members, median of 3 alternated)", medians["rllab"])]
    record = {"benchmark": "sampling", "rows": [{"env": e, "what": w, "steps_per_second": round(r, 1)}
                                                for e, w, r in rows],
              "machine": reporting.machine(), "load_average": load, "command": reporting.command(),
              "settings": {k: v for k, v in vars(a).items() if k not in ("table", "readme")}}
    print(f"{'env':<12} {'steps/s':>12}  what")
    for env, what, steps in rows:
        print(f"{env:<12} {steps:>12,.0f}  {what}")
    print(json.dumps(record))
    if a.out:
        reporting.append_json_line(a.out, record)


if __name__ == "__main__":
    main()
