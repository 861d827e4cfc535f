"""The evaluation suite's results page (table.md, ending in the answer generated from the numbers)
and its PNGs (one per axis: methods as lines with 95% CI bands), from its metrics document."""
import os

import numpy as np

from maml_tf.reporting import as_typed

PLOTS = ("out_of_distribution.png", "adaptation.png", "sample_efficiency.png", "robustness.png")
COLORS = {"maml": "tab:blue", "pretrained": "tab:orange", "scratch": "tab:gray"}
MAML_COLORS = ("tab:blue", "tab:purple", "tab:cyan")
TITLES = {"sinusoid": "Sinusoid regression (MSE, lower is better)",
          "omniglot": "Omniglot 5-way (accuracy %, higher is better)"}
ROBUSTNESS = (("label_noise", "support labels flipped (fraction)"), ("input_noise", "support input noise (std)"),
              ("support_example", "one support example"))


def write(doc, out):
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(page(doc))
    for name in PLOTS:
        globals()["plot_" + name[:-4]](doc, os.path.join(out, name))


# ----------------------------------------------------------------------------- numbers
def _values(result, domain):
    """``(means, ci95s, medians, diverged)`` of a result in the page's unit (accuracy in %);
    medians are NaN and diverged counts 0 where the result has none (adaptation curves)."""
    metric = domain["metric"]
    scale = 100 if metric == "accuracy" else 1
    mean = scale * np.asarray(result[metric]["mean"], float)
    median = scale * np.asarray(result[metric].get("median", [np.nan] * len(mean)), float)
    diverged = np.asarray(result.get("diverged", [0] * len(mean)))
    return mean, scale * np.asarray(result[metric]["ci95"], float), median, diverged


def _fmt(mean, ci, median=np.nan, diverged=0):
    text = ("diverged" if not np.isfinite(mean) else f"{mean:.1e} ± {ci:.1e}" if abs(mean) >= 1e4
            else f"{mean:.2f} ± {ci:.2f}")
    if diverged:  # a few tasks' NaN or Inf ruin the mean: say how many, and the median
        text += f" ({diverged} diverged; median {_short(median)})"
    return text


def _better(domain, a, b):
    """+1 if mean ``a`` is better than ``b`` for the domain's metric, -1 if worse."""
    if domain["metric"] == "accuracy":
        return np.sign(a - b)
    return np.sign(np.nan_to_num(b, nan=np.inf) - np.nan_to_num(a, nan=np.inf))


def compare(domain, maml, baselines):
    """Per setting: "better" if MAML's CI lies wholly on the better side of every baseline's,
    "worse" if some baseline's lies wholly on MAML's better side, else "tie"."""
    verdicts = []
    for i in range(len(maml[0])):
        m, mc = maml[0][i], maml[1][i]
        outcome = []
        for mean, ci, *_ in baselines:
            gap = _better(domain, m, mean[i])
            separated = not np.isfinite(m - mean[i]) or abs(m - mean[i]) > mc + ci[i]
            outcome.append(gap if separated else 0)
        verdicts.append("worse" if min(outcome) < 0 else "better" if min(outcome) > 0 else "tie")
    return verdicts


# ----------------------------------------------------------------------------- table.md
def page(doc):
    p = doc["preset"]
    lines = ["# Evaluation suite: MAML against the pretrained baseline and training from scratch", "",
             "Out of distribution, adaptation speed, sample efficiency and robustness on sinusoid "
             "regression and Omniglot 5-way classification; every number is a mean ± 95% CI over fixed test tasks, "
             "the same tasks for every method. "
             + ("" if doc["complete"] else "**PARTIAL: some trainings stopped at the time limit before their budget "
                                           "(see Models).** "), "",
             f"Command: `{as_typed(doc['command'])}` (preset `{p['name']}`), {doc['seconds'] / 60:.1f} min of wall time "
             f"for this invocation (models already trained in its run directory are loaded, not trained again). Machine: {doc['machine']['cpu']}, {doc['machine']['cores']} cores, "
             f"TensorFlow {doc['machine']['tensorflow']}; shared the 2 cores with other runs, so the times are noisy.",
             "", "MiniImagenet is not part of this run (its 5-way 1-shot model was still training; no time left).", ""]
    lines += _models(doc)
    for name, domain in doc["domains"].items():
        lines += _domain_tables(name, domain, p)
    lines += ["## Answer", ""] + answer(doc)
    return "\n".join(lines) + "\n"


