"""The precision study's results page: metrics.json, table.md (ending in the answer, generated
from the numbers) and validation_curves.png. No TensorFlow."""
import os

import numpy as np

from maml_tf import reporting
from maml_tf.evaluation.protocol import mean_ci95
from maml_tf.report.plots import _finish, _pyplot  # the results pages' one plotting style

TITLES = {"omniglot": "Omniglot 5-way 1-shot", "mini_imagenet": "MiniImagenet 5-way 1-shot"}
PAPER = {"omniglot": (60_000, 32), "mini_imagenet": (60_000, 4)}  # iterations, meta-batch
FILES = ("metrics.json", "table.md", "validation_curves.png")


def compare(sides):
    """mixed_bfloat16 against float32 on the same test tasks: the difference of the means and
    its paired 95% CI (per-task differences), and whether bf16 lies inside float32's CI.
    None until both sides are meta-tested."""
    f32, bf16 = (sides.get(p, {}).get("test") for p in ("float32", "mixed_bfloat16"))
    if not f32 or not bf16 or f32["num_tasks"] != bf16["num_tasks"]:
        return None
    difference, ci = mean_ci95(np.asarray(bf16["per_task"]) - np.asarray(f32["per_task"]))
    ratio = None
    if sides["float32"].get("seconds_per_iteration") and sides["mixed_bfloat16"].get("seconds_per_iteration"):
        ratio = sides["mixed_bfloat16"]["seconds_per_iteration"] / sides["float32"]["seconds_per_iteration"]
    return {"difference": float(difference), "difference_ci95": float(ci),
            "within_float32_ci": bool(abs(bf16["accuracy"] - f32["accuracy"]) <= f32["ci95"]),
            "difference_ci_contains_zero": bool(abs(difference) <= ci),
            "training_seconds_ratio": ratio}


def answer(metrics):
    """Plain-words answer per task, from the numbers."""
    text = []
    for task, result in metrics["tasks"].items():
        title = TITLES.get(task, task)
        c, sides = result.get("comparison"), result.get("sides", {})
        if c:
            f32, bf16 = sides["float32"]["test"], sides["mixed_bfloat16"]["test"]
            verdict = ("inside float32's 95% CI" if c["within_float32_ci"] else "OUTSIDE float32's 95% CI")
            text.append(f"{title}: mixed_bfloat16 {_pct(bf16['accuracy'])} +- {_pct(bf16['ci95'])} vs float32 "
                        f"{_pct(f32['accuracy'])} +- {_pct(f32['ci95'])} on the same {f32['num_tasks']} test tasks "
                        f"after {sides['float32']['iterations']:,} iterations each: difference "
                        f"{100 * c['difference']:+.2f} +- {100 * c['difference_ci95']:.2f} points (paired), "
                        f"{verdict}.")
        elif sides:
            stood = ", ".join(f"{p} {s['iterations']:,}" for p, s in sides.items())
            text.append(f"{title}: not both sides at the budget yet ({stood} iterations); no accuracy comparison.")
        timing = result.get("timing")
        if timing:
            text.append(f"{title}: a meta-iteration takes {timing['ratio']:.2f}x float32's time in mixed_bfloat16 "
                        f"(both timed alternately in one process, load {timing['load_average'][0]:.1f}).")
        dep = result.get("departure", {}).get("models", {})
        if dep:
            text.append(f"{title}: the bf16 meta-gradient departs from float32's by "
                        + "; ".join(f"{_pct(m['bf16']['relative_l2'], 2)} relative L2, cosine {m['bf16']['cosine']:.4f} "
                                    f"({name}, iteration {m['iteration']:,})" for name, m in dep.items())
                        + ", against " + "; ".join(f"{_pct(m['rounded_weights']['relative_l2'], 1)} for float32 "
                                                   "itself at the weights rounded to bfloat16, "
                                                   f"{_pct(m['first_order']['relative_l2'], 1)} for first order and "
                                                   f"{_pct(m['noise_other_batch']['relative_l2'], 0)} for another "
                                                   f"meta-batch ({name})" for name, m in dep.items()) + ".")
    return {"text": text}


