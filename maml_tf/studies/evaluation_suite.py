"""Study "evaluation-suite": MAML against the pretrained baseline (trained on
all tasks jointly, then fine-tuned) and training from scratch (a random initialisation fine-tuned),
on sinusoid regression and Omniglot 5-way classification, along four axes: out of distribution,
adaptation speed (0..20 steps at three step sizes), sample efficiency (K at test) and robustness
(a spoiled support set). Every number is a mean with a 95% CI over fixed test tasks, identical
for every method.

Models: sinusoid MAML meta-trained with K = 5 and K = 10 (the paper's settings), the pretrained
regressor of the K = 10 run; Omniglot MAML 5-way 1-shot (a committed run) and 5-way 5-shot (trained
here at a smaller budget), the pretrained classifier of :mod:`maml_tf.experiments.pretrained`.
Trainings go through ``registry.create`` into ``run_dir`` subfolders: an interrupted study resumes.
"""
import dataclasses
import os
import time

from maml_tf.studies import training_verbose

AXES = ("out_of_distribution", "adaptation", "sample_efficiency", "robustness")
DOMAINS = ("sinusoid", "omniglot")
COMMITTED_ONE_SHOT = os.path.join("checkpoints", "table1_omniglot", "paper", "5way1shot")


@dataclasses.dataclass(frozen=True)
class Preset:
    """Budgets and grids of one run of the study (``full``: the results page's)."""
    name: str
    # Sinusoid: the registry preset of the MAML and pretrained trainings, K of each MAML model
    # (the first with the pretrained baseline and the one the other axes score).
    sinusoid_budget: str = "paper"
    sinusoid_train_shots: tuple = (10, 5)
    sinusoid_tasks: int = 600
    sinusoid_steps: int = 10                # inner steps at test, every method (Figure 3: 10)
    sinusoid_shots: tuple = (1, 2, 5, 10, 20)
    sinusoid_input_noise: tuple = (0.0, 0.25, 0.5, 1.0)
    # Omniglot 5-way: the 1-shot MAML run to read (None: train one at omniglot_budget), the
    # 5-shot one trained here, the pretrained classifier.
    omniglot: bool = True
    omniglot_one_shot_run: str = COMMITTED_ONE_SHOT
    omniglot_budget: str = "paper"
    five_shot_iterations: int = 400
    five_shot_meta_batch_size: int = 16
    five_shot_steps_per_epoch: int = 200
    pretrained_iterations: int = 1_500
    pretrained_batch_size: int = 128
    pretrained_steps_per_epoch: int = 500
    omniglot_tasks: int = 100
    omniglot_steps: int = 10                # inner steps at test, every method (Table 1 curves: 10)
    omniglot_query_shots: int = 5           # query images per class (20 drawings per character)
    omniglot_shots: tuple = (1, 2, 5, 10, 15)  # <= 20 - query_shots
    omniglot_input_noise: tuple = (0.0, 0.1, 0.2, 0.3)
    # The baselines' inner step size: the best of these on validation tasks (MAML keeps its alpha).
    sinusoid_step_sizes: tuple = (0.003, 0.01, 0.03, 0.1)
    omniglot_step_sizes: tuple = (0.1, 0.4, 1.0, 2.0, 5.0)
    selection_tasks: int = 50
    # Every domain.
    adaptation_steps: int = 20
    step_size_factors: tuple = (0.5, 1.0, 2.0)  # x the training step size
    label_noise: tuple = (0.0, 0.1, 0.2, 0.3, 0.4)
    seed: int = 0


