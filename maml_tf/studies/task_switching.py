"""Study "task-switching": can a meta-learned model switch back and forth
between tasks? Chains A -> B -> A -> C ... adapted without reset (from the previous link's
weights) against with reset (from the meta-learned weights), on the sinusoid (trained here
at the paper's settings), Omniglot 5-way 1-shot and 2D navigation (the committed runs).

Measures: ``maml_tf.evaluation.task_switching`` and ``maml_tf.rl.switching.policy_switching``;
the page: ``maml_tf.report.switching``.
"""
import dataclasses
import os
import time

from maml_tf.studies import training_verbose


@dataclasses.dataclass(frozen=True)
class TaskSwitchingPreset:
    """The study's budget: which models, how many chains, which pattern, how many steps."""
    name: str = "full"
    seed: int = 0                          # draws the chains' tasks (seeds apart from the test tasks')
    # Sinusoid: MAML trained here, maml_tf.presets.SINUSOID[sinusoid_preset] (paper: 70,000 iterations).
    sinusoid_preset: str = "paper"
    sinusoid_pattern: str = "ABACADAEA"
    sinusoid_chains: int = 200
    sinusoid_steps: int = 10               # inner steps per link (Figure 3 shows 0..10)
    sinusoid_shots: int = 10               # support points K per task (as in training)
    sinusoid_query: int = 100              # query points per task (the MSE estimate)
    # Omniglot 5-way 1-shot: a trained run directory (read only); None skips it.
    omniglot_run_dir: str = "checkpoints/table1_omniglot/paper/5way1shot"
    omniglot_pattern: str = "ABACADA"
    omniglot_chains: int = 200
    omniglot_steps: int = 10               # the paper tests with 3; the curve goes on to 10
    omniglot_query_shots: int = 5          # query images per class (training used 1)
    # 2D navigation: a trained run directory (read only); None skips it.
    navigation_run_dir: str = "checkpoints/fig4_navigation/paper"
    navigation_pattern: str = "ABA"
    navigation_chains: int = 40
    navigation_steps: int = 3              # policy-gradient steps per link (Figure 4: 0..3)
    navigation_episodes: int = 40          # episodes per task and step


PRESETS = {
    "full": TaskSwitchingPreset(),
    "quick": TaskSwitchingPreset(name="quick", sinusoid_preset="quick", sinusoid_chains=50, omniglot_chains=50,
                                 navigation_chains=10, navigation_episodes=20),
    "smoke": TaskSwitchingPreset(name="smoke", sinusoid_preset="smoke", sinusoid_pattern="ABA", sinusoid_chains=6,
                                 sinusoid_steps=2, sinusoid_query=20, omniglot_pattern="ABA", omniglot_chains=3,
                                 omniglot_steps=2, omniglot_query_shots=1, navigation_chains=2,
                                 navigation_steps=1, navigation_episodes=2),
}
MODELS = ("sinusoid", "omniglot", "navigation")
# Seeds of the chains' tasks: apart from every experiment's test (10,000 / 20,000 + seed).
CHAIN_SEED = 40_000


def run(preset, run_dir, out, time_limit=None, verbose=1, echo=print):
    """Train the sinusoid MAML (resuming ``run_dir``), measure the three models' chains and
    write ``out`` (metrics.json, table.md, PNGs). ``preset``: a name of ``PRESETS`` or a
    :class:`TaskSwitchingPreset`; ``time_limit``: minutes of sinusoid training."""
    from maml_tf import reporting
    from maml_tf.report import switching as page

    preset = PRESETS[preset] if isinstance(preset, str) else preset
    started = time.time()
    say = echo if verbose else (lambda *_: None)
    models = {"sinusoid": sinusoid(preset, os.path.join(run_dir, "sinusoid"), time_limit, verbose, say)}
    if preset.omniglot_run_dir:
        models["omniglot"] = omniglot(preset, say)
    if preset.navigation_run_dir:
        models["navigation"] = navigation(preset, say)
    doc = {"study": "task_switching", "preset": dataclasses.asdict(preset), "command": reporting.command(),
           "machine": reporting.machine(), "seconds": round(time.time() - started, 1), "models": models}
    os.makedirs(out, exist_ok=True)
    page.write(doc, out)  # adds each model's "switch_back" summary, the answer's numbers
    reporting.write_json(os.path.join(out, "metrics.json"), page.without_per_chain(doc))
    say(f"task-switching: wrote {out} ({doc['seconds']:.0f} s)")
    return doc


def summary(metrics):
    """The README's line: back on A after B, no reset against reset after k steps, per model."""
    from maml_tf.report.switching import _fmt, _steps
    names = {"sinusoid": "sinusoid MSE", "omniglot": "Omniglot 5-way 1-shot", "navigation": "2D navigation return"}
    parts = []
    for name, r in metrics["models"].items():
        back = r.get("switch_back")
        if back:
            k = r["steps"]
            at = back["steps"][str(k)] if str(k) in back["steps"] else back["steps"][k]
            parts.append(f"{names.get(name, name)} {_fmt(r['metric'], at['no_reset'])} against "
                         f"{_fmt(r['metric'], at['reset'])} after {_steps(k)} ({at['verdict']})")
    return ("**Task switching** (`maml study task-switching`): back on task A after adapting to B, adapting "
            "from B's weights instead of the meta-weights gives " + "; ".join(parts) + ".")


