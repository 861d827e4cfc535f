"""Does first-order MAML still match second order with a smooth activation?

The paper (Section 5.2) found first order as accurate as second order and guessed why: ReLU
networks are almost linear locally, so the dropped second derivatives are nearly zero. SiLU's
second derivative is not zero. This study trains {ReLU, SiLU} x {first, second order} x seeds
on the sinusoid and on Omniglot 5-way 1-shot through the experiments' front door
(``registry.create``, one run directory per cell, so a stopped grid resumes), logs
:func:`maml_tf.evaluation.meta_gradient_terms` on one fixed meta-batch at every checkpoint,
meta-tests every cell on the same tasks, and measures the terms on MiniImagenet episodes.
"""
import dataclasses
import os

from maml_tf.studies import training_verbose

FIRST, SECOND = "fo", "so"
ORDERS = (SECOND, FIRST)
TERMS_LOG = "gradient_terms"  # <cell>/maml/gradient_terms.csv
TERM_FIELDS = ("iteration", "loss", "second_order_norm", "first_order_norm", "difference_norm",
               "relative_difference", "cosine", "inner_gradient_norm", "hvp_norm", "relative_hvp", "curvature")
HVP_PARTS = ("gauss_newton_norm", "network_curvature_norm")  # measured at the end, not logged
TERMS_SEED, TEST_SEED = 30_001, 30_002  # the fixed meta-batch of the terms, the fixed test tasks
MINI_CHECKPOINT = os.path.join("checkpoints", "table1_miniimagenet", "paper", "5way1shot")


@dataclasses.dataclass(frozen=True)
class Preset:
    """The study's budget. Sinusoid and Omniglot: the paper's settings (Section 5.1, 5.2)
    except the fields given here; every cell of a task has the same budget."""
    name: str
    seeds: tuple = (0, 1, 2)
    activations: tuple = ("relu", "silu")
    tasks: tuple = ("sinusoid", "omniglot")
    sinusoid: tuple = ()              # SinusoidPreset fields changed from the paper's
    sinusoid_eval_tasks: int = 600    # fixed test tasks (K = 10 support, 100 query points)
    omniglot: tuple = ()              # ClassificationPreset fields changed from 5way1shot paper
    omniglot_eval_tasks: int = 600
    mini_imagenet_batches: int = 0    # meta-batches of real MiniImagenet episodes for the terms (0: skip)
    mini_imagenet_checkpoint: str = MINI_CHECKPOINT

    def experiment_changes(self, task):
        return dict(self.sinusoid if task == "sinusoid" else self.omniglot)


PRESETS = {
    # The paper's settings except the budget, chosen for ~55 minutes on the 2-core machine
    # shared with two other studies and a background training (load ~10): sinusoid 20,000
    # iterations of meta-batch 25 (the paper: 70,000; 5.4 ms per iteration measured under that
    # load), Omniglot 500 iterations of meta-batch 8 (the paper: 60,000 of 32; a 20-iteration
    # probe at meta-batch 32 took 0.2-0.5 s per iteration).
    "full": Preset("full", sinusoid=(("iterations", 20_000),),
                   omniglot=(("iterations", 500), ("meta_batch_size", 8), ("steps_per_epoch", 100),
                             ("validation_tasks", 100)),
                   mini_imagenet_batches=5),
    "quick": Preset("quick", seeds=(0, 1), sinusoid=(("iterations", 5_000), ("steps_per_epoch", 500)),
                    omniglot=(("iterations", 100), ("meta_batch_size", 4), ("steps_per_epoch", 50),
                              ("validation_tasks", 40)),
                    sinusoid_eval_tasks=200, omniglot_eval_tasks=100),
    "smoke": Preset("smoke", seeds=(0, 1), sinusoid=(("iterations", 40), ("steps_per_epoch", 20),
                                                     ("eval_inner_steps", 2)),
                    omniglot=(("iterations", 4), ("meta_batch_size", 2), ("steps_per_epoch", 2),
                              ("validation_tasks", 4), ("eval_tasks", 4)),
                    sinusoid_eval_tasks=20, omniglot_eval_tasks=8),
}


def cells(preset):
    """(activation, order, seed) of every training run of one task, in training order."""
    return [(a, o, s) for s in preset.seeds for a in preset.activations for o in ORDERS]


def cell_name(activation, order, seed):
    return f"{activation}_{order}_seed{seed}"