PRESETS = {
    "full": Preset("full"),
    # Minutes: 5,000-iteration sinusoid models, a 12,500-iteration Omniglot 1-shot checkpoint
    # and small 5-shot / pretrained budgets, fewer test tasks.
    "quick": Preset("quick", sinusoid_budget="quick", sinusoid_tasks=200, five_shot_iterations=250,
                    pretrained_iterations=1_000, omniglot_tasks=60),
    # Seconds, for tests: tiny trainings (the Omniglot 1-shot one included), few tasks.
    "smoke": Preset("smoke", sinusoid_budget="smoke", sinusoid_tasks=20, sinusoid_steps=2, omniglot_one_shot_run=None,
                    omniglot_budget="smoke", five_shot_iterations=20, five_shot_meta_batch_size=2,
                    five_shot_steps_per_epoch=10, pretrained_iterations=20, pretrained_batch_size=16,
                    pretrained_steps_per_epoch=10, omniglot_tasks=6, omniglot_steps=2, adaptation_steps=3,
                    sinusoid_shots=(1, 5), omniglot_shots=(1, 5), label_noise=(0.0, 0.4),
                    sinusoid_input_noise=(0.0, 1.0), omniglot_input_noise=(0.0, 0.3),
                    sinusoid_step_sizes=(0.01, 0.03), omniglot_step_sizes=(0.4, 1.0), selection_tasks=4),
}
METHODS = ("maml", "pretrained", "scratch")
VALIDATION_SEED = 40_000  # step-size selection tasks (sinusoid; Omniglot also uses its validation split)


def _chosen(selection):
    return ", ".join(f"{method} {result['chosen']:g}" for method, result in selection.items())


def select_step_size(learner, tasks, candidates, steps, num_tasks):
    """Set ``learner``'s inner step size to the candidate with the best metric after ``steps``
    steps on ``num_tasks`` validation tasks (accuracy when measured, else lowest loss; a
    diverged candidate never wins). Returns ``{"chosen": lr, "scores": {lr: value}}``."""
    import numpy as np

    from maml_tf import evaluation
    from maml_tf.evaluation.adaptation import set_inner_step_size
    scores = {}
    for lr in candidates:
        curve = evaluation.adaptation_curve(learner, tasks, steps, inner_lr=lr, num_tasks=num_tasks,
                                            seed=VALIDATION_SEED)
        scores[lr] = curve["accuracy"]["mean"][-1] if "accuracy" in curve else -curve["loss"]["mean"][-1]
    chosen = max(candidates, key=lambda lr: scores[lr] if np.isfinite(scores[lr]) else -np.inf)
    set_inner_step_size(learner, chosen)
    return {"chosen": float(chosen), "scores": {f"{lr:g}": float(v) for lr, v in scores.items()}}


def summary(metrics):
    """The README's line: per domain, in how many settings of out of distribution, sample
    efficiency and robustness MAML's CI is wholly ahead of both baselines' (or behind one)."""
    from maml_tf.studies import evaluation_suite_report as report
    parts = []
    for name, domain in metrics["domains"].items():
        pick = lambda result: report._values(result, domain)  # noqa: E731
        ood, rob, eff = domain["out_of_distribution"], domain["robustness"], domain["sample_efficiency"]
        baselines = [m for m in ood if m != "maml"]
        verdicts = report.compare(domain, pick(ood["maml"]), [pick(ood[b]) for b in baselines])
        verdicts += report.compare(domain, pick(eff[domain["main_maml"]]), [pick(eff[b]) for b in baselines])
        for axis in rob["maml"]:
            verdicts += report.compare(domain, pick(rob["maml"][axis]), [pick(rob[b][axis]) for b in baselines])
        maml, best = pick(ood["maml"])[0][0], report._best(domain, [pick(ood[b]) for b in baselines], 0)
        unit = "%" if domain["metric"] == "accuracy" else " MSE"
        label = {"sinusoid": "sinusoid", "omniglot": "Omniglot 5-way 1-shot"}.get(name, name)
        parts.append(f"{label} {report._short(maml)}{unit} against {report._short(best)}{unit} for the best baseline "
                     f"in distribution, ahead of both in {verdicts.count('better')} of {len(verdicts)} shifted, "
                     f"fewer-or-more-shot and noisy settings, behind one in {verdicts.count('worse')}")
    return ("**Beyond accuracy** (`maml study evaluation-suite`; MAML against a pretrained network fine-tuned "
            "and training from scratch): " + "; ".join(parts) + ".")


