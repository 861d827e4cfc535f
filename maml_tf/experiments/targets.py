"""The reproduce targets (``maml reproduce TARGET`` and ``reproduce/*.py``): train the paper's
experiments through the :class:`~maml_tf.experiments.base.Experiment` interface, meta-test
them and write results/<name>/ (metrics.json, table.md, PNGs). ``echo`` prints progress."""
import os
import time

from maml_tf import reporting
from maml_tf.experiments import registry
from maml_tf.experiments.registry import UsageProblem

RESULTS = "results"
PATH_TASKS = 4  # test goals drawn in fig4_paths.png
STEP_SIZE_METHODS = ("maml", "pretrained", "random")  # the oracle is reported without fine-tuning


def _out(out, name, preset):
    return out or os.path.join(RESULTS, registry.result_name(name, preset))


def _no_setting(target, setting):
    if setting:
        raise UsageProblem(f"{target} has no --setting.", "--setting")


def fig3(target, preset="paper", setting=(), run_dir=None, out=None, time_limit=None, until=None, strategy=None,
         data_dir=None, verbose=2, echo=print):
    """Figures 2 and 3: MAML, pretrained and oracle on sinusoids."""
    from maml_tf.experiments import sinusoid
    from maml_tf.report import plots, render

    _no_setting(target, setting)
    experiment = registry.create("sinusoid", preset, run_dir=run_dir, verbose=verbose)
    config = experiment.preset
    echo(f"training {', '.join(experiment.methods)}: {config.iterations} iterations, meta-batch "
         f"{config.meta_batch_size} (checkpoints in {experiment.run_dir})")
    progress = experiment.train(until, time_limit, strategy)
    _say_unfinished(progress, echo)
    echo(f"meta-test: {config.eval_tasks} tasks per K in {config.eval_shots}, {config.eval_inner_steps} steps")
    started = time.time()
    learners = experiment.learners()
    rows = experiment.evaluate(learners)
    examples = sinusoid.example_fits(config, learners)
    # training (possibly in earlier, resumed runs) + this meta-test
    total = round(sum(row["budget"]["seconds"] for row in rows if row["setting"] == rows[0]["setting"])
                  + time.time() - started, 1)
    out = _out(out, "fig3_sinusoid", preset)
    echo(render.write(experiment.document(rows, seconds=total), out))
    plots.sinusoid_examples(examples, os.path.join(out, "fig2_examples.png"))
    echo(f"wrote {out}/")


def table1(target, preset="paper", setting=(), run_dir=None, out=None, time_limit=None, until=None, strategy=None,
           data_dir=None, verbose=2, echo=print, train=True, task_parallelism=None, synthetic=False):
    """Table 1 rows (``setting``: some, default all): train each (resuming), meta-test it and
    merge its row into results/<name>/metrics.json, written after every row."""
    from maml_tf.experiments import base
    from maml_tf.report import render, schema, tables

    experiment = registry.TARGETS[target].experiments[0]
    name = registry.EXPERIMENTS[experiment].result_name
    note = None
    run_root = run_dir or registry.default_run_dir(experiment, preset)
    if synthetic:
        data_dir, run_root, name, note = _synthetic_mini_imagenet(preset, run_dir)
    order = registry.settings(experiment)
    if task_parallelism:
        from maml_tf.core.meta_gradient import TASK_PARALLELISM
        if task_parallelism not in TASK_PARALLELISM:
            raise UsageProblem(f"choose one of {', '.join(TASK_PARALLELISM)}.", "--task-parallelism")
    changes = {"task_parallelism": task_parallelism} if task_parallelism else {}
    runs = [registry.create(experiment, preset, s, run_dir=os.path.join(run_root, s), data_dir=data_dir,
                            verbose=verbose, **changes) for s in (setting or order)]
    chosen = base.resolve_strategy(strategy)
    for run in runs:  # before any training, so a bad meta-batch / replica pairing costs nothing
        base.resolve_strategy(chosen, run.preset.meta_batch_size)
        run.result_name = name
    out = _out(out, name, preset)
    metrics_path = os.path.join(out, "metrics.json")
    try:
        doc = schema.load(metrics_path) if os.path.exists(metrics_path) else runs[0].document([])
    except schema.SchemaError as error:
        raise UsageProblem(f"{error} Or choose another --out.", "--out") from None
    for run in runs:
        config = run.preset
        echo(f"[{config.setting}] {config.iterations:,} iterations, meta-batch {config.meta_batch_size}, "
             f"{config.inner_steps} step(s) alpha {config.inner_lr}; checkpoints in {run.run_dir}")
        if train:
            run.train(until, time_limit, chosen)
        else:
            run.check()
        [row] = _meta_test(run, echo)
        keep_row_machines(doc)
        doc["rows"] = sorted(schema.merge_rows(doc, [row]), key=lambda r: order.index(r["setting"]))
        doc.update(machine=reporting.machine(), command=reporting.command(), data=note or "real")
        echo(f"[{config.setting}] {tables.mean_ci(row, config.eval_inner_steps, 2)}% after "
             f"{config.eval_inner_steps} steps ({row['budget']['iterations']:,} iterations; paper "
             f"{tables.paper_accuracy(row)})")
        markdown = render.write(doc, out)  # after every row: a later one may be interrupted
    echo(markdown)
    echo(f"wrote {out}/")
    return doc


