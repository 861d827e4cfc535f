"""A results file's PNGs: from its records (:func:`write`), and the two pictures drawn
from trained models rather than numbers (Figure 2's fits, Figure 4's paths)."""
import os

import numpy as np

COLORS = {"maml": "tab:blue", "pretrained": "tab:orange", "random": "tab:gray", "oracle": "tab:green"}
TRAINING_CURVE = "training_curve.png"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path, dpi=120):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)


def names(doc):
    """The PNG files :func:`write` draws for ``doc``."""
    if doc["kind"] == "classification":
        return ["accuracy.png"]
    if doc["kind"] == "regression":
        return ["fig3_curves.png"]
    if "step_size_search" in doc:
        return ["step_sizes.png"]
    # Pages written with the movement diagnostics (robots) also get their training curves alone.
    diagnostics = any(r.get("movement") for r in doc["rows"]) and any(r["curve"] for r in doc["rows"])
    return [f"{doc['experiment'].split('_')[0]}_returns.png"] + ([TRAINING_CURVE] if diagnostics else [])


def write(doc, out):
    """Draw ``doc``'s PNGs into ``out``."""
    draw = {"classification": accuracy, "regression": sinusoid_curves}.get(doc["kind"])
    if draw is None:
        draw = step_size_grid if "step_size_search" in doc else returns
    first, *more = names(doc)
    draw(doc, os.path.join(out, first))
    if TRAINING_CURVE in more:
        training_curves(doc, os.path.join(out, TRAINING_CURVE))


def _band(ax, x, mean, ci, fmt, color=None, **kwargs):
    """A mean line with its 95% CI shaded; returns the line."""
    mean, ci = np.asarray(mean, dtype=float), np.asarray(ci, dtype=float)
    line, = ax.plot(x, mean, fmt, color=color, **kwargs)
    ax.fill_between(x, mean - ci, mean + ci, color=line.get_color(), alpha=0.2)
    return line


def _finish(fig, axes, path):
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)


