"""The task-switching study's page (``maml_tf.studies.task_switching``): table.md ending in the
numeric answer, and one PNG per model (the metric along the chain, the distance from the
meta-learned weights and the gradient norm at every switch)."""
import os

import numpy as np

from maml_tf.evaluation.protocol import mean_ci95
from maml_tf.reporting import as_typed
from maml_tf.report.plots import _band, _pyplot, _save

TITLES = {"sinusoid": "Sinusoid regression (MAML, K = {shots})", "omniglot": "Omniglot 5-way 1-shot (MAML, conv4)",
          "navigation": "2D navigation (MAML-TRPO policy)"}
LABELS = {"loss": "query MSE", "accuracy": "query accuracy", "return": "mean return"}
LOWER_IS_BETTER = {"loss": True, "accuracy": False, "return": False}
MODE_NAMES = {"reset": "reset (from the meta-weights)", "no_reset": "no reset (from the previous link)"}


def without_per_chain(doc):
    """``doc`` without the per-chain arrays (metrics.json keeps means, CIs and medians)."""
    if isinstance(doc, dict):
        return {k: without_per_chain(v) for k, v in doc.items() if k != "per_chain"}
    return doc


def write(doc, out):
    """table.md and ``switching_<model>.png`` for every model of ``doc`` into ``out`` (a doc
    whose results still hold ``per_chain``: what :func:`switch_back` and the plots read)."""
    for name, result in doc["models"].items():
        result["switch_back"] = switch_back(result)
        chain_figure(name, result, os.path.join(out, f"switching_{name}.png"))
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table(doc))


def revisit(pattern):
    """Index of the first link that returns to the first task after another one, or None."""
    return next((i for i in range(2, len(pattern)) if pattern[i] == pattern[0] and pattern[i - 1] != pattern[0]), None)


def table(doc):
    p = doc["preset"]
    lines = ["# Task switching: can MAML switch back and forth between tasks?", "",
             f"Command: `{as_typed(doc['command'])}`  ",
             f"Preset `{p['name']}`; chains' tasks drawn with seed {p['seed']} (apart from the test tasks). "
             "Each link adapts to its task with the model's inner rule either from the meta-learned weights "
             "(**reset**, the paper's protocol) or from the weights the previous link ended at (**no reset**). "
             "Mean ± 95% CI over chains (over the finite ones: \"n div.\" counts chains whose value became inf "
             "or NaN, left out). A letter seen again is the same task (same support and query sets).  ",
             f"Machine: {_machine(doc['machine'])}; {doc['seconds']:.0f} s in total, shared the 2 cores with other "
             "runs (timings noisy).", ""]
    for name, r in doc["models"].items():
        lines += _model_section(name, r)
    lines += ["## Answer", "", headline(doc["models"]), ""]
    lines += [f"- {answer(name, r)}" for name, r in doc["models"].items()]
    return "\n".join(lines) + "\n"


def _machine(m):
    return f"{m['cpu']}, {m['cores']} cores, {'no GPU' if not m['gpus'] else str(m['gpus']) + ' GPU'}"


def _model_section(name, r):
    m, metric, k = r["model"], r["metric"], r["steps"]
    budget = f"{m['iterations']:,} of {m['budget_iterations']:,} meta-iterations"
    if m["iterations"] < m["budget_iterations"]:
        budget += " (**smaller than the preset's budget**)"
    if name == "sinusoid":
        details = (f"trained here ({m['preset']} preset, inner_lr {m['inner_lr']}), {m['shots']} support and "
                   f"{m['query']} query points per task")
    elif name == "omniglot":
        details = f"committed run {m['run_dir']} (inner_lr {m['inner_lr']}), {m['query_shots']} query images per class"
    else:
        details = (f"committed policy {m['run_dir']}, step sizes {m['step_sizes']}, "
                   f"{m['episodes_per_task']} episodes per task and step")
    shown = sorted({0, 1, k} & set(range(k + 1)))
    head = [f"{mode} {s}" for mode in ("reset", "no reset") for s in shown]
    lines = [f"## {TITLES[name].format(**m)}", "",
             f"Model: {budget}; {details}. {r['num_chains']} chains {' -> '.join(r['pattern'])}, {k} steps per link "
             f"({r['eval_seconds']:.0f} s). Columns: {LABELS[metric]} after {' / '.join(map(str, shown))} steps; "
             "gradient norm at the "
             "link's start; L2 distance from the meta-weights after the link, relative to their norm "
             f"({r['weight_norm']:.2f}).", "",
             "| link | task | " + " | ".join(head) + " | grad norm reset | no reset | distance reset | no reset |",
             "|" + "---|" * (2 + len(head) + 4)]
    reset, keep = r["reset"], r["no_reset"]
    for i, task in enumerate(r["pattern"]):
        cells = [_cell(mode[metric], (i, s), percent=metric == "accuracy") for mode in (reset, keep) for s in shown]
        cells += [_cell(mode["gradient_norm"], i) for mode in (reset, keep)]
        cells += [_cell(mode["relative_distance"], i + 1, percent=True) for mode in (reset, keep)]
        lines.append(f"| {i + 1} | {task} | " + " | ".join(cells) + " |")
    return lines + ["", f"![{name}](switching_{name}.png)", ""]