def summary(metrics):
    """The README's line: first against second order per task and activation, from the answer."""
    comparisons = metrics["answer"]["comparisons"]
    budget = metrics["budget"]
    parts = []
    for task, name, fmt in (("sinusoid", "sinusoid MSE", "{:.3f}"), ("omniglot", "Omniglot 5-way 1-shot", "{:.1%}")):
        cells = [f"{c['activation']} " + fmt.format(c["first_order"]) + " vs " + fmt.format(c["second_order"])
                 for c in comparisons.get(task, {}).values()]
        if cells:
            parts.append(f"{name} (first vs second order) " + ", ".join(cells))
    every = [c for task in comparisons.values() for c in task.values()]
    worse = sum(c["first_order_worse"] for c in every)
    return ("**First order with a smooth activation** (`maml study first-order`; "
            f"{len(budget['seeds'])} seeds, budgets below the paper's): first order is behind second order in "
            f"{worse} of {len(every)} cells: " + "; ".join(parts) + ".")


def run(preset, run_dir, out, time_limit=None, verbose=1, echo=print):
    """Train the grid (resuming from ``run_dir``; training stops at the first checkpoint past
    ``time_limit`` minutes, and no new run starts after it), measure every trained cell on the
    same test tasks, measure the terms on MiniImagenet, write ``out``. Returns the metrics."""
    from maml_tf import reporting
    from maml_tf.experiments import base
    from maml_tf.studies import first_order_page
    if isinstance(preset, str):
        preset = PRESETS[preset]
    deadline = base.Deadline.of(time_limit)
    metrics = {"study": "first-order", "preset": preset.name, "budget": dataclasses.asdict(preset),
               "command": reporting.command(), "machine": reporting.machine(), "tasks": {}}
    for task in preset.tasks:
        metrics["tasks"][task] = train_and_measure(task, preset, os.path.join(run_dir, task), deadline,
                                                   verbose, echo)
    if preset.mini_imagenet_batches:
        metrics["mini_imagenet_terms"] = mini_imagenet_terms(preset, echo)
    metrics["answer"] = first_order_page.answer(metrics)
    first_order_page.write(metrics, out)
    echo(f"wrote {out}")
    return metrics


def create(task, preset, activation, order, seed, run_dir, verbose=0):
    """The experiment of one cell (``registry.create``: the paper's preset, the study's budget)."""
    from maml_tf.experiments import registry
    changes = {**preset.experiment_changes(task), "activation": activation, "first_order": order == FIRST,
               "seed": seed}
    if task == "sinusoid":
        return registry.create("sinusoid", "paper", run_dir=run_dir, methods=["maml"], verbose=verbose, **changes)
    return registry.create("omniglot", "paper", setting="5way1shot", run_dir=run_dir, verbose=verbose, **changes)


def terms_batch(task, config):
    """The one fixed training meta-batch the terms are measured on (the same in every cell)."""
    if task == "sinusoid":
        from maml_tf.experiments import sinusoid
        return sinusoid.task_distribution(config).sample(config.meta_batch_size, seed=[TERMS_SEED, 0])[0]
    from maml_tf.experiments import classification
    return classification.tasks(config, "train").sample(config.meta_batch_size, seed=[TERMS_SEED, 0])


def train_and_measure(task, preset, task_dir, deadline, verbose, echo):
    """Train every cell of ``task`` (resuming), then meta-test each on the same tasks."""
    import time
    cells_out, evaluators = {}, {}
    for activation, order, seed in cells(preset):
        name = cell_name(activation, order, seed)
        cell_dir = os.path.join(task_dir, name)
        experiment = create(task, preset, activation, order, seed, cell_dir, verbose=training_verbose(verbose))
        config = experiment.preset
        if not deadline.passed():
            started = time.time()
            log = gradient_terms_log(terms_batch(task, config), cell_dir, config.steps_per_epoch)
            experiment.train(time_limit=deadline, callbacks=[log])
            echo(f"{task} {name}: trained to {_iterations(cell_dir)}/{config.iterations} "
                 f"({time.time() - started:.0f} s)")
        if not _iterations(cell_dir):
            echo(f"{task} {name}: not trained (time limit)")
            continue
        cells_out[name] = {"activation": activation, "order": order, "seed": seed,
                           **measure(task, preset, experiment, cell_dir, evaluators)}
        result = cells_out[name]
        echo(f"{task} {name}: {result['metric']} {result['final']:.4f} +- {result['final_ci95']:.4f} "
             f"at {result['iterations']} iterations, {result['seconds_per_iteration']:.4f} s/it")
    return {"config": _config_of(task, preset), "cells": cells_out,
            "summary": summarize(cells_out, preset)}