def summary(metrics):
    """The README's line: per task, accuracy (bf16 vs float32), the time ratio and the
    trained weights' meta-gradient departure."""
    parts = []
    for task, result in metrics["tasks"].items():
        c, sides = result.get("comparison"), result.get("sides", {})
        numbers = [f"{_pct(sides['mixed_bfloat16']['test']['accuracy'])} vs "
                   f"{_pct(sides['float32']['test']['accuracy'])} ({100 * c['difference']:+.1f} +- "
                   f"{100 * c['difference_ci95']:.1f} points)" if c else "accuracy not measured yet"]
        if result.get("timing"):
            numbers.append(f"{result['timing']['ratio']:.2f}x the time")
        trained = result.get("departure", {}).get("models", {}).get("trained")
        if trained:
            numbers.append(f"meta-gradient {_pct(trained['bf16']['relative_l2'], 1)} from float32's")
        parts.append(f"{TITLES.get(task, task)} " + ", ".join(numbers))
    return ("**Mixed bfloat16** (`maml study precision`, budgets below the paper's): bf16 vs float32 "
            + "; ".join(parts) + ".")


def _pct(value, digits=2):
    return f"{100 * value:.{digits}f}%"


def table(metrics):
    machine = metrics["machine"]
    native = ("native bfloat16: " + ", ".join(machine.get("bfloat16_flags", []))
              if machine.get("bfloat16_native") else "bfloat16 emulated (no amx_bf16 / avx512_bf16)")
    lines = ["# Mixed bfloat16 against float32 for meta-training", "",
             f"Command: `{reporting.as_typed(metrics['command'])}` (preset `{metrics['preset']}`). Machine: {machine['cpu']}, "
             f"{machine['cores']} cores, {native}, TensorFlow {machine['tensorflow']}; the 2 cores were shared "
             "with other runs, so seconds are noisy: the in-process timing alternates the precisions.", "",
             "Both precisions: the paper preset (same seed, so the same initial weights and task stream), "
             "trained to the same budget, meta-tested on the same fixed test tasks; mixed_bfloat16 keeps the "
             "weights, inner updates and losses in float32 and runs the layers in bfloat16.", ""]
    for task, result in metrics["tasks"].items():
        config = result["config"]
        paper = PAPER.get(task)
        lines += [f"## {TITLES.get(task, task)}", "",
                  f"Budget: {config['iterations']:,} iterations of meta-batch {config['meta_batch_size']}, "
                  f"{config['inner_steps']} inner step(s) of {config['inner_lr']}, validation every "
                  f"{config['steps_per_epoch']} on {config['validation_tasks']} tasks"
                  + (f" (the paper: {paper[0]:,} iterations of meta-batch {paper[1]})" if paper else "") + ".", ""]
        sides = result.get("sides", {})
        if sides:
            lines += ["| precision | iterations | test accuracy +- 95% CI | s / iteration (training) | run |",
                      "|---|---|---|---|---|"]
            for precision, side in sides.items():
                test = side.get("test")
                acc = (f"{_pct(test['accuracy'])} +- {_pct(test['ci95'])} ({test['num_tasks']} tasks, "
                       f"{test['steps']} steps)" if test else "not meta-tested (below the budget)")
                seconds = f"{side['seconds_per_iteration']:.3f}" if side.get("seconds_per_iteration") else "—"
                origin = (f"reused: a copy of `{side['reused_from']}`, trained before this study under other load"
                          if side.get("reused_from") else "trained by this study")
                lines.append(f"| {precision} | {side['iterations']:,} | {acc} | {seconds} | {origin} |")
            c = result.get("comparison")
            if c:
                lines += ["", f"Difference (bf16 - float32) {100 * c['difference']:+.2f} +- "
                              f"{100 * c['difference_ci95']:.2f} points, paired over the same test tasks."]
            lines.append("")
        else:
            lines += ["Accuracy: not measured yet (neither precision trained to the budget by this study; "
                      "the same command resumes it).", ""]
        timing = result.get("timing")
        if timing:
            lines += [f"In-process timing (initial weights, one meta-batch, {timing['steps']} meta-iterations per "
                      f"precision in alternating rounds, load {timing['load_average'][0]:.1f}): float32 "
                      f"{timing['float32']:.3f} s, mixed_bfloat16 {timing['mixed_bfloat16']:.3f} s per "
                      f"meta-iteration, ratio {timing['ratio']:.2f}.", ""]
        dep = result.get("departure")
        if dep and dep["models"]:
            lines += [f"Meta-gradient departure on {dep['batches']} fixed training meta-batches of "
                      f"{dep['meta_batch_size']} tasks (mean): the same weights in both precisions. Scales of "
                      "comparison, each against the same float32 meta-gradient: float32 itself at the weights "
                      "rounded to bfloat16 (a 2^-8 relative change: how sensitive the meta-gradient is to a "
                      "change of bfloat16's size), first order, and float32 on another meta-batch.", "",
                      "| weights | bf16 relative L2 | bf16 cosine | rounded weights relative L2 / cosine | first order "
                      "relative L2 | other meta-batch relative L2 / cosine |", "|---|---|---|---|---|---|"]
            for name, m in dep["models"].items():
                lines.append(f"| {name} (iteration {m['iteration']:,}) | {_pct(m['bf16']['relative_l2'])} | "
                             f"{m['bf16']['cosine']:.5f} | {_pct(m['rounded_weights']['relative_l2'])} / "
                             f"{m['rounded_weights']['cosine']:.4f} | {_pct(m['first_order']['relative_l2'])} | "
                             f"{_pct(m['noise_other_batch']['relative_l2'])} / {m['noise_other_batch']['cosine']:.3f} |")
            names = list(dep["models"])
            lines += ["", "Per layer (bf16 against float32, relative L2 / cosine):", "",
                      "| layer | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
            for layer in dep["models"][names[0]]["bf16_per_layer"]:
                cells = [dep["models"][n]["bf16_per_layer"].get(layer) for n in names]
                lines.append(f"| {layer} | " + " | ".join(f"{_pct(c['relative_l2'])} / {c['cosine']:.4f}" if c else "—"
                                                          for c in cells) + " |")
            lines.append("")
    if "answer" in metrics:
        lines += ["## Answer", ""] + [f"- {t}" for t in metrics["answer"]["text"]] + [""]
    return "\n".join(lines)


def curves(metrics, path):
    """Validation accuracy against meta-iteration, float32 and mixed_bfloat16, per task."""
    plt = _pyplot()
    tasks = [t for t, r in metrics["tasks"].items() if r.get("sides")]
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(5.5 * max(len(tasks), 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for precision, side in metrics["tasks"][task]["sides"].items():
            rows = side["curve"]
            if rows:
                x = [r["iteration"] for r in rows]
                mean, ci = np.array([r["accuracy"] for r in rows]), np.array([r["ci95"] for r in rows])
                line, = ax.plot(x, mean, "o-", label=precision + (" (reused run)" if side.get("reused_from") else ""))
                ax.fill_between(x, mean - ci, mean + ci, color=line.get_color(), alpha=0.2)
        ax.set_title(TITLES.get(task, task))
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel("validation accuracy")
    _finish(fig, list(axes[0]), path)


def write(metrics, out):
    """metrics.json, table.md and the PNG into ``out``."""
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), metrics)
    with reporting.atomic_file(os.path.join(out, "table.md")) as f:
        f.write(table(metrics))
    if any(r.get("sides") for r in metrics["tasks"].values()):
        curves(metrics, os.path.join(out, "validation_curves.png"))