def _cell(stat, index, percent=False):
    mean, ci = np.asarray(stat["mean"])[index], np.asarray(stat["ci95"])[index]
    diverged = int(np.asarray(stat["diverged"])[index])
    note = f" ({diverged} div.)" if diverged else ""
    if percent:
        return f"{100 * mean:.1f}% ± {100 * ci:.1f}{note}"
    return f"{_num(mean)} ± {_num(ci)}{note}"


def _num(x):
    return f"{x:.3g}" if np.isfinite(x) else str(x)


def switch_back(r):
    """The numbers of the answer for one model's result (kept in metrics.json): at the first link
    back on the chain's first task after another one, no reset against reset after 1 and k steps
    (paired over the chains where both are finite), and the drift; None if the chain never returns."""
    i = revisit(r["pattern"])
    if i is None:
        return None
    metric, k = r["metric"], r["steps"]
    steps = {}
    for s in sorted({1, k} & set(range(1, k + 1))):
        keep = np.asarray(r["no_reset"][metric]["per_chain"])[:, i, s]
        reset = np.asarray(r["reset"][metric]["per_chain"])[:, i, s]
        diff = (keep - reset)[np.isfinite(keep - reset)]
        mean, ci = mean_ci95(diff)
        better = (mean < 0) == LOWER_IS_BETTER[metric]
        steps[s] = {"no_reset": r["no_reset"][metric]["mean"][i][s], "reset": r["reset"][metric]["mean"][i][s],
                    "difference": float(mean), "ci95": float(ci), "chains": len(diff),
                    "verdict": "the same within the 95% CI" if abs(mean) <= ci else ("better" if better else "worse")}
    drift = np.asarray(r["no_reset"]["relative_distance"]["mean"])
    return {"link": i, "steps": steps, "drift_at_switch": float(drift[i]), "drift_at_end": float(drift[-1]),
            "drift_one_adaptation": float(np.mean(np.asarray(r["reset"]["relative_distance"]["mean"])[1:])),
            "before_any_step": float(r["no_reset"][metric]["mean"][i][0]),
            "gradient_norm": {mode: float(r[mode]["gradient_norm"]["mean"][i]) for mode in ("no_reset", "reset")},
            "diverged_at_end": int(np.asarray(r["no_reset"][metric]["diverged"])[-1, -1])}


def headline(models):
    """One sentence over all models: back on A after B, does the no-reset model reach the
    meta-weights' result in the same k steps?"""
    parts = []
    for name, r in models.items():
        back = r.get("switch_back")
        if back is None:
            continue
        metric, k = r["metric"], r["steps"]
        at_k = back["steps"][k] if k in back["steps"] else back["steps"][str(k)]
        same = at_k["verdict"].startswith("the same")
        verdict = "no difference within the 95% CI" if same else "no, " + at_k["verdict"]
        parts.append(f"{name} {verdict} ({LABELS[metric]} {_fmt(metric, at_k['no_reset'])} against "
                     f"{_fmt(metric, at_k['reset'])} after {_steps(k)}; the weights had drifted "
                     f"{100 * back['drift_at_switch']:.1f}% of the meta-weights' norm, against "
                     f"{100 * back['drift_one_adaptation']:.1f}% for one adaptation)")
    return ("**After adapting to B, does adapting back to A from there reach the same result as from the "
            "meta-weights in the same number of steps?** " + "; ".join(parts) + ".")