def _meta_test(run, echo):
    """``run``'s meta-test rows: the ones stored in its run directory when they are of its
    latest checkpoint and settings, else a new meta-test, stored there for the next time."""
    stored = run.stored_evaluation()
    if stored:
        echo(f"[{run.preset.setting}] reusing the meta-test stored in {run.metrics_path} (same checkpoint and settings)")
        return stored
    echo(f"[{run.preset.setting}] meta-test: {run.preset.eval_tasks} tasks, {run.preset.curve_steps} inner steps")
    return run.evaluate_and_store()


def keep_row_machines(doc):
    """Give ``doc``'s rows that name no machine (older results) the page's, before a new
    row replaces the page's machine with its own."""
    for row in doc["rows"]:
        row["machine"] = row.get("machine") or doc.get("machine")


def _synthetic_mini_imagenet(preset, run_dir):
    """Generated MiniImagenet-like data (checks the pipeline, not the paper): its TFDS folder,
    run root, results name and the note the results carry."""
    from maml_tf.datasets import mini_imagenet, synthetic as generated

    name = "table1_miniimagenet_synthetic"
    data = os.path.join("runs", name)  # generated once, reused by every preset
    source = os.path.join(data, "source")
    if not os.path.isdir(os.path.join(source, "images")):
        generated.write_mini_imagenet_like(source)
    note = ("synthetic, generated by maml_tf.datasets.synthetic.write_mini_imagenet_like "
            "(64/16/20 classes x 20 images, 84x84): it checks the pipeline, not the paper; "
            "the rows on the real images are results/table1_miniimagenet")
    return (mini_imagenet.prepare(source, os.path.join(data, "tfds")), run_dir or registry.default_run_dir(name, preset),
            name, note)


def rl(target, preset="paper", setting=(), run_dir=None, out=None, time_limit=None, until=None, strategy=None,
       data_dir=None, verbose=2, echo=print, sampling_workers=None, methods=()):
    """Figures 4 and 5: MAML-TRPO and its baselines in one environment (fig5: ``setting``, the
    task), trained under one time limit, meta-tested on fixed tasks. ``sampling_workers``:
    processes stepping the environments (default: the preset's); ``methods``: some (default all)."""
    from maml_tf.experiments import rl as experiments_rl
    from maml_tf.report import plots, render, tables

    env = _environment(target, setting)
    experiment = registry.create(env, preset, run_dir=run_dir, methods=methods or None, verbose=verbose,
                                 **({"sampling_workers": sampling_workers} if sampling_workers else {}))
    config = experiment.preset
    trained = ", ".join(m for m in experiment.methods if m in experiments_rl.TRAINED) or "nothing to train"
    echo(f"{trained}: {config.iterations} iterations of {config.meta_batch_size} tasks x "
         f"{config.episodes_per_task} trajectories; checkpoints in {experiment.run_dir}")
    progress = experiment.train(until, time_limit, strategy, callbacks=[print_progress(config, echo)] if verbose else ())
    _say_unfinished(progress, echo)
    step_sizes = {method: list(config.step_sizes(method)) for method in experiment.methods}
    echo(f"meta-test: {config.eval_tasks} tasks x {config.eval_episodes_per_task} trajectories, "
         f"0..{config.eval_inner_steps} steps of sizes {tables.format_step_sizes(step_sizes)}")
    learners = experiment.learners()
    doc = experiment.document(experiment.evaluate(learners))
    out = _out(out, env, preset)
    echo(render.write(doc, out))
    drawn_methods = [m for m in ("maml", "pretrained") if m in learners]
    if env == "navigation" and drawn_methods:
        goals = experiments_rl.test_tasks(config)[:PATH_TASKS]
        drawn = {m: experiments_rl.paths(config, learners[m], goals, config.step_sizes(m), seed=config.seed)
                 for m in drawn_methods}
        iterations = {r["method"]: r["budget"]["iterations"] for r in doc["rows"]}
        plots.navigation_paths(drawn, [g["goal"] for g in goals], config.eval_inner_steps, iterations,
                               os.path.join(out, "fig4_paths.png"))
    echo(f"wrote {out}/")
    return doc


