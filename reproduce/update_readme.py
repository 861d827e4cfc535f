"""Regenerate the README's results table from results/*/metrics.json (never typed by hand).

    python reproduce/update_readme.py
"""
import json
import os

import click

START, END = "<!-- GENERATED: reproduce/update_readme.py -->", "<!-- END GENERATED -->"


def _diverged(m, method):
    counts = m.get("diverged", {}).get(method, {}).get("K5")
    if not counts or not any(counts):
        return ""
    return (f"; diverged: {' / '.join(str(counts[s]) for s in (1, 5, 10))} of "
            f"{m['settings']['eval_tasks']} tasks")


def sinusoid_rows(m, name):
    rows = []
    for method in ("maml", "pretrained"):
        ours = m["curves"][method]["K5"]
        ci = m["ci95"][method]["K5"]
        paper = m["paper"][method]["K5"]
        rows.append(
            f"| Sinusoid K=5, MSE after 1 / 5 / 10 steps, alpha={m['settings']['inner_lr']} | {method} | "
            + " / ".join(f"{ours[s]:.3g}±{ci[s]:.2g}" for s in (1, 5, 10))
            + " (median " + " / ".join(f"{m['median'][method]['K5'][s]:.2f}" for s in (1, 5, 10))
            + _diverged(m, method) + ")"
            + f" | {' / '.join(str(paper[s]) for s in ('1', '5', '10'))} | "
            f"{m['iterations']:,} it. × {m['meta_batch_size']} tasks ({m['preset']}) | "
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
        rows.append(f"| {title} {r['setting']}, accuracy % after {r['eval_inner_steps']} steps | "
                    f"{r['method']} | {r['accuracy']:.2f}±{r['ci95']:.2f} ({r['test_tasks']} tasks) | "
                    f"{r['paper']}±{r['paper_ci95']} | {budget} | [results/{name}](results/{name}/table.md) |")
    return rows


BUILDERS = {"fig3_sinusoid": sinusoid_rows, "fig3_sinusoid_code": sinusoid_rows,
            "table1_omniglot": table1_rows, "table1_miniimagenet": table1_rows,
            "table1_miniimagenet_synthetic": table1_rows}


@click.command()
@click.option("--readme", default="README.md", show_default=True)
@click.option("--results", default="results", show_default=True)
def main(readme, results):
    """Rewrite the block between the GENERATED markers of the README."""
    rows = ["| experiment | method | ours | paper | budget | details |", "|---|---|---|---|---|---|"]
    for name, build in BUILDERS.items():
        path = os.path.join(results, name, "metrics.json")
        if os.path.exists(path):
            with open(path) as f:
                rows += build(json.load(f), name)
    doc = open(readme).read()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    with open(readme, "w") as f:
        f.write(head + START + "\n" + "\n".join(rows) + "\n" + END + tail)
    click.echo("\n".join(rows))


if __name__ == "__main__":
    main()