def answer(name, r):
    """The templated answer for one model: returning to A after B, no reset against reset."""
    metric, k, pattern, back = r["metric"], r["steps"], r["pattern"], r.get("switch_back")
    if back is None:
        return f"{name}: the pattern {pattern} never returns to its first task; no answer."
    parts = []
    for s, at in back["steps"].items():
        s = int(s)
        parts.append(f"after {_steps(s)} {_fmt(metric, at['no_reset'])} from B's weights against "
                     f"{_fmt(metric, at['reset'])} from the meta-weights (paired difference "
                     f"{_fmt(metric, at['difference'], sign=True)} ± {_fmt(metric, at['ci95'])}: {at['verdict']}"
                     + (f"; {r['num_chains'] - at['chains']} diverged chains left out" if at["chains"] < r["num_chains"]
                        else "") + ")")
    lost = (f" Without reset {back['diverged_at_end']} of {r['num_chains']} chains diverged (inf / NaN) by the "
            "chain's end (left out of the means)." if back["diverged_at_end"] else "")
    return (f"{name} ({LABELS[metric]}, {r['num_chains']} chains): back on A after B, " + "; ".join(parts) + ". "
            f"Before any step on A again it scores {_fmt(metric, back['before_any_step'])} (A's own after {_steps(k)}: "
            f"{_fmt(metric, r['no_reset'][metric]['mean'][0][k])}; the meta-weights: "
            f"{_fmt(metric, r['reset'][metric]['mean'][back['link']][0])}). "
            f"The weights had drifted {100 * back['drift_at_switch']:.1f}% of the meta-weights' norm from them at that "
            f"switch and {100 * back['drift_at_end']:.1f}% after all {len(pattern)} links, against "
            f"{100 * back['drift_one_adaptation']:.1f}% for one adaptation from the meta-weights; the gradient norm at "
            f"the switch was {back['gradient_norm']['no_reset']:.3g} (from the meta-weights: "
            f"{back['gradient_norm']['reset']:.3g})." + lost)


def _steps(n):
    return f"{n} step{'' if n == 1 else 's'}"


def _fmt(metric, x, sign=False):
    if not np.isfinite(x):
        return str(x)
    if metric == "accuracy":
        return f"{100 * x:{'+' if sign else ''}.1f}%"
    return f"{x:{'+' if sign else ''}.3g}"


def chain_figure(name, r, path):
    """Three panels: the metric along the chain (every link's 0..k steps, both modes), the
    relative distance from the meta-weights after each link, the gradient norm at each start."""
    plt = _pyplot()
    metric, k, pattern = r["metric"], r["steps"], r["pattern"]
    fig, (along, distance, gradient) = plt.subplots(1, 3, figsize=(15, 3.8), gridspec_kw={"width_ratios": [2, 1, 1]})
    links = np.arange(len(pattern))
    robust = metric == "loss"  # a few chains blowing up before they diverge would dominate a mean of MSEs
    for mode, color in (("reset", "tab:blue"), ("no_reset", "tab:red")):
        stat = r[mode][metric]
        if robust:
            per_chain = np.where(np.isfinite(stat["per_chain"]), stat["per_chain"], np.nan)
            low, middle, high = np.nanpercentile(per_chain, [25, 50, 75], axis=0)
        for i in links:
            x = i * (k + 1) + np.arange(k + 1)
            label = MODE_NAMES[mode] if i == 0 else None
            if robust:
                along.plot(x, middle[i], "o-", color=color, ms=2, label=label)
                along.fill_between(x, low[i], high[i], color=color, alpha=0.2)
            else:
                _band(along, x, np.asarray(stat["mean"])[i], np.asarray(stat["ci95"])[i], "o-", color, ms=2,
                      label=label)
        d = r[mode]["relative_distance"]
        _band(distance, np.arange(len(pattern) + 1), 100 * np.asarray(d["mean"]), 100 * np.asarray(d["ci95"]), "o-",
              color, label=mode.replace("_", " "))
        g = r[mode]["gradient_norm"]
        _band(gradient, links + 1, g["mean"], g["ci95"], "o-", color, label=mode.replace("_", " "))
    along.set_xticks(links * (k + 1) + k / 2, [f"{i + 1}: {t}" for i, t in enumerate(pattern)])
    for i in links[1:]:
        along.axvline(i * (k + 1) - 0.5, color="gray", lw=0.5)
    if metric == "loss":
        along.set_yscale("log")
    along.set(xlabel=f"link: task (0..{k} steps each)",
              ylabel=f"{LABELS[metric]} ({'median, quartiles' if robust else 'mean, 95% CI'} over chains)",
              title=f"{TITLES[name].format(**r['model'])}, {r['num_chains']} chains")
    distance.set_xticks(np.arange(len(pattern) + 1), ["start"] + [f"{i + 1}: {t}" for i, t in enumerate(pattern)])
    gradient.set_xticks(links + 1, [f"{i + 1}: {t}" for i, t in enumerate(pattern)])
    distance.set(xlabel="after link", ylabel="distance from meta-weights (% of their norm)",
                 title="Drift from the meta-weights")
    gradient.set(xlabel="link", ylabel="support-loss gradient norm" if name != "navigation" else "policy-gradient norm",
                 title="Gradient norm at the link's start")
    for ax in (along, distance, gradient):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)
