"""Result records (:mod:`maml_tf.report.schema`) from what the experiments' evaluations
return: one builder per experiment kind, shared by the reproduce scripts and ``maml``."""
import dataclasses

from maml_tf import paper, presets
from maml_tf.report import schema

# What an RL preset may make smaller than the paper's (Section 5.3): compared field by field.
RL_BUDGET_FIELDS = ("iterations", "meta_batch_size", "episodes_per_task", "eval_tasks", "eval_episodes_per_task")
RL_EVAL_FIELDS = ("eval_tasks", "eval_episodes_per_task")


def settings(preset):
    """A preset's hyperparameters, as a record keeps them (without its name)."""
    return {k: v for k, v in dataclasses.asdict(preset).items() if k != "name"}


def classification(experiment, preset, budget_name, result, iterations, seconds_per_iteration=None,
                   validation_curve=(), training_history=(), **extra):
    """A Table 1 row from ``classification.evaluate``'s ``result`` (fractions, shown in %)
    after ``iterations`` meta-iterations; ``validation_curve``: ``classification.validation_curve``'s rows."""
    curve = {"name": "validation accuracy", "unit": "%",
             "points": [[int(c["iteration"]), 100 * c["accuracy"], 100 * c["ci95"]] for c in validation_curve],
             "seconds": [c["seconds"] for c in validation_curve]}  # of each epoch, its validation included
    table = presets.OMNIGLOT if preset.dataset == "omniglot" else presets.MINI_IMAGENET
    # A row with another activation (the first-order study's) has the paper budget of its ReLU row.
    paper_iterations = presets.get(table, dataclasses.replace(preset, activation="relu").setting).iterations
    seconds = round(seconds_per_iteration * iterations, 1) if seconds_per_iteration else None
    return schema.record(
        experiment, "classification", budget_name, preset.setting,
        "first-order MAML" if preset.first_order else "MAML",
        schema.budget(iterations, preset.iterations, paper_iterations, preset.meta_batch_size,
                      ["iterations"] if iterations < paper_iterations else [],
                      seconds=seconds, seconds_per_iteration=seconds_per_iteration),
        schema.metric("classification", [100 * a for a in result["accuracy_per_step"]],
                      [100 * c for c in result["ci95_per_step"]], result["num_tasks"], preset.eval_inner_steps),
        paper.table1(preset.dataset, preset.setting, preset.eval_inner_steps),
        training_history=training_history, curve=curve, settings=settings(preset), **extra)


def sinusoid(experiment, preset, stats, seconds=None, diverged_above=None, iterations=None, **extra):
    """Figure 3's rows, one per K and method, from ``sinusoid.meta_test``'s ``stats``;
    ``seconds``: training seconds per method; ``iterations`` trained (default: the preset's)."""
    iterations = preset.iterations if iterations is None else iterations
    paper_iterations = presets.get(presets.SINUSOID, "paper").iterations
    rows = []
    for shots in preset.eval_shots:
        for method in stats["curves"]:
            key = f"K{shots}"
            optional = {"median": stats["median"][method][key]} if "median" in stats else {}
            if "diverged" in stats:
                optional.update(diverged=stats["diverged"][method][key], diverged_above=diverged_above)
            mean = stats["curves"][method][key]
            reference = paper.sinusoid(method, shots)
            rows.append(schema.record(
                experiment, "regression", preset.name, key, method,
                schema.budget(iterations, preset.iterations, paper_iterations, preset.meta_batch_size,
                              ["iterations"] if iterations < paper_iterations else [],
                              seconds=(seconds or {}).get(method)),
                schema.metric("regression", mean, stats["ci95"][method][key], preset.eval_tasks,
                              min(paper.SINUSOID_STEPS[-1], len(mean) - 1), **optional),
                reference, settings=settings(preset), summary=reference is not None, training_history=None,
                **extra))
    return rows


def rl(experiment, preset, paper_preset, method, result, step_sizes, iterations=None, env_steps=None,
       seconds=None, curve=(), training_history=None, summary=True, pre_update_curve=(), **extra):
    """A Figure 4 / 5 row of ``method`` from ``rl.meta_test``'s ``result`` with ``step_sizes``
    at test; ``iterations`` None for the untrained random initialisation; ``env_steps`` and
    ``seconds`` of training, when the row's run trained; ``pre_update_curve``: MAML's
    pre-update training return per iteration, kept in the curve as ``pre_update_points``."""
    fields = RL_EVAL_FIELDS if iterations is None else RL_BUDGET_FIELDS
    smaller = [k for k in fields if getattr(preset, k) < getattr(paper_preset, k)]
    headline = 0 if method == "oracle" else preset.eval_inner_steps  # Section 5.3: the oracle is not fine-tuned
    optional = {"per_task": result["per_task"]} if "per_task" in result else {}
    return schema.record(
        experiment, "rl", preset.name, preset.env, method,
        schema.budget(iterations, preset.iterations, paper_preset.iterations, preset.meta_batch_size, smaller,
                      **{k: v for k, v in (("env_steps", env_steps), ("seconds", seconds)) if v is not None}),
        schema.metric("rl", result["mean"], result["ci95"], preset.eval_tasks, headline, **optional),
        paper.rl_returns(preset.env, method), training_history=training_history,
        curve={"name": "post-update training return" if method == "maml" else "training return",
               "unit": "", "points": [[int(i), r, None] for i, r in curve],
               **({"pre_update_points": [[int(i), r, None] for i, r in pre_update_curve]} if pre_update_curve else {})}
        if iterations is not None else None,
        settings=settings(preset), summary=summary, test_step_sizes=list(step_sizes), **extra)