def _config_of(task, preset):
    from maml_tf.experiments import registry
    config = registry.preset(task, "paper", "5way1shot" if task == "omniglot" else None)
    return dataclasses.asdict(dataclasses.replace(config, **preset.experiment_changes(task)))


def _iterations(cell_dir):
    from maml_tf.experiments.runs import RunDirectory
    return RunDirectory(cell_dir).iteration("maml")


def measure(task, preset, experiment, cell_dir, evaluators=None):
    """One cell's final test metric (95% CI over the fixed test tasks), curves and terms.

    ``evaluators`` (a dict kept across cells) holds one model per activation, into which each
    cell's weights are copied: its compiled meta-test is traced once, not once per cell (the
    XLA compile of the sinusoid's took 20-40 s on the loaded machine, the run 2 s).
    """
    from maml_tf import evaluation
    from maml_tf.experiments.runs import RunDirectory
    config = experiment.preset
    maml = experiment.learners()["maml"]
    if evaluators is not None:
        evaluator = evaluators.setdefault(config.activation, maml)
        evaluator.model.set_weights(maml.model.get_weights())
        maml = evaluator
    run = RunDirectory(cell_dir)
    iterations = run.iteration("maml")
    if task == "sinusoid":
        from maml_tf.experiments import sinusoid
        fixed = dataclasses.replace(config, seed=0, eval_tasks=preset.sinusoid_eval_tasks)
        episodes, _ = sinusoid.test_tasks(fixed, config.support_shots)  # K = 10, as trained
        result = evaluation.meta_test(maml, episodes, config.eval_inner_steps)["loss"]
        steps, metric = config.inner_steps, "mse"
        seconds = run.counter("maml", "seconds") / max(iterations, 1)
        curve = [{"iteration": (int(r["epoch"]) + 1) * config.steps_per_epoch, "loss": float(r["loss"])}
                 for r in _csv(run.log_path("maml"))]
    else:
        from maml_tf.experiments import classification
        distribution = classification.tasks(config, "test")
        result = classification.meta_test(maml, distribution, preset.omniglot_eval_tasks,
                                           config.eval_inner_steps, TEST_SEED)["accuracy"]
        steps, metric = config.eval_inner_steps, "accuracy"
        seconds = classification.seconds_per_iteration(cell_dir)
        losses = {(int(r["epoch"]) + 1) * config.steps_per_epoch: float(r["loss"]) for r in _csv(run.log_path("maml"))}
        curve = [{"iteration": int(r["iteration"]), "loss": losses.get(int(r["iteration"])),
                  "validation_accuracy": float(r["accuracy"])}
                 for r in classification.validation_curve(cell_dir)]
    terms = _csv(run.log_path("maml", TERMS_LOG))
    from maml_tf.evaluation import meta_gradient_terms
    final_terms = meta_gradient_terms(maml, terms_batch(task, config))  # with the parts of H g
    return {"final_terms": final_terms,"metric": metric, "steps": steps, "final": float(result["mean"][steps]),
            "final_ci95": float(result["ci95"][steps]), "per_step": [float(v) for v in result["mean"]],
            "per_step_ci95": [float(v) for v in result["ci95"]], "num_test_tasks": int(len(result["per_task"])),
            "iterations": int(iterations), "seconds_per_iteration": float(seconds or 0.0), "curve": curve,
            "terms": [{k: float(v) for k, v in r.items()} for r in _by_iteration(terms)]}


def summarize(cells_out, preset):
    """Per (activation, order): mean over seeds and its 95% CI (Student t), seconds per
    iteration, and the terms of the last checkpoint averaged over seeds."""
    import numpy as np

    from maml_tf.studies.first_order_page import network_share, t_ci95
    summary = {}
    for activation in preset.activations:
        for order in ORDERS:
            runs = [c for c in cells_out.values() if c["activation"] == activation and c["order"] == order]
            if not runs:
                continue
            finals = [c["final"] for c in runs]
            last_terms = [c["terms"][-1] for c in runs if c["terms"]]
            final = [c["final_terms"] for c in runs]
            summary[f"{activation}_{order}"] = {
                "activation": activation, "order": order, "seeds": [c["seed"] for c in runs],
                "finals": finals, "mean": float(np.mean(finals)), "ci95": t_ci95(finals),
                "test_ci95_mean": float(np.mean([c["final_ci95"] for c in runs])),
                "iterations": [c["iterations"] for c in runs],
                "seconds_per_iteration": float(np.median([c["seconds_per_iteration"] for c in runs])),
                "final_terms": {k: float(np.mean([t[k] for t in last_terms])) for k in TERM_FIELDS}
                if last_terms else {},
                "network_curvature_share": float(np.mean([network_share(t) for t in final]))}
    return summary


