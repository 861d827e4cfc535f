"""What the two Table 1 scripts share: run a setting, merge its row into
results/<name>/metrics.json, write table.md and the PNGs."""
import dataclasses
import json
import os
import time

import click

from maml_tf import presets, reporting
from maml_tf.core.maml import TASK_PARALLELISM
from maml_tf.distribute import STRATEGIES
from maml_tf.experiments.runs import RunDirectoryMismatch

# Table 1 of the paper: accuracy (%) and 95% CI.
PAPER = {
    "omniglot": {"5way1shot": (98.7, 0.4), "5way5shot": (99.9, 0.1), "20way1shot": (95.8, 0.3),
                 "20way5shot": (98.9, 0.2), "5way1shot_fc": (89.7, 1.1), "5way5shot_fc": (97.5, 0.6)},
    "mini_imagenet": {"5way1shot": (48.70, 1.84), "5way5shot": (63.11, 0.92),
                      "5way1shot_fo": (48.07, 1.75), "5way5shot_fo": (63.15, 0.91)},
}


def options(table, default_run_root):
    """The click options both scripts take."""
    def decorate(fn):
        for option in reversed([
            click.option("--preset", "budget", type=click.Choice(sorted(presets.BUDGETS)), default="paper",
                         show_default=True, help="Budget (maml_tf/presets.py); the method is the paper's, except "
                              "'code': the authors' code's loss scale, layers, batch-norm handling and test steps."),
            click.option("--setting", "settings", multiple=True, type=click.Choice(sorted(table)),
                         help="Table 1 row(s) to run (repeatable); default: all."),
            click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                         help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets)."),
            click.option("--run-dir", type=click.Path(file_okay=False), default=None,
                         help=f"Checkpoints and logs, reused to resume (default {default_run_root}/<preset>)."),
            click.option("--out", type=click.Path(file_okay=False), default=None,
                         help="Where metrics.json, table.md and PNGs go."),
            click.option("--train/--no-train", default=True, show_default=True,
                         help="--no-train: evaluate the latest checkpoint of each setting as it is."),
            click.option("--time-limit", type=click.FloatRange(min=0), default=None,
                         help="Minutes of training per setting; then stop at a checkpoint and "
                              "evaluate what is there (run again to resume)."),
            click.option("--task-parallelism", type=click.Choice(TASK_PARALLELISM), default=None,
                         help="How a meta-batch's tasks run (speed and memory only; default: the "
                              "preset's, e.g. unrolled for 20-way 1-shot, which needs ~7 GB)."),
            click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
                         help="tf.distribute strategy for meta-training: mirrored = every local GPU, "
                              "multi-worker = the cluster in TF_CONFIG (same command on every machine)."),
            click.option("--verbose", type=click.IntRange(0, 2), default=2, show_default=True),
        ]):
            fn = option(fn)
        return fn
    return decorate


