"""Regenerate the README's results table from results/*/metrics.json (never typed by hand).

    python reproduce/update_readme.py
"""
import json
import os

import click

from maml_tf import reporting
from maml_tf.experiments.runs import RunDirectory

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- GENERATED: reproduce/update_readme.py -->", "<!-- END GENERATED -->"


def _diverged(m, method, steps):
    counts = m.get("diverged", {}).get(method, {}).get("K5")
    if not counts or not any(counts):
        return ""
    return (f"; diverged: {' / '.join(str(counts[s]) for s in steps)} of "
            f"{m['settings']['eval_tasks']} tasks")


def sinusoid_rows(m, name):
    rows = []
    for method in ("maml", "pretrained"):
        ours = m["curves"][method]["K5"]
        ci = m["ci95"][method]["K5"]
        paper = m["paper"][method]["K5"]
        # Figure 3's steps, as far as the run's curve goes.
        steps = [s for s in (1, 5, 10) if s < len(ours)]
        rows.append(
            f"| Sinusoid K=5, MSE after {' / '.join(map(str, steps))} steps, "
            f"alpha={m['settings']['inner_lr']} | {method} | "
            + " / ".join(f"{ours[s]:.3g}±{ci[s]:.2g}" for s in steps)
            + " (median " + " / ".join(f"{m['median'][method]['K5'][s]:.2f}" for s in steps)
            + _diverged(m, method, steps) + ")"
            + f" | {' / '.join(str(paper[str(s)]) for s in steps)} | "
            f"{m['iterations']:,} it. × {m['meta_batch_size']} tasks ({m['preset']}"
            + ("; the authors' init" if m["settings"].get("authors_layers") else "") + ") | "
            f"[results/{name}](results/{name}/table.md) |")
    return rows


def table1_rows(m, name):
    data = m.get("data", "real")
    title = "Omniglot" if "omniglot" in name else "MiniImagenet" + (" (synthetic data)" if data != "real" else "")
    rows = []
    for r in m["rows"]:
        budget = f"{r['iterations']:,} it. × {r['meta_batch_size']} tasks"
        if r["iterations"] < r["budget_iterations"]:
            budget += f" (unfinished, of {r['budget_iterations']:,}; paper {r['paper_iterations']:,})"
        elif r["iterations"] < r["paper_iterations"]:
            budget += f" (reduced; paper {r['paper_iterations']:,})"
        else:
            budget += " (paper)"
        if r.get("preset") == "code":
            budget += "; authors' code: loss summed / K, their layers, batch norm not adapted"
        paper = "—" if r["paper"] is None else f"{r['paper']}±{r['paper_ci95']}"
        rows.append(f"| {title} {r['setting']}, accuracy % after {r['eval_inner_steps']} steps | "
                    f"{r['method']} | {r['accuracy']:.2f}±{r['ci95']:.2f} ({r['test_tasks']} tasks) | "
                    f"{paper} | {budget} | [results/{name}](results/{name}/table.md) |")
    return rows


RL_TITLES = {"navigation": "2D navigation (Fig. 4)", "cheetah-vel": "Half-cheetah velocity (Fig. 5)",
             "cheetah-dir": "Half-cheetah direction (Fig. 5)", "ant-vel": "Ant velocity (Fig. 5)",
             "ant-dir": "Ant direction (Fig. 5)"}


def _paper_after_steps(paper):
    """The paper's returns after 1 / 2 / 3 steps, or the one value its text gives."""
    return " / ".join(f"{v:g}" for v in paper[1:]) if len(paper) > 1 else f"about {paper[0]:g}"