def gradient_terms_log(episodes, cell_dir, steps_per_epoch):
    """A Keras callback: :func:`~maml_tf.evaluation.meta_gradient_terms` of the MAML being
    trained on ``episodes`` at the start (iteration 0) and after every epoch (checkpoint),
    appended to ``<cell_dir>/maml/gradient_terms.csv`` (rows past the resumed checkpoint
    are dropped first, as the run's other logs)."""
    import csv

    import keras

    from maml_tf.evaluation import meta_gradient_terms
    from maml_tf.experiments.runs import RunDirectory
    run = RunDirectory(cell_dir)
    path = run.log_path("maml", TERMS_LOG)

    class GradientTerms(keras.callbacks.Callback):
        def _write(self, iteration):
            terms = meta_gradient_terms(self.model, episodes)
            new = not os.path.exists(path)
            with open(path, "a", newline="") as f:
                writer = csv.DictWriter(f, TERM_FIELDS, extrasaction="ignore", lineterminator="\n")
                if new:
                    writer.writeheader()
                writer.writerow({**terms, "iteration": iteration})

        def on_train_begin(self, logs=None):
            done = run.iteration("maml")
            run.trim_log("maml", "iteration", done, TERMS_LOG)
            if done == 0:
                self._write(0)

        def on_epoch_end(self, epoch, logs=None):
            self._write((epoch + 1) * steps_per_epoch)

    return GradientTerms()


def mini_imagenet_terms(preset, echo):
    """The terms on real MiniImagenet 5-way 1-shot training meta-batches: the committed
    meta-trained ReLU checkpoint (copied first: a training may write there) and ReLU and
    SiLU networks at initialisation (no SiLU MiniImagenet training in this study)."""
    import shutil
    import tempfile

    import keras
    import numpy as np

    from maml_tf.evaluation import meta_gradient_terms
    from maml_tf.experiments import classification, registry
    from maml_tf.experiments.runs import RunDirectory
    out = {"batches": preset.mini_imagenet_batches, "split": "train", "models": {}}
    config = registry.preset("mini_imagenet", "paper", "5way1shot")
    models = {}
    source = preset.mini_imagenet_checkpoint
    if os.path.exists(os.path.join(source, "run.json")):
        copy = os.path.join(tempfile.mkdtemp(prefix="fo_mini_"), "5way1shot")
        shutil.copytree(source, copy)
        experiment = registry.open(copy)
        config = experiment.preset
        models["relu_trained"] = (experiment.learners()["maml"], RunDirectory(copy).iteration("maml"))
    else:
        echo(f"no MiniImagenet checkpoint at {source}: initialisation only")
    for activation in ("relu", "silu"):
        keras.utils.set_random_seed(0)
        models[f"{activation}_init"] = (classification.build_maml(
            dataclasses.replace(config, activation=activation)), 0)
    distribution = classification.tasks(config, "train")
    batches = [distribution.sample(config.meta_batch_size, seed=[TERMS_SEED, b])
               for b in range(preset.mini_imagenet_batches)]
    for name, (maml, iteration) in models.items():
        rows = [meta_gradient_terms(maml, episodes) for episodes in batches]
        out["models"][name] = {"iteration": int(iteration), "activation": name.split("_")[0],
                               **{k: float(np.mean([r[k] for r in rows]))
                                  for k in TERM_FIELDS + HVP_PARTS if k != "iteration"},
                               "relative_difference_per_batch": [r["relative_difference"] for r in rows]}
        echo(f"mini_imagenet {name} (iteration {iteration}): relative difference "
             f"{out['models'][name]['relative_difference']:.3f}, cosine {out['models'][name]['cosine']:.4f}")
    out["meta_batch_size"], out["inner_steps"] = config.meta_batch_size, config.inner_steps
    return out


def _csv(path):
    import csv
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _by_iteration(rows):
    """Rows by iteration, the last of duplicates (a resumed epoch) kept."""
    keyed = {int(float(r["iteration"])): r for r in rows}
    return [keyed[i] for i in sorted(keyed)]