def accuracy(doc, path):
    """Table 1: validation accuracy during meta-training, test accuracy per inner step."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for r in doc["rows"]:
        label = f"{r['setting']} ({r['method']})"
        points = np.array(r["curve"]["points"], dtype=float).reshape(-1, 3)
        if len(points):
            _band(left, points[:, 0], points[:, 1], points[:, 2], "-", label=label)
        steps = range(len(r["metric"]["mean"]))
        line = _band(right, steps, r["metric"]["mean"], r["metric"]["ci95"], "o-", ms=3, label=label)
        if r["paper"] is not None:
            right.axhline(r["paper"]["mean"][0], color=line.get_color(), ls=":", lw=1)
    left.set(xlabel="meta-training iterations", ylabel="validation accuracy (%)",
             title="Validation tasks during meta-training")
    right.set(xlabel="inner gradient steps at meta-test", ylabel="test accuracy (%)",
              title="Test tasks (dotted: paper)")
    _finish(fig, (left, right), path)


def sinusoid_curves(doc, path):
    """Figure 3: MSE per step for each K, mean ± 95% CI and median; the paper's MAML."""
    plt = _pyplot()
    shots = list(dict.fromkeys(r["setting"] for r in doc["rows"]))
    fig, axes = plt.subplots(1, len(shots), figsize=(4.2 * len(shots), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, shots):
        for r in (r for r in doc["rows"] if r["setting"] == k):
            m, color = r["metric"], COLORS[r["method"]]
            steps = np.arange(len(m["mean"]))
            _band(ax, steps, m["mean"], m["ci95"], "o-", color, ms=3, label=r["method"])
            ax.plot(steps, m["median"], "--", color=color, lw=1, label=f"{r['method']} (median)")
            if r["method"] == "maml" and r["paper"]:
                ax.plot(r["paper"]["steps"], r["paper"]["mean"], "x", color="k", label="paper MAML")
        ax.set_title(f"K = {k[1:]} (solid: mean ± 95% CI over tasks)")
        ax.set_xlabel("gradient steps at meta-test")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean squared error")
    axes[0].legend(fontsize=7)
    first = doc["rows"][0]
    fig.suptitle(f"Sinusoid, {first['budget']['iterations']:,} meta-iterations ({first['preset']} preset)")
    _save(fig, path)


def returns(doc, path):
    """Figures 4 and 5: return per gradient step beside the paper's, and training curves."""
    from maml_tf.report.tables import RL_TITLES

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for r in doc["rows"]:
        method, color, m = r["method"], COLORS[r["method"]], r["metric"]
        steps = np.arange(len(m["mean"]))
        left.set_xticks(steps)
        _band(left, steps, m["mean"], m["ci95"], "o-", color, label=f"{method} (ours)")
        paper = r["paper"]["mean"]
        if len(paper) == 1:
            left.axhline(paper[0], color=color, ls=":", lw=1, label=f"{method} (paper)")
        else:
            left.plot(range(len(paper)), paper, "x:", color=color, label=f"{method} (paper)")
        if r["curve"] and r["curve"]["points"]:
            it, ret, _ = np.array(r["curve"]["points"], dtype=float).T
            right.plot(it, ret, color=color, label="maml (post-update)" if method == "maml" else method)
    left.set(xlabel="gradient steps at meta-test", ylabel="mean return",
             title=f"{RL_TITLES[doc['rows'][0]['setting']]} (± 95% CI over {doc['rows'][0]['metric']['tasks']} tasks)")
    right.set(xlabel="training iteration", ylabel="mean return of the iteration's trajectories", title="Training")
    _finish(fig, (left, right), path)


def training_curves(doc, path, window=10):
    """Every trained method's training return per iteration (MAML's post-update, its
    pre-update dashed), thin, with its mean over ``window`` iterations on top."""
    from maml_tf.report.tables import RL_TITLES

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for r in doc["rows"]:
        curve = r["curve"] or {}
        for key, style, label in (("points", "-", "post-update" if r["method"] == "maml" else "training"),
                                  ("pre_update_points", "--", "pre-update")):
            if curve.get(key):
                it, ret, _ = np.array(curve[key], dtype=float).T
                color = COLORS[r["method"]]
                ax.plot(it, ret, style, color=color, lw=0.6, alpha=0.35)
                smooth = np.convolve(ret, np.ones(window) / window, mode="valid") if len(ret) >= window else ret
                ax.plot(it[len(it) - len(smooth):], smooth, style, color=color, lw=1.6,
                        label=f"{r['method']} ({label})")
    ax.set(xlabel="training iteration", ylabel="mean return of the iteration's trajectories",
           title=f"{RL_TITLES[doc['rows'][0]['setting']]}: training (bold: mean of {window} iterations)")
    _finish(fig, (ax,), path)


def grid_key(first, later):
    """The key of a step-size pair in ``step_size_search["validation_grid"]``."""
    return f"{first:g},{later:g}"


def grid_score(returns):
    """What the step-size selection maximises: the mean return after steps 1..3."""
    return sum(returns[1:]) / len(returns[1:])


def step_size_grid(doc, path):
    """One heat map per method: validation mean return over steps 1..3 per step-size pair."""
    plt = _pyplot()
    search = doc["step_size_search"]
    first, later = search["candidates"]["first"], search["candidates"]["later"]
    chosen = {r["method"]: r["test_step_sizes"] for r in doc["rows"] if r["step_sizes_selected"]}
    methods = list(search["validation_grid"])
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.8))
    for ax, method in zip(np.atleast_1d(axes), methods):
        scores = np.array([[grid_score(search["validation_grid"][method][grid_key(a, b)]) for b in later]
                           for a in first])
        # The colours span the better three quarters; the worst pairs (divergent steps) saturate.
        image = ax.imshow(scores, cmap="viridis", aspect="auto", vmin=np.quantile(scores, 0.25))
        for i in range(len(first)):
            for j in range(len(later)):
                ax.text(j, i, f"{scores[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
        a, b = chosen[method]
        ax.add_patch(plt.Rectangle((later.index(b) - 0.5, first.index(a) - 0.5), 1, 1, fill=False, ec="r", lw=2))
        ax.set(xticks=range(len(later)), xticklabels=[f"{b:g}" for b in later], yticks=range(len(first)),
               yticklabels=[f"{a:g}" for a in first], xlabel="second and third step size",
               ylabel="first step size", title=f"{method}")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("2D navigation: validation mean return over steps 1..3 (red: selected)")
    _save(fig, path)


def sinusoid_examples(examples, path):
    """Figure 2: one test task per K, the fits of MAML and pretrained after some steps
    (``sinusoid.example_fits``)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(examples), 2, figsize=(9, 3.2 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        for ax, method in zip(row, ("maml", "pretrained")):
            ax.plot(ex["x"], ex["true"], "r-", label="ground truth")
            ax.plot(ex["support_x"], ex["support_y"], "^", color="purple",
                    label=f"{ex['shots']} points used for gradient")
            for (steps, pred), style in zip(ex["predictions"][method].items(), (":", "--", "-")):
                ax.plot(ex["x"], pred, style, color="tab:green",
                        label="pre-update" if steps == "0" else f"{steps} grad step" + ("s" if steps != "1" else ""))
            ax.set_title(f"{'MAML' if method == 'maml' else 'pretrained'}, K = {ex['shots']}")
            ax.set_ylim(-5.5, 5.5)
            ax.legend(fontsize=7, loc="lower right")
    _save(fig, path, dpi=110)


def navigation_paths(drawn, goals, steps, iterations, path):
    """Figure 4's picture, one panel per method: each goal's pre-update (dotted) and
    adapted (solid) path (``rl.paths``)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(drawn), figsize=(5 * len(drawn), 4.6))
    colors = plt.get_cmap("tab10").colors
    for ax, (method, paths) in zip(np.atleast_1d(axes), drawn.items()):
        for i, goal in enumerate(goals):
            color = colors[i % len(colors)]
            ax.plot(*paths["pre"][i].T, ":", color=color, lw=1.2)
            ax.plot(*paths["post"][i].T, "-", color=color, lw=1.5)
            ax.plot(*goal, "*", color=color, ms=14, mec="k")
        ax.plot(0, 0, "ko", ms=4)
        ax.plot([], [], "k:", label="pre-update")
        ax.plot([], [], "k-", label=f"{steps} gradient steps")
        ax.plot([], [], "k*", ls="none", label="goal")
        ax.set(title=f"{method} ({iterations[method]} training iterations)", aspect="equal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("2D navigation: one sampled trajectory per test goal, from the origin")
    _save(fig, path)