def _models(doc):
    lines = ["## Models and budgets", "", "| domain | model | iterations | budget | notes |", "|---|---|---|---|---|"]
    for name, domain in doc["domains"].items():
        for model, info in domain["models"].items():
            target = info.get("target")
            it = f"{info.get('iterations', 0):,}" + (f" of {target:,}" if target else "")
            notes = []
            if name == "sinusoid" and model.startswith("maml"):
                notes.append(f"meta-trained with K = {info['support_shots']}, meta-batch {info['meta_batch_size']}")
            if name == "sinusoid" and model == "pretrained":
                notes.append(f"joint regression on {info['trained_with_points_per_task']} points per task, then "
                             "fine-tuned with the inner rule (all weights)")
            if name == "omniglot" and model == "maml_K1":
                notes.append(f"read from {info['run_dir']}; meta-batch {info['meta_batch_size']}")
            if name == "omniglot" and model == "maml_K5":
                notes.append(f"meta-batch {info['meta_batch_size']} (paper {info['paper_meta_batch_size']})")
            if name == "omniglot" and model == "pretrained":
                notes.append(f"conv4 classifier over {info['classes']:,} classes (training characters x 4 rotations), "
                             f"batch {info['batch_size']}; at test a new zero 5-way head fine-tuned (backbone frozen)")
            if model == "scratch":
                notes.append("random initialisation fine-tuned with the inner rule (all weights)")
            paper = info.get("paper_iterations")
            budget = (f"smaller than the paper's {paper:,}" if paper and info.get("iterations", 0) < paper
                      else "the paper's" if name == "sinusoid" and model.startswith("maml") and target == 70_000
                      else "stated here (no paper budget)")
            lines.append(f"| {name} | {model} | {it} | {budget} | {'; '.join(notes)} |")
    return lines + [""]