def run(preset, run_dir, out, time_limit=None, verbose=1, echo=print):
    """Train what is missing (resuming from ``run_dir``; ``time_limit`` minutes of training),
    measure every axis and write ``out``/metrics.json, table.md and one PNG per axis."""
    from maml_tf import reporting
    from maml_tf.experiments import base
    from maml_tf.studies import evaluation_suite_report as report

    p = PRESETS[preset] if isinstance(preset, str) else preset
    deadline = base.Deadline.of(time_limit)
    started = time.time()
    # Every training first (the time limit is for them), then every measurement.
    measure = {"sinusoid": _sinusoid(p, run_dir, deadline, verbose, echo)}
    if p.omniglot:
        measure["omniglot"] = _omniglot(p, run_dir, deadline, verbose, echo)
    domains = {name: measured() for name, measured in measure.items()}
    doc = {"study": "evaluation-suite", "preset": dataclasses.asdict(p), "command": reporting.command(),
           "machine": reporting.machine(), "seconds": round(time.time() - started, 1),
           "complete": all(d["models_complete"] for d in domains.values()), "domains": domains}
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), doc)
    report.write(doc, out)
    echo(f"wrote {out}/metrics.json, table.md and {len(report.PLOTS)} PNGs")
    return doc


def _complete(models):
    """Whether every trained model reached its budget (False: the time limit stopped one)."""
    return all(m.get("iterations", 0) >= m.get("target", 0) for m in models.values())


# ----------------------------------------------------------------------------- sinusoid
def _sinusoid(p, run_dir, deadline, verbose, echo):
    """Train the sinusoid models; returns the function that measures them."""
    import keras

    from maml_tf import evaluation
    from maml_tf.experiments import registry, sinusoid

    learners, models = {}, {}
    for i, shots in enumerate(p.sinusoid_train_shots):
        methods = ("maml", "pretrained") if i == 0 else ("maml",)
        experiment = registry.create("sinusoid", p.sinusoid_budget, run_dir=os.path.join(run_dir, f"sinusoid_K{shots}"),
                                     methods=methods, verbose=training_verbose(verbose), support_shots=shots)
        tick = time.time()
        progress = experiment.train(time_limit=deadline)
        echo(f"sinusoid K={shots}: {', '.join(f'{m} {n:,}' for m, n in progress.iterations.items())} of "
             f"{progress.target:,} iterations ({time.time() - tick:.0f} s)")
        trained = experiment.learners()
        learners[f"maml_K{shots}"] = trained["maml"]
        models[f"maml_K{shots}"] = {"iterations": progress.iterations["maml"], "target": progress.target,
                                    "meta_batch_size": experiment.preset.meta_batch_size, "support_shots": shots}
        if "pretrained" in trained:
            learners["pretrained"] = trained["pretrained"]
            models["pretrained"] = {"iterations": progress.iterations["pretrained"], "target": progress.target,
                                    "trained_with_points_per_task": shots + experiment.preset.query_shots}
        preset = experiment.preset
    keras.utils.set_random_seed(p.seed)
    learners["scratch"] = sinusoid.build_maml(preset)  # a fresh random initialisation
    models["scratch"] = {"iterations": 0}
    main = f"maml_K{p.sinusoid_train_shots[0]}"
    tasks = sinusoid.task_distribution(preset, shots=p.sinusoid_train_shots[0], query=preset.eval_query_points)
    for learner in learners.values():  # XLA's compile, per step count and step size, outlasts these one-off runs
        learner.compile(optimizer=learner.optimizer, loss="mse", jit_compile=False)

    def measured():
        scored = {"maml": learners[main], "pretrained": learners["pretrained"], "scratch": learners["scratch"]}
        selection = {m: select_step_size(scored[m], tasks, p.sinusoid_step_sizes, p.sinusoid_steps, p.selection_tasks)
                     for m in ("pretrained", "scratch")}
        echo(f"sinusoid baselines' step sizes: {_chosen(selection)}")
        common = dict(steps=p.sinusoid_steps, num_tasks=p.sinusoid_tasks)
        axes = _measure(p, echo, "sinusoid", scored, tasks, evaluation.sinusoid_shifts(tasks), p.sinusoid_shots,
                        {**learners, **scored}, dict(input_noise=p.sinusoid_input_noise), common)
        return {"models": models, "models_complete": _complete(models),
                "main_maml": main, "inner_lr": {m: float(scored[m].inner_rule.learning_rate) for m in scored},
                "step_size_selection": selection, "steps": p.sinusoid_steps,
                "num_tasks": p.sinusoid_tasks, "support_shots": tasks.support_shots, "query_points": tasks.query_shots,
                "metric": "loss", **axes}

    return measured