def step_sizes(target, preset="paper", setting=(), run_dir=None, out=None, time_limit=None, until=None,
               strategy=None, data_dir=None, verbose=2, echo=print,
               first=(0.05, 0.1, 0.2, 0.5, 1.0), later=(0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5)):
    """Figure 4's step sizes: trains nothing; grid-searches the first and later step size on
    validation goals with fig4's checkpoints, reports the best pair on the test goals."""
    from maml_tf.experiments import rl as experiments_rl
    from maml_tf.report import plots, records, render

    _no_setting(target, setting)
    if time_limit is not None or until is not None:
        raise UsageProblem(f"{target} trains nothing: it takes no --time-limit or --until.")
    experiment = registry.create("navigation", preset, run_dir=run_dir, methods=STEP_SIZE_METHODS)
    config, run_dir = experiment.preset, experiment.run_dir
    missing = [m for m in experiments_rl.TRAINED if m in STEP_SIZE_METHODS
               and not experiments_rl.has_checkpoint(run_dir, m)]
    if missing:
        raise UsageProblem(f"No checkpoint of {', '.join(missing)} in {run_dir}: train first with "
                           f"`maml reproduce fig4 --preset {preset}`.")
    learners = experiment.learners()
    validation, test = experiments_rl.validation_tasks(config), experiments_rl.test_tasks(config)
    pairs = [(a, b) for a in first for b in later]
    started = time.time()
    grid = {}
    for method, learner in learners.items():
        grid[method] = {}
        for a, b in pairs:
            returns = experiments_rl.meta_test(config, learner, validation, (a, b))
            grid[method][plots.grid_key(a, b)] = returns["mean"]
            echo(f"[{method}] validation, steps {a:g} then {b:g}: " + " / ".join(f"{r:.1f}" for r in returns["mean"]))
    selected = {m: max(pairs, key=lambda p: plots.grid_score(grid[m][plots.grid_key(*p)])) for m in learners}
    name = registry.TARGETS[target].result_name
    rows = []
    for method, learner in learners.items():
        iterations = learner.iteration if method in experiments_rl.TRAINED else None
        for sizes, picked in ((config.step_sizes(method), False), (selected[method], True)):
            result = experiments_rl.meta_test(config, learner, test, sizes)
            rows.append(records.rl(name, config, experiment.paper_preset, method, result, sizes, iterations,
                                   summary=picked, step_sizes_selected=picked))
    search = {"checkpoints": run_dir, "candidates": {"first": list(first), "later": list(later)},
              "selection": "best mean return over steps 1..3 on the validation goals",
              "validation_tasks": len(validation), "episodes_per_task": config.eval_episodes_per_task,
              "validation_grid": grid}
    experiment.result_name = name
    doc = experiment.document(rows, seconds=round(time.time() - started, 1), step_size_search=search)
    for key in ("environment", "eval_seconds", "paper_budget"):  # fig4's fields, not this search's
        doc.pop(key, None)
    out = _out(out, name, preset)
    echo(render.write(doc, out))
    echo(f"wrote {out}/")
    return doc


def _environment(target, setting):
    """The RL target's environment: navigation for fig4, the one ``--setting`` (task) for fig5."""
    choices = registry.TARGETS[target].experiments
    if len(choices) == 1:
        _no_setting(target, setting)
        return choices[0]
    if len(setting) != 1 or setting[0] not in choices:
        raise UsageProblem(f"{target} runs one task: pass --task (or --setting) with one of {', '.join(choices)}.",
                           "--task")
    return setting[0]


def _say_unfinished(progress, echo):
    unfinished = [m for m, done in progress.iterations.items() if done < progress.target]
    if unfinished:
        echo(f"{', '.join(unfinished)} stopped before {progress.target} iterations (time limit or --until); "
             "run again to resume.")


def print_progress(preset, echo):
    """``f(method, stats)`` printing one line per RL iteration."""
    def report(method, stats):
        if "post_update_return" in stats:
            returns = (f"post-update return {stats['post_update_return']:.1f} "
                       f"(pre-update {stats['pre_update_return']:.1f})")
        else:
            returns = f"return {stats['return']:.1f}"
        echo(f"[{method}] iteration {stats['iteration']}/{preset.iterations}: {returns}, {stats['seconds']:.1f} s")
    return report
