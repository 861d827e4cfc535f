"""The first-order study's results page: metrics.json, table.md (ending in the answer,
generated from the numbers) and the PNGs. No TensorFlow."""
import json
import math
import os

import numpy as np

from maml_tf import reporting
from maml_tf.report.plots import _finish, _pyplot  # the results pages' one plotting style

# Student t 0.975 quantiles by degrees of freedom: few seeds need t, not the normal 1.96.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
TASK_TITLES = {"sinusoid": "Sinusoid regression (K = 10)", "omniglot": "Omniglot 5-way 1-shot (conv4)"}
FILES = ("metrics.json", "table.md", "curves.png", "terms.png")


def t_ci95(values):
    """Half-width of the Student-t 95% confidence interval of the mean of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        return 0.0
    return float(_T975.get(n - 1, 1.96) * values.std(ddof=1) / np.sqrt(n))


def _overlap(a, b):
    return abs(a["mean"] - b["mean"]) <= a["ci95"] + b["ci95"]


def compare(summary, activation, metric):
    """First against second order for one activation: difference of the seed means (FO - SO),
    whether FO is worse, and whether the 95% CIs over seeds overlap. None if a cell is missing."""
    so, fo = summary.get(f"{activation}_so"), summary.get(f"{activation}_fo")
    if not so or not fo:
        return None
    difference = fo["mean"] - so["mean"]
    # Every first-order seed worse than every second-order one: under no difference, all
    # orderings of the pooled seeds are equally likely, so this happens with p = 1 / C(n+m, n).
    worse = (min(fo["finals"]) > max(so["finals"]) if metric == "mse" else max(fo["finals"]) < min(so["finals"]))
    return {"activation": activation, "second_order": so["mean"], "second_order_ci95": so["ci95"],
            "first_order": fo["mean"], "first_order_ci95": fo["ci95"], "difference": difference,
            "relative_difference": difference / so["mean"] if so["mean"] else 0.0,
            "first_order_worse": bool(difference > 0 if metric == "mse" else difference < 0),
            "cis_overlap": bool(_overlap(so, fo)), "seeds": len(so["finals"]),
            "every_seed_worse": bool(worse),
            "ordering_p": 1.0 / math.comb(len(fo["finals"]) + len(so["finals"]), len(so["finals"]))}


def matches(c):
    """Whether first order matches second order: the CIs over seeds overlap and the seeds
    are not all ordered against first order."""
    return c["cis_overlap"] and not c["every_seed_worse"]


def answer(metrics):
    """Per task and activation, the comparison (for metrics.json) and the plain-words answer."""
    out = {"comparisons": {}, "text": []}
    for task, result in metrics["tasks"].items():
        cells = list(result["cells"].values())
        if not cells:
            continue
        metric = cells[0]["metric"]
        out["comparisons"][task] = {}
        for activation in metrics["budget"]["activations"]:
            c = compare(result["summary"], activation, metric)
            if c is None:
                continue
            out["comparisons"][task][activation] = c
            unit = "MSE" if metric == "mse" else "accuracy"
            fmt = (lambda v: f"{v:.3f}") if metric == "mse" else (lambda v: f"{100 * v:.1f}%")
            diff = (f"{c['difference']:+.3f} ({100 * c['relative_difference']:+.0f}% of second order)"
                    if metric == "mse" else f"{100 * c['difference']:+.1f} points")
            if not c["cis_overlap"]:
                verdict = (f"the 95% CIs over seeds do not overlap: first order is "
                           f"{'worse' if c['first_order_worse'] else 'better'}")
            elif c["every_seed_worse"]:
                verdict = (f"the 95% CIs over {c['seeds']} seeds overlap, but every first-order seed is worse "
                           f"than every second-order seed (one-sided ordering p = {c['ordering_p']:.2f})")
            else:
                verdict = "the 95% CIs over seeds overlap: first order matches second order within the noise"
            terms = result["summary"].get(f"{activation}_so", {}).get("final_terms", {})
            dropped = (f"; at the end of second-order training the dropped term is "
                       f"{100 * terms['relative_difference']:.1f}% of the meta-gradient "
                       f"(cosine {terms['cosine']:.3f})") if terms else ""
            out["text"].append(
                f"{TASK_TITLES.get(task, task)}, {activation}: {unit} first order {fmt(c['first_order'])} "
                f"+- {fmt(c['first_order_ci95'])} vs second order {fmt(c['second_order'])} "
                f"+- {fmt(c['second_order_ci95'])} ({c['seeds']} seeds), difference {diff}; {verdict}{dropped}.")
    for task, by_activation in out["comparisons"].items():
        if "relu" in by_activation and len(by_activation) > 1:
            relu = by_activation["relu"]
            metric = next(iter(metrics["tasks"][task]["cells"].values()))["metric"]
            show = (lambda c: f"{c['difference']:+.3f} +- {c['first_order_ci95'] + c['second_order_ci95']:.3f}") \
                if metric == "mse" else \
                (lambda c: f"{100 * c['difference']:+.1f} +- {100 * (c['first_order_ci95'] + c['second_order_ci95']):.1f} points")
            others = "; ".join(f"{a} {show(c)}" for a, c in by_activation.items() if a != "relu")
            bigger = [a for a, c in by_activation.items() if a != "relu"
                      and abs(c["difference"]) - abs(relu["difference"]) > c["first_order_ci95"] + c["second_order_ci95"]
                      + relu["first_order_ci95"] + relu["second_order_ci95"]]
            out["text"].append(
                f"{TASK_TITLES.get(task, task)}: the first-order gap (first minus second order) is {others} against "
                f"relu {show(relu)} (+- the summed CIs); "
                + (f"larger with {', '.join(bigger)} beyond the noise." if bigger else
                   "not larger with the smooth activation beyond the noise."))
    for task, result in metrics["tasks"].items():
        final = {a: result["summary"].get(f"{a}_so", {}).get("final_terms") for a in metrics["budget"]["activations"]}
        shares = {a: np.mean([network_share(c["final_terms"]) for c in result["cells"].values()
                              if c.get("activation") == a and c.get("order") == "so" and "final_terms" in c] or [np.nan])
                  for a in metrics["budget"]["activations"]}
        if all(final.values()) and final:
            out["text"].append(
                f"{TASK_TITLES.get(task, task)}, why: the dropped term is not small with ReLU either; at the end of "
                "second-order training ||g_SO - g_FO|| / ||g_SO|| is "
                + ", ".join(f"{100 * t['relative_difference']:.0f}% ({a})" for a, t in final.items())
                + "; of the inner loss's curvature along its gradient, the network's own second derivatives make "
                + ", ".join(f"{100 * v:.0f}% ({a})" for a, v in shares.items())
                + ", the rest is the loss's Gauss-Newton part J^T H_loss J, which no activation removes.")
    verdicts = []
    for task, by_activation in out["comparisons"].items():
        for activation, c in by_activation.items():
            if activation != "relu":
                verdicts.append(f"{'yes' if matches(c) else 'no'} on {task}")
    if verdicts:
        out["text"].insert(0, "Does first order still match second order with a smooth activation? "
                           + ", ".join(verdicts) + " (match = the 95% CIs over seeds overlap and the "
                           "first-order seeds are not all worse).")
    for task, result in metrics["tasks"].items():
        expected = len(metrics["budget"]["activations"]) * 2 * len(metrics["budget"]["seeds"])
        short = [name for name, c in result["cells"].items() if c["iterations"] < result["config"]["iterations"]]
        if len(result["cells"]) < expected or short:
            out["text"].insert(0, f"PARTIAL ({task}): {len(result['cells'])} of {expected} cells measured"
                               + (f", {len(short)} short of the budget ({', '.join(short)})" if short else "")
                               + "; run the same command again to finish the grid.")
    mini = metrics.get("mini_imagenet_terms")
    if mini and mini.get("models"):
        parts = [f"{name.replace('_', ' ')} (iteration {m['iteration']}): {100 * m['relative_difference']:.1f}%, "
                 f"cosine {m['cosine']:.3f}" for name, m in mini["models"].items()]
        out["text"].append("MiniImagenet 5-way 1-shot, dropped term ||g_SO - g_FO|| / ||g_SO|| on "
                           f"{mini['batches']} real training meta-batches of {mini['meta_batch_size']} tasks: "
                           + "; ".join(parts) + " (terms only: no MiniImagenet training grid in this study).")
    return out


def rewrite(out):
    """Regenerate the answer, table.md and PNGs of ``out`` from its metrics.json (no measuring)."""
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    metrics["answer"] = answer(metrics)
    write(metrics, out)
    return metrics


def write(metrics, out):
    """metrics.json, table.md and the PNGs of ``metrics`` into ``out``."""
    os.makedirs(out, exist_ok=True)
    reporting.write_json(os.path.join(out, "metrics.json"), metrics)
    with reporting.atomic_file(os.path.join(out, "table.md")) as f:
        f.write(table(metrics))
    curves(metrics, os.path.join(out, "curves.png"))
    terms_plot(metrics, os.path.join(out, "terms.png"))


def network_share(terms):
    """The network's own curvature against the Gauss-Newton part of ||H g||:
    ||(H - G) g|| / (||G g|| + ||(H - G) g||), in [0, 1] (the two parts may partly cancel)."""
    total = terms.get("gauss_newton_norm", 0.0) + terms.get("network_curvature_norm", 0.0)
    return terms.get("network_curvature_norm", 0.0) / total if total > 0 else 0.0


def _fmt(metric, value):
    return f"{value:.4f}" if metric == "mse" else f"{100 * value:.2f}%"


def table(metrics):
    """The results page (Markdown)."""
    budget, machine = metrics["budget"], metrics["machine"]
    lines = ["# First-order MAML with a smooth activation", "",
             f"Command: `{reporting.as_typed(metrics['command'])}` (preset `{metrics['preset']}`). Machine: {machine['cpu']}, "
             f"{machine['cores']} cores, TensorFlow {machine['tensorflow']}; shared the 2 cores with other "
             "runs, so seconds per iteration are noisy.", "",
             f"Grid: activations {', '.join(budget['activations'])} x first / second order x seeds "
             f"{', '.join(map(str, budget['seeds']))}; every cell of a task has the same budget and is scored "
             "on the same fixed test tasks. Mean over seeds +- Student-t 95% CI over seeds; per seed +- the 95% "
             "CI over test tasks.", ""]
    for task, result in metrics["tasks"].items():
        config = result["config"]
        paper = {"sinusoid": (70_000, 25), "omniglot": (60_000, 32)}[task]
        smaller = (config["iterations"], config["meta_batch_size"]) != paper
        cells = list(result["cells"].values())
        lines += [f"## {TASK_TITLES.get(task, task)}", "",
                  f"Budget: {config['iterations']:,} iterations, meta-batch {config['meta_batch_size']}, "
                  f"{config['inner_steps']} inner step(s) of {config['inner_lr']}, outer Adam {config['outer_lr']}"
                  + (f" (SMALLER than the paper's {paper[0]:,} iterations of meta-batch {paper[1]})" if smaller
                     else " (the paper's)") + "."]
        if not cells:
            lines += ["", "No cell trained.", ""]
            continue
        metric, steps, n_test = cells[0]["metric"], cells[0]["steps"], cells[0]["num_test_tasks"]
        what = (f"MSE after {steps} step(s), K = 10, {n_test} test tasks" if metric == "mse"
                else f"accuracy after {steps} steps, {n_test} test tasks")
        lines += [f"Metric: {what}.", "",
                  "| activation | order | mean over seeds +- 95% CI | per seed (+- 95% CI over test tasks) | "
                  "s / iteration | iterations | dropped term at the end (rel. norm, cosine, ||Hg||/||g||) | "
                  "network share of ||Hg|| |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, s in result["summary"].items():
            seeds = ", ".join(f"{_fmt(metric, c['final'])} +- {_fmt(metric, c['final_ci95'])}"
                              for c in cells if f"{c['activation']}_{c['order']}" == key)
            t = s["final_terms"]
            share = np.mean([network_share(c["final_terms"]) for c in cells
                             if f"{c['activation']}_{c['order']}" == key and "final_terms" in c] or [0.0])
            term = (f"{100 * t['relative_difference']:.1f}%, {t['cosine']:.4f}, {t['relative_hvp']:.2f}"
                    if t else "")
            lines.append(f"| {s['activation']} | {'first' if s['order'] == 'fo' else 'second'} | "
                         f"{_fmt(metric, s['mean'])} +- {_fmt(metric, s['ci95'])} | {seeds} | "
                         f"{s['seconds_per_iteration']:.4f} | {', '.join(map(str, sorted(set(s['iterations']))))} | {term} | "
                         f"{100 * share:.0f}% |")
        lines += ["", "Network share of ||Hg||: ||(H - G) g|| / (||G g|| + ||(H - G) g||) at the final weights, mean "
                  "over seeds, G the "
                  "Gauss-Newton part J^T H_loss J (there whatever the activation), H - G the part from the "
                  "network's own second derivatives (for ReLU: products of weights across layers; with batch "
                  "norm also its normalisation, a smooth nonlinearity).",
                  "", "The dropped term along training (second-order runs, mean over seeds, on one fixed "
                  "training meta-batch): ||g_SO - g_FO|| / ||g_SO||, cosine(g_SO, g_FO) and the inner loss's "
                  "||H g|| / ||g|| at the meta-parameters.", "",
                  "| activation | iteration | relative norm | cosine | ||Hg||/||g|| |", "|---|---|---|---|---|"]
        for activation, rows in terms_by_iteration(result, "so").items():
            picks = sorted({0, len(rows) // 4, len(rows) // 2, len(rows) - 1} & set(range(len(rows))))
            for i in picks:
                r = rows[i]
                lines.append(f"| {activation} | {r['iteration']:,} | {100 * r['relative_difference']:.1f}% | "
                             f"{r['cosine']:.4f} | {r['relative_hvp']:.2f} |")
        lines.append("")
    mini = metrics.get("mini_imagenet_terms")
    if mini and mini.get("models"):
        lines += ["## MiniImagenet 5-way 1-shot: the dropped term on real episodes", "",
                  f"{mini['batches']} fixed training meta-batches of {mini['meta_batch_size']} tasks, "
                  f"{mini['inner_steps']} inner steps (the paper's settings); terms only, no training grid "
                  "(the compute window did not allow one: ~2 s per iteration, the paper trains 60,000). "
                  "`relu trained`: the committed meta-trained checkpoint (copied first); `init`: "
                  "networks at initialisation (seed 0).", "",
                  "| model | iteration | relative norm | cosine | ||Hg||/||g|| | curvature g.H.g/||g||^2 | "
                  "network share of ||Hg|| |", "|---|---|---|---|---|---|---|"]
        for name, m in mini["models"].items():
            share = network_share(m)
            lines.append(f"| {name.replace('_', ' ')} | {m['iteration']:,} | {100 * m['relative_difference']:.1f}% | "
                         f"{m['cosine']:.4f} | {m['relative_hvp']:.2f} | {m['curvature']:.3f} | {100 * share:.0f}% |")
        lines.append("")
    lines += ["## Answer", ""] + [f"- {t}" for t in metrics["answer"]["text"]] + [""]
    return "\n".join(lines)


def terms_by_iteration(result, order):
    """activation -> rows (iteration, term means over seeds) of the cells of ``order``."""
    out = {}
    by_activation = {}
    for c in result["cells"].values():
        if c["order"] == order and c["terms"]:
            by_activation.setdefault(c["activation"], []).append(c["terms"])
    for activation, runs in by_activation.items():
        common = sorted(set.intersection(*[{int(r["iteration"]) for r in run} for run in runs]))
        rows = []
        for it in common:
            picked = [next(r for r in run if int(r["iteration"]) == it) for run in runs]
            rows.append({"iteration": it, **{k: float(np.mean([p[k] for p in picked]))
                                             for k in picked[0] if k != "iteration"}})
        out[activation] = rows
    return out


COLORS = {("relu", "so"): "tab:blue", ("relu", "fo"): "tab:cyan", ("silu", "so"): "tab:red",
          ("silu", "fo"): "tab:orange"}


def curves(metrics, path):
    """Learning curves: sinusoid training query loss, Omniglot validation accuracy; mean over seeds."""
    plt = _pyplot()
    tasks = list(metrics["tasks"])
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(5.5 * max(len(tasks), 1), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        key = "loss" if task == "sinusoid" else "validation_accuracy"
        groups = {}
        for c in metrics["tasks"][task]["cells"].values():
            groups.setdefault((c["activation"], c["order"]), []).append(
                {r["iteration"]: r[key] for r in c["curve"] if r.get(key) is not None})
        for (activation, order), runs in sorted(groups.items()):
            common = sorted(set.intersection(*[set(r) for r in runs]))
            if not common:
                continue
            mean = [np.mean([r[i] for r in runs]) for i in common]
            ax.plot(common, mean, color=COLORS.get((activation, order)),
                    label=f"{activation} {'first' if order == 'fo' else 'second'} order ({len(runs)} seeds)")
        ax.set_title(TASK_TITLES.get(task, task))
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel("training query MSE (per 1,000 it.)" if task == "sinusoid" else "validation accuracy")
        if task == "sinusoid":
            ax.set_yscale("log")
    _finish(fig, list(axes[0]), path)


def terms_plot(metrics, path):
    """The dropped term against iteration: relative norm and ||Hg||/||g|| of the second-order runs."""
    plt = _pyplot()
    tasks = list(metrics["tasks"])
    fig, axes = plt.subplots(2, max(len(tasks), 1), figsize=(5.5 * max(len(tasks), 1), 7), squeeze=False)
    for j, task in enumerate(tasks):
        for order in ("so", "fo"):
            for activation, rows in terms_by_iteration(metrics["tasks"][task], order).items():
                x = [r["iteration"] for r in rows]
                style = "-" if order == "so" else ":"
                label = f"{activation}, {'second' if order == 'so' else 'first'}-order run"
                axes[0][j].plot(x, [r["relative_difference"] for r in rows], style,
                                color=COLORS.get((activation, "so")), label=label)
                axes[1][j].plot(x, [r["relative_hvp"] for r in rows], style,
                                color=COLORS.get((activation, "so")), label=label)
        axes[0][j].set_title(TASK_TITLES.get(task, task))
        axes[0][j].set_ylabel("||g_SO - g_FO|| / ||g_SO||")
        axes[1][j].set_ylabel("inner loss ||H g|| / ||g||")
        for ax in axes[:, j]:
            ax.set_xlabel("meta-iteration")
    _finish(fig, list(axes.flat), path)