def rl_rows(m, name):
    """Figures 4 and 5: return after 1 / 2 / 3 steps per method (the oracle: after 0,
    as the paper's oracle is not fine-tuned)."""
    rows = []
    paper_budget, settings = m["paper_budget"], m["settings"]
    reduced = [k for k in paper_budget if settings[k] < paper_budget[k]]
    for method, returns in m["returns"].items():
        ci, paper = m["ci95"][method], m["paper"][method]
        if method == "oracle":
            ours, paper_cell = f"{returns[0]:.1f}±{ci[0]:.1f} (0 steps)", f"{paper[0]:g} (0 steps)"
        else:
            ours = " / ".join(f"{r:.1f}±{c:.1f}" for r, c in zip(returns[1:], ci[1:]))
            paper_cell = _paper_after_steps(paper)
        if method == "random":
            budget = "untrained"
        else:
            budget = f"{m['iterations'][method]:,} it. × {settings['meta_batch_size']} tasks"
            if m["iterations"][method] < settings["iterations"]:
                budget += f" (unfinished, of {settings['iterations']:,})"
        steps = "/".join(f"{a:g}" for a in m["test_step_sizes"][method])
        budget += (f" ({m['preset']} preset" + (f", smaller {', '.join(reduced)}" if reduced else "")
                   + f"; α {settings['inner_lr']:g}, test {steps}"
                   + (", finite-difference HVP" if settings["hvp"] != "exact" else "")
                   + (", step-budget sampling" if settings.get("sampling") == "steps" else "") + ")")
        rows.append(f"| {RL_TITLES[m['task']]}, return after 1 / 2 / 3 steps | {method} | {ours} | "
                    f"{paper_cell} | {budget} | [results/{name}](results/{name}/table.md) |")
    return rows


def _tasks_per_iteration(checkpoint_dir):
    """`` × N tasks`` from the preset record of the checkpoints a result was scored on
    (fig4_step_sizes.py's metrics do not repeat the training meta-batch)."""
    record = RunDirectory(os.path.join(REPO_ROOT, checkpoint_dir)).record()
    if record is None:
        return ""
    return f" × {record['hyperparameters']['meta_batch_size']} tasks"


def step_size_rows(m, name):
    """Figure 4 with the meta-test step sizes chosen on validation goals (fig4_step_sizes.py)."""
    rows = []
    for method, result in m["test"].items():
        chosen = result["selected_step_sizes"]
        ours = " / ".join(f"{r:.1f}±{c:.1f}" for r, c in zip(chosen["mean"][1:], chosen["ci95"][1:]))
        paper = m["paper"][method]
        paper_cell = _paper_after_steps(paper)
        sizes = " then ".join(f"{a:g}" for a in m["selected"][method])
        trained = "untrained" if method == "random" else (
            f"{m['iterations'][method]:,} it.{_tasks_per_iteration(m['checkpoints'])} ({m['preset']} preset)")
        budget = f"{trained}; test steps {sizes}, selected on validation goals"
        rows.append(f"| 2D navigation (Fig. 4), return after 1 / 2 / 3 steps, step sizes selected | {method} | "
                    f"{ours} | {paper_cell} | {budget} | [results/{name}](results/{name}/table.md) |")
    return rows


# results/<name> is rendered by the builder whose key starts its name (e.g. table1_omniglot_quick).
BUILDERS = {"fig3_sinusoid": sinusoid_rows, "table1_": table1_rows,
            "fig4_navigation": rl_rows, "fig4_step_sizes": step_size_rows, "fig5_": rl_rows}


def builder(name):
    return next((build for prefix, build in BUILDERS.items() if name.startswith(prefix)), None)


@click.command()
@click.option("--readme", default="README.md", show_default=True)
@click.option("--results", default="results", show_default=True)
def main(readme, results):
    """Rewrite the block between the GENERATED markers of the README."""
    rows = ["| experiment | method | ours | paper | budget | details |", "|---|---|---|---|---|---|"]
    for name in sorted(os.listdir(results)):
        path = os.path.join(results, name, "metrics.json")
        # Smoke presets check that the pipeline runs; their numbers are not results.
        if builder(name) and os.path.exists(path) and not name.endswith("_smoke"):
            with open(path) as f:
                rows += builder(name)(json.load(f), name)
    reporting.publish_table(readme, START, END, rows)


if __name__ == "__main__":
    main()