# ----------------------------------------------------------------------------- omniglot
def _omniglot(p, run_dir, deadline, verbose, echo):
    """Train the Omniglot models; returns the function that measures them."""
    import keras

    from maml_tf import baselines, evaluation
    from maml_tf.experiments import classification, pretrained, registry
    from maml_tf.tasks import FewShotTasks

    models, learners = {}, {}
    # 1-shot MAML: the committed run (read, never written) or a run trained here.
    if p.omniglot_one_shot_run:
        one = registry.open(p.omniglot_one_shot_run)
    else:
        one = registry.create("omniglot", p.omniglot_budget, setting="5way1shot",
                              run_dir=os.path.join(run_dir, "omniglot_5way1shot"), verbose=training_verbose(verbose))
        one.train(time_limit=deadline)
    learners["maml_K1"] = one.learners()["maml"]
    models["maml_K1"] = {"run_dir": p.omniglot_one_shot_run or os.path.join(run_dir, "omniglot_5way1shot"),
                         "iterations": classification.completed_iterations(one.run_dir),
                         "paper_iterations": 60_000, "meta_batch_size": one.preset.meta_batch_size}
    echo(f"omniglot 5-way 1-shot MAML: {models['maml_K1']['iterations']:,} iterations ({models['maml_K1']['run_dir']})")
    # 5-shot MAML at the preset's budget.
    five = registry.create("omniglot", p.omniglot_budget, setting="5way5shot",
                           run_dir=os.path.join(run_dir, "omniglot_5way5shot"), verbose=training_verbose(verbose),
                           iterations=p.five_shot_iterations, meta_batch_size=p.five_shot_meta_batch_size,
                           steps_per_epoch=p.five_shot_steps_per_epoch,
                           validation_tasks=min(50, one.preset.validation_tasks))
    tick = time.time()
    progress = five.train(time_limit=deadline)
    done = progress.iterations["maml"]
    echo(f"omniglot 5-way 5-shot MAML: {done:,} of {p.five_shot_iterations:,} iterations ({time.time() - tick:.0f} s)")
    learners["maml_K5"] = five.learners()["maml"]
    models["maml_K5"] = {"iterations": done, "target": p.five_shot_iterations, "paper_iterations": 60_000,
                         "meta_batch_size": p.five_shot_meta_batch_size, "paper_meta_batch_size": 32}
    # The pretrained classifier over every training class x rotation.
    preset = one.preset
    tick = time.time()
    classifier, done = pretrained.train(preset, os.path.join(run_dir, "omniglot_pretrained"), p.pretrained_iterations,
                                        p.pretrained_batch_size, p.pretrained_steps_per_epoch, deadline=deadline,
                                        verbose=training_verbose(verbose))
    echo(f"omniglot pretrained classifier: {done:,} of {p.pretrained_iterations:,} iterations "
         f"({time.time() - tick:.0f} s)")
    models["pretrained"] = {"iterations": done, "target": p.pretrained_iterations,
                            "batch_size": p.pretrained_batch_size,
                            "classes": int(classifier.output_shape[-1]), "fine_tuned": "new zero 5-way head only"}
    learners["pretrained"] = pretrained.fine_tuner(preset, classifier, preset.inner_lr, p.omniglot_steps)
    keras.utils.set_random_seed(p.seed)
    learners["scratch"] = baselines.fine_tuner(
        classification.build_model(preset), preset.inner_lr, p.omniglot_steps, adapt="all",
        batch_norm=preset.batch_norm,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    models["scratch"] = {"iterations": 0}
    images = classification.load_split(preset, "test")
    tasks = FewShotTasks(images, preset.ways, 1, p.omniglot_query_shots, rotate=preset.rotate)

    def measured():
        scored = {"maml": learners["maml_K1"], "pretrained": learners["pretrained"], "scratch": learners["scratch"]}
        validation = FewShotTasks(classification.load_split(preset, "validation"), preset.ways, 1,
                                  p.omniglot_query_shots, rotate=preset.rotate)
        selection = {m: select_step_size(scored[m], validation, p.omniglot_step_sizes, p.omniglot_steps,
                                         p.selection_tasks) for m in ("pretrained", "scratch")}
        echo(f"omniglot baselines' step sizes: {_chosen(selection)}")
        common = dict(steps=p.omniglot_steps, num_tasks=p.omniglot_tasks)
        axes = _measure(p, echo, "omniglot", scored, tasks, evaluation.image_shifts(tasks), p.omniglot_shots,
                        {**learners, **scored}, dict(input_noise=p.omniglot_input_noise, input_range=(0.0, 1.0),
                                                     num_classes=preset.ways), common)
        return {"models": models, "models_complete": _complete(models),
                "main_maml": "maml_K1", "inner_lr": {m: float(scored[m].inner_rule.learning_rate) for m in scored},
                "step_size_selection": selection,
                "steps": p.omniglot_steps, "num_tasks": p.omniglot_tasks, "ways": preset.ways, "support_shots": 1,
                "query_shots": p.omniglot_query_shots, "metric": "accuracy", **axes}

    return measured


# ----------------------------------------------------------------------------- the four axes
def _measure(p, echo, domain, scored, tasks, shifts, shots, efficiency_learners, robustness_options, common):
    """The four axes for ``scored`` (method -> learner); sample efficiency also for every MAML
    model of ``efficiency_learners``."""
    from maml_tf import evaluation

    def timed(what, fn):
        tick = time.time()
        result = fn()
        echo(f"{domain} {what} ({time.time() - tick:.0f} s)")
        return result

    out = {axis: {} for axis in AXES}
    for method, learner in scored.items():
        out["out_of_distribution"][method] = timed(
            f"out of distribution, {method}", lambda: evaluation.out_of_distribution(learner, shifts, **common))
        base_lr = learner.inner_rule.learning_rate
        out["adaptation"][method] = {
            f"x{factor:g}": timed(f"adaptation at {factor:g} x alpha, {method}", lambda: evaluation.adaptation_curve(
                learner, tasks, p.adaptation_steps, inner_lr=factor * base_lr, num_tasks=common["num_tasks"]))
            for factor in p.step_size_factors}
        out["robustness"][method] = timed(f"robustness, {method}", lambda: evaluation.robustness(
            learner, tasks, label_noise=p.label_noise, **robustness_options, **common))
    for method, learner in efficiency_learners.items():
        if method == "maml":  # the main MAML model is already among maml_K*
            continue
        out["sample_efficiency"][method] = timed(
            f"sample efficiency, {method}", lambda: evaluation.sample_efficiency(learner, tasks, shots, **common))
    return out