def run(name, table, budget, settings, data_dir, run_dir, out, train, time_limit, verbose,
        default_run_root, task_parallelism=None, strategy="default", data_note=None):
    """Train (resuming) and meta-test each setting; merge the rows into ``out``.

    ``data_note`` says what the data were when they are not the real dataset."""
    from maml_tf import distribute
    from maml_tf.experiments import classification
    from maml_tf.experiments.errors import TrainingDiverged

    strategy = _strategy(strategy)
    chosen = [presets.classification(table, setting, budget) for setting in settings or sorted(table)]
    try:  # before any training, so a bad meta-batch / replica pairing costs nothing
        for preset in chosen:
            distribute.check_meta_batch(preset.meta_batch_size, strategy)
    except ValueError as error:
        raise click.ClickException(str(error)) from None

    run_root = run_dir or os.path.join(default_run_root, budget)
    out = out or os.path.join("results", name + ("" if budget == "paper" else f"_{budget}"))
    metrics_path = os.path.join(out, "metrics.json")
    metrics = {"rows": []}
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
    for preset in chosen:
        setting = preset.setting
        if task_parallelism:
            preset = dataclasses.replace(preset, task_parallelism=task_parallelism)
        setting_dir = os.path.join(run_root, setting)
        click.echo(f"[{setting}] {preset.iterations:,} iterations, meta-batch {preset.meta_batch_size}, "
                   f"{preset.inner_steps} step(s) alpha {preset.inner_lr}; checkpoints in {setting_dir}")
        try:
            if train:
                limit = None if time_limit is None else 60 * time_limit
                maml, done = classification.train(preset, setting_dir, data_dir, verbose, time_limit=limit,
                                                  strategy=strategy)
            else:
                maml = classification.load_latest(preset, setting_dir)
                done = classification.completed_iterations(setting_dir)
            started = time.time()
            result = classification.evaluate(preset, maml, data_dir)
        except (FileNotFoundError, RunDirectoryMismatch, TrainingDiverged) as error:  # incl. DatasetNotFoundError
            raise click.ClickException(str(error)) from None
        paper, paper_ci = PAPER[preset.dataset].get(setting, (None, None))
        row = {
            "setting": setting, "method": "first-order MAML" if preset.first_order else "MAML",
            "accuracy": 100 * result["accuracy"], "ci95": 100 * result["ci95"],
            "paper": paper, "paper_ci95": paper_ci,
            "iterations": done, "budget_iterations": preset.iterations,
            "paper_iterations": presets.get(table, setting).iterations,
            "meta_batch_size": preset.meta_batch_size,
            "seconds_per_iteration": classification.seconds_per_iteration(setting_dir),
            "eval_seconds": round(time.time() - started, 1),
            "accuracy_per_step": [100 * a for a in result["accuracy_per_step"]],
            "ci95_per_step": [100 * c for c in result["ci95_per_step"]],
            "test_tasks": result["num_tasks"], "eval_inner_steps": preset.eval_inner_steps,
            "validation_curve": classification.validation_curve(setting_dir),
            "settings": {k: v for k, v in dataclasses.asdict(preset).items() if k != "name"},
            "preset": budget, "command": reporting.command(), "machine": reporting.machine(),
            "training_history": reporting.training_history(setting_dir),
        }
        row["seconds"] = (round(row["seconds_per_iteration"] * done, 1)
                          if row["seconds_per_iteration"] else None)
        metrics["rows"] = [r for r in metrics["rows"] if r["setting"] != setting] + [row]
        click.echo(f"[{setting}] {row['accuracy']:.2f} ± {row['ci95']:.2f}% after "
                   f"{preset.eval_inner_steps} steps ({done:,} iterations; paper {_paper(row)})")
        write(name, table, metrics, out, data_note)  # after every row: a later one may be interrupted
    click.echo(markdown(name, metrics))
    click.echo(f"wrote {out}/")
    return metrics


def _strategy(name):
    """The ``tf.distribute`` strategy called ``name``, or a clean click error."""
    from maml_tf import distribute
    try:
        return distribute.strategy(name)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def write(name, table, metrics, out, data_note):
    """metrics.json, table.md and accuracy.png of the rows so far."""
    order = list(table)
    metrics["rows"].sort(key=lambda r: order.index(r["setting"]))
    metrics.update({"name": name, "machine": reporting.machine(), "command": reporting.command(),
                    "data": data_note or "real"})
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), metrics)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(markdown(name, metrics))
    plot(metrics, os.path.join(out, "accuracy.png"))