def _domain_tables(name, domain, p):
    unit = "MSE" if domain["metric"] == "loss" else "accuracy (%)"
    test = (f"K = {domain['support_shots']}, {domain['query_points']} query points" if name == "sinusoid"
            else f"{domain['ways']}-way {domain['support_shots']}-shot, {domain['query_shots']} query images per class")
    lines = [f"## {TITLES[name]}", "",
             f"Test tasks: {domain['num_tasks']} per setting ({test}); {domain['steps']} inner steps for every method; "
             f"MAML is `{domain['main_maml']}`; step sizes "
             f"{', '.join(f'{m} {v:g}' for m, v in domain['inner_lr'].items())} "
             f"(MAML: its training alpha; the baselines: the best of "
             f"{', '.join(next(iter(domain['step_size_selection'].values()))['scores'])} on validation tasks).", ""]
    methods = list(domain["out_of_distribution"])

    def table(title, rows_of, settings, columns):
        out = [f"### {title}", "", "| setting | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for i, setting in enumerate(settings):
            cells = [_fmt(*(v[i] for v in rows_of(c))) for c in columns]
            out.append(f"| {setting} | " + " | ".join(cells) + " |")
        return out + [""]

    ood = domain["out_of_distribution"]
    lines += table(f"Out of distribution ({unit})", lambda m: _values(ood[m], domain), ood[methods[0]]["settings"],
                   methods)
    adaptation = domain["adaptation"]
    for factor in adaptation[methods[0]]:
        curves = {m: _values(adaptation[m][factor], domain) for m in methods}
        steps = [s for s in (0, 1, 2, 5, 10, 20) if s < len(curves[methods[0]][0])]
        lrs = ", ".join(f"{m} {adaptation[m][factor]['inner_lr']:g}" for m in methods)
        lines += table(f"Adaptation speed, step size {factor} the training one ({lrs}; {unit} after k steps)",
                       lambda m: tuple(v[steps] for v in curves[m]), [f"k = {s}" for s in steps], methods)
    efficiency = domain["sample_efficiency"]
    models = list(efficiency)
    lines += table(f"Sample efficiency ({unit} after {domain['steps']} steps on K support examples"
                   + (" per class" if name == "omniglot" else "") + ")",
                   lambda m: _values(efficiency[m], domain), [f"K = {k}" for k in efficiency[models[0]]["settings"]],
                   models)
    robustness = domain["robustness"]
    for axis, title in ROBUSTNESS:
        lines += table(f"Robustness: {title} ({unit})", lambda m: _values(robustness[m][axis], domain),
                       robustness[methods[0]][axis]["settings"], methods)
    return lines


# ----------------------------------------------------------------------------- the answer
def _summary(domain, settings, maml, baselines, what):
    verdicts = compare(domain, maml, baselines)
    unit = "MSE" if domain["metric"] == "loss" else "%"
    best = [(max if domain["metric"] == "accuracy" else min)(
        range(len(baselines)), key=lambda j: baselines[j][0][i] if np.isfinite(baselines[j][0][i]) else
        (-np.inf if domain["metric"] == "accuracy" else np.inf)) for i in range(len(settings))]

    def detail(i):
        j = best[i]
        median = (f" (median {_short(maml[2][i])}, {maml[3][i]} tasks diverged)"
                  if len(maml) > 3 and maml[3][i] else "")
        return f"{settings[i]}: {_short(maml[0][i])}{median} vs {_short(baselines[j][0][i])} {unit}"

    wins = [detail(i) for i, v in enumerate(verdicts) if v == "better"]
    losses = [detail(i) for i, v in enumerate(verdicts) if v == "worse"]
    ties = [i for i, v in enumerate(verdicts) if v == "tie"]
    text = f"MAML beats both baselines in {len(wins)} of {len(settings)} {what}"
    text += f" ({'; '.join(wins)})" if wins else ""
    if losses:
        text += f"; a baseline beats it in {len(losses)} ({'; '.join(losses)})"
    if ties:
        text += f"; CIs overlap in {len(ties)} ({', '.join(settings[i] for i, v in enumerate(verdicts) if v == 'tie')})"
    return text + " (MAML vs the best baseline)."


def _short(value):
    return "diverged" if not np.isfinite(value) else f"{value:.3g}"


def answer(doc):
    lines = []
    for name, domain in doc["domains"].items():
        label = "Sinusoid" if name == "sinusoid" else "Omniglot"
        ood = domain["out_of_distribution"]
        baselines = [m for m in ood if m != "maml"]
        pick = lambda results, key=None: _values(results if key is None else results[key], domain)  # noqa: E731
        lines.append(f"- **{label}, out of distribution**: " + _summary(
            domain, ood["maml"]["settings"], pick(ood["maml"]), [pick(ood[b]) for b in baselines], "settings"))
        adaptation = domain["adaptation"]
        parts = []
        for factor in adaptation["maml"]:
            maml = pick(adaptation["maml"][factor])
            others = [pick(adaptation[b][factor]) for b in baselines]
            picked = sorted({1, min(5, len(maml[0]) - 1), len(maml[0]) - 1})
            verdicts = compare(domain, tuple(v[picked] for v in maml), [tuple(v[picked] for v in o) for o in others])
            parts.append(f"step size {factor}: after {', '.join(str(s) for s in picked)} steps MAML "
                         f"{', '.join(_short(maml[0][s]) for s in picked)}, best baseline "
                         f"{', '.join(_short(_best(domain, others, s)) for s in picked)} ({', '.join(verdicts)})")
        lines.append(f"- **{label}, adaptation speed**: " + "; ".join(parts) + ".")
        efficiency = domain["sample_efficiency"]
        mamls = [m for m in efficiency if m.startswith("maml")]
        base = [pick(efficiency[b]) for b in baselines]
        shots = [f"K={k}" for k in efficiency[mamls[0]]["settings"]]
        lines.append(f"- **{label}, sample efficiency**: " + " ".join(
            f"{m} (meta-trained with K={m.split('K')[1]}): "
            + _summary(domain, shots, pick(efficiency[m]), base, "values of K")
            for m in mamls))
        robustness = domain["robustness"]
        parts = []
        for axis, title in ROBUSTNESS:
            result = robustness["maml"][axis]
            settings = [str(s) for s in result["settings"]]
            maml = pick(result)
            drop = {m: pick(robustness[m][axis])[0] for m in robustness}
            change = ", ".join(f"{m} {_short(v[0])} -> {_short(v[-1])}" for m, v in drop.items())
            parts.append(f"{title} ({settings[0]} -> {settings[-1]}: {change}); "
                         + _summary(domain, settings, maml, [pick(robustness[b][axis]) for b in baselines], "levels"))
        lines.append(f"- **{label}, robustness**: " + " ".join(parts))
    return lines


def _best(domain, others, step):
    values = [o[0][step] for o in others]
    finite = [v for v in values if np.isfinite(v)] or [np.nan]
    return max(finite) if domain["metric"] == "accuracy" else min(finite)


# ----------------------------------------------------------------------------- PNGs
def _pyplot():
    from maml_tf.report.plots import _pyplot as pyplot
    return pyplot()


def _band(ax, x, mean, ci, color, label):
    from maml_tf.report.plots import _band as band
    mean, ci = np.asarray(mean, float), np.asarray(ci, float)
    band(ax, x, np.where(np.isfinite(mean), mean, np.nan), np.where(np.isfinite(ci), ci, 0), "o-", color, ms=3,
         label=label)


def _axes(plt, rows, cols, width=4.6, height=3.4):
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    return fig, axes


def _style(ax, domain, xlabel, title):
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MSE (log)" if domain["metric"] == "loss" else "accuracy (%)")
    if domain["metric"] == "loss":
        ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(fig, path):
    from maml_tf.report.plots import _save as save
    save(fig, path)


def _categorical(ax, domain, results, colors):
    for method, result in results.items():
        mean, ci, median, diverged = _values(result, domain)
        _band(ax, np.arange(len(mean)), mean, ci, colors[method], method)
        if diverged.any():
            ax.plot(np.arange(len(mean)), median, "--", color=colors[method], lw=1, label=f"{method} (median)")
    settings = next(iter(results.values()))["settings"]
    ax.set_xticks(range(len(settings)), [str(s) for s in settings], rotation=30, ha="right", fontsize=7)


def plot_out_of_distribution(doc, path):
    plt = _pyplot()
    domains = doc["domains"]
    fig, axes = _axes(plt, 1, len(domains))
    for ax, (name, domain) in zip(axes[0], domains.items()):
        _categorical(ax, domain, domain["out_of_distribution"], COLORS)
        _style(ax, domain, "", f"{TITLES[name]}\nout of distribution, {domain['steps']} steps")
    _save(fig, path)


def plot_adaptation(doc, path):
    plt = _pyplot()
    domains = doc["domains"]
    factors = list(next(iter(domains.values()))["adaptation"]["maml"])
    fig, axes = _axes(plt, len(domains), len(factors))
    for row, (name, domain) in zip(axes, domains.items()):
        for ax, factor in zip(row, factors):
            for method, curves in domain["adaptation"].items():
                mean, ci = _values(curves[factor], domain)[:2]
                _band(ax, curves[factor]["steps"], mean, ci, COLORS[method],
                      f"{method} (alpha {curves[factor]['inner_lr']:g})")
            _style(ax, domain, "inner gradient steps at test", f"{name}: step size {factor} the training one")
    _save(fig, path)


def plot_sample_efficiency(doc, path):
    plt = _pyplot()
    domains = doc["domains"]
    fig, axes = _axes(plt, 1, len(domains))
    for ax, (name, domain) in zip(axes[0], domains.items()):
        mamls = iter(MAML_COLORS)
        for model, result in domain["sample_efficiency"].items():
            mean, ci, median, diverged = _values(result, domain)
            color = COLORS.get(model) or next(mamls)
            _band(ax, result["settings"], mean, ci, color, model)
            if diverged.any():
                ax.plot(result["settings"], median, "--", color=color, lw=1, label=f"{model} (median)")
        ax.set_xscale("log")
        ax.set_xticks(result["settings"], [str(k) for k in result["settings"]])
        _style(ax, domain, "K support examples at test" + (" per class" if name == "omniglot" else ""),
               f"{TITLES[name]}\nsample efficiency, {domain['steps']} steps")
    _save(fig, path)


def plot_robustness(doc, path):
    plt = _pyplot()
    domains = doc["domains"]
    fig, axes = _axes(plt, len(domains), len(ROBUSTNESS))
    for row, (name, domain) in zip(axes, domains.items()):
        for ax, (axis, title) in zip(row, ROBUSTNESS):
            _categorical(ax, domain, {m: r[axis] for m, r in domain["robustness"].items()}, COLORS)
            _style(ax, domain, title, f"{name}: robustness, {domain['steps']} steps")
    _save(fig, path)


if __name__ == "__main__":  # re-render a results folder from its metrics.json (no measuring)
    import json
    import sys

    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join("results", "evaluation_suite")
    with open(os.path.join(folder, "metrics.json")) as f:
        write(json.load(f), folder)