def sinusoid(preset, run_dir, time_limit, verbose, say):
    """Train (or resume) the sinusoid MAML at ``preset.sinusoid_preset``, then its chains."""
    from maml_tf.evaluation import task_chain, task_switching
    from maml_tf.experiments import registry
    from maml_tf.experiments import sinusoid as experiment

    exp = registry.create("sinusoid", preset.sinusoid_preset, run_dir=run_dir, methods=["maml"],
                          verbose=training_verbose(verbose))
    progress = exp.train(time_limit=time_limit)
    iterations = progress.iterations["maml"]
    seconds = exp_seconds(run_dir)
    say(f"sinusoid: MAML trained {iterations}/{exp.preset.iterations} iterations ({seconds:.0f} s of training)")
    maml = exp.learners()["maml"]
    tasks = experiment.task_distribution(exp.preset, shots=preset.sinusoid_shots, query=preset.sinusoid_query)
    pool = {letter: tasks.sample(preset.sinusoid_chains, [CHAIN_SEED + preset.seed, i])[0]
            for i, letter in enumerate(sorted(set(preset.sinusoid_pattern)))}
    result = _timed(lambda: task_switching(maml, task_chain(preset.sinusoid_pattern, pool), preset.sinusoid_steps))
    say(f"sinusoid: {preset.sinusoid_chains} chains {preset.sinusoid_pattern}, {preset.sinusoid_steps} steps "
        f"({result['eval_seconds']:.0f} s)")
    return {**result, "pattern": preset.sinusoid_pattern, "metric": "loss", "model": {
        "experiment": "sinusoid", "preset": exp.preset.name, "run_dir": run_dir, "iterations": iterations,
        "budget_iterations": exp.preset.iterations, "training_seconds": seconds, "inner_lr": exp.preset.inner_lr,
        "shots": preset.sinusoid_shots, "query": preset.sinusoid_query}}


def omniglot(preset, say):
    """Chains of Omniglot test tasks for the trained run ``preset.omniglot_run_dir``."""
    from maml_tf.evaluation import task_chain, task_switching
    from maml_tf.experiments import classification, registry

    exp = registry.open(preset.omniglot_run_dir)
    maml = exp.learners()["maml"]
    tasks = classification.tasks(dataclasses.replace(exp.preset, query_shots=preset.omniglot_query_shots), "test")
    pool = {letter: tasks.sample(preset.omniglot_chains, [CHAIN_SEED + preset.seed, i])
            for i, letter in enumerate(sorted(set(preset.omniglot_pattern)))}
    result = _timed(lambda: task_switching(maml, task_chain(preset.omniglot_pattern, pool), preset.omniglot_steps))
    say(f"omniglot: {preset.omniglot_chains} chains {preset.omniglot_pattern}, {preset.omniglot_steps} steps "
        f"({result['eval_seconds']:.0f} s)")
    return {**result, "pattern": preset.omniglot_pattern, "metric": "accuracy", "model": {
        "experiment": "omniglot", "setting": exp.preset.setting, "run_dir": preset.omniglot_run_dir,
        "iterations": classification.completed_iterations(preset.omniglot_run_dir),
        "budget_iterations": exp.preset.iterations, "inner_lr": exp.preset.inner_lr,
        "query_shots": preset.omniglot_query_shots}}


def navigation(preset, say):
    """Goal chains for the committed navigation meta-policy ``preset.navigation_run_dir``."""
    from maml_tf.experiments import registry
    from maml_tf.rl.switching import policy_switching

    exp = registry.open(preset.navigation_run_dir)
    learner = exp.learners()["maml"]
    goals = {letter: learner.sample_tasks(preset.navigation_chains, [CHAIN_SEED + preset.seed, i])
             for i, letter in enumerate(sorted(set(preset.navigation_pattern)))}
    sizes = list(exp.preset.step_sizes("maml"))
    result = _timed(lambda: policy_switching(learner, [goals[g] for g in preset.navigation_pattern],
                                             preset.navigation_steps, sizes, preset.navigation_episodes,
                                             seed=CHAIN_SEED + preset.seed))
    say(f"navigation: {preset.navigation_chains} goal chains {preset.navigation_pattern}, "
        f"{preset.navigation_steps} steps ({result['eval_seconds']:.0f} s)")
    return {**result, "pattern": preset.navigation_pattern, "metric": "return", "model": {
        "experiment": "navigation", "run_dir": preset.navigation_run_dir, "iterations": learner.iteration,
        "budget_iterations": exp.preset.iterations, "step_sizes": sizes,
        "episodes_per_task": preset.navigation_episodes}}


def exp_seconds(run_dir):
    """Training seconds the sinusoid run's MAML checkpoints record."""
    from maml_tf.experiments.runs import RunDirectory
    return round(RunDirectory(run_dir).counter("maml", "seconds"), 1)


def _timed(measure):
    started = time.time()
    result = measure()
    return {**result, "eval_seconds": round(time.time() - started, 1)}