def markdown(name, metrics):
    m = metrics["machine"]
    lines = [
        f"# Table 1, {name}: meta-test accuracy (%), mean ± 95% CI over fixed test tasks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, no GPU. Each row's commands are listed below the table. "
        "Rows trained for fewer iterations than the paper are marked in bold: an unfinished run "
        "(resumable: the same command continues from its checkpoint) or a reduced-budget preset.",
        "",
    ] + ([f"**Data: {metrics['data']}.** These numbers check the pipeline, not the paper.", ""]
         if metrics.get("data", "real") != "real" else []) + (
        ["Preset `code`: the authors' code where it departs from the paper's text: cross-entropy "
         "summed over a task's examples and divided by K (alpha acts on N times the mean loss's "
         "gradient), batch norm with an offset only (tf.contrib's default) and not adapted in the "
         "inner loop, the Omniglot conv head drawn from N(0, 1) and the FC net's kernels with std "
         "0.01, 10 steps at test (every step's accuracy is listed below).", ""]
        if any(r.get("preset") == "code" for r in metrics["rows"]) else []) + [
        "| setting | method | ours | paper | iterations (paper) | meta-batch | steps at test | test tasks | s / iteration |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in metrics["rows"]:
        budget = f"{r['iterations']:,} ({r['paper_iterations']:,})"
        if r["iterations"] < r["budget_iterations"]:
            budget = f"**{budget}, unfinished run**"
        elif r["iterations"] < r["paper_iterations"]:
            budget = f"**{budget}, reduced budget**"
        spi = f"{r['seconds_per_iteration']:.3f}" if r.get("seconds_per_iteration") else "—"
        lines.append(f"| {r['setting']} | {r['method']} | {r['accuracy']:.2f} ± {r['ci95']:.2f} | "
                     f"{_paper(r)} | {budget} | {r['meta_batch_size']} | "
                     f"{r['eval_inner_steps']} | {r['test_tasks']} | {spi} |")
    lines += first_order_comparison(metrics["rows"])
    lines += ["", "Accuracy after 0, 1, 2, ... inner steps at meta-test:", ""]
    for r in metrics["rows"]:
        lines.append(f"- {r['setting']} ({r['method']}): "
                     + ", ".join(f"{a:.1f}" for a in r["accuracy_per_step"]))
    lines += ["", "Commands: each row's evaluation, then the training runs behind its checkpoint."]
    for r in metrics["rows"]:
        lines += ["", f"{r['setting']} ({r['method']}), evaluated by `{r['command']}`:", ""]
        lines += reporting.history_lines(r.get("training_history", []), r["iterations"])
    return "\n".join(lines) + "\n"


def _paper(row):
    return "—" if row["paper"] is None else f"{row['paper']} ± {row['paper_ci95']}"


def first_order_comparison(rows):
    """Section 5.2: first-order MAML beside second order (the paper: similar accuracy,
    about 33% less computation). One line per setting run both ways."""
    by_setting = {r["setting"]: r for r in rows}
    pairs = [(by_setting[s[:-3]], r) for s, r in by_setting.items() if s.endswith("_fo") and s[:-3] in by_setting]
    if not pairs:
        return []
    lines = ["", "First versus second order (same data and test tasks; seconds per iteration are the "
             "median epoch of each run, which may have shared the machine with other work: the "
             "like-for-like time ratio, first and second order in alternating rounds of one process, "
             "is `benchmarks/bench_first_order.py`'s table in benchmarks/README.md):", "",
             "| setting | iterations | accuracy SO | accuracy FO | s / it. SO | s / it. FO | FO / SO time |",
             "|---|---|---|---|---|---|---|"]
    for so, fo in pairs:
        spi = [so.get("seconds_per_iteration"), fo.get("seconds_per_iteration")]
        ratio = f"{spi[1] / spi[0]:.2f}" if all(spi) else "—"
        lines.append(f"| {so['setting']} | {so['iterations']:,} / {fo['iterations']:,} | "
                     f"{so['accuracy']:.2f} ± {so['ci95']:.2f} | {fo['accuracy']:.2f} ± {fo['ci95']:.2f} | "
                     + " | ".join(f"{x:.3f}" if x else "—" for x in spi) + f" | {ratio} |")
    return lines


def plot(metrics, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for r in metrics["rows"]:
        label = f"{r['setting']} ({r['method']})"
        curve = r["validation_curve"]
        if curve:
            it = [c["iteration"] for c in curve]
            acc = np.array([100 * c["accuracy"] for c in curve])
            ci = np.array([100 * c["ci95"] for c in curve])
            line, = left.plot(it, acc, label=label)
            left.fill_between(it, acc - ci, acc + ci, color=line.get_color(), alpha=0.2)
        acc, ci = np.array(r["accuracy_per_step"]), np.array(r["ci95_per_step"])
        line, = right.plot(range(len(acc)), acc, "o-", ms=3, label=label)
        right.fill_between(range(len(acc)), acc - ci, acc + ci, color=line.get_color(), alpha=0.2)
        if r["paper"] is not None:
            right.axhline(r["paper"], color=line.get_color(), ls=":", lw=1)
    left.set(xlabel="meta-training iterations", ylabel="validation accuracy (%)",
             title="Validation tasks during meta-training")
    right.set(xlabel="inner gradient steps at meta-test", ylabel="test accuracy (%)",
              title="Test tasks (dotted: paper)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
