"""Regenerate the README's results table from results/*/metrics.json (never typed by hand).

    python reproduce/update_readme.py
"""
import json
import os

import click

START, END = "<!-- GENERATED: reproduce/update_readme.py -->", "<!-- END GENERATED -->"


def sinusoid_rows(m, name):
    rows = []
    for method in ("maml", "pretrained"):
        ours = m["curves"][method]["K5"]
        ci = m["ci95"][method]["K5"]
        paper = m["paper"][method]["K5"]
        rows.append(
            f"| Sinusoid K=5, MSE after 1 / 5 / 10 steps, alpha={m['settings']['inner_lr']} | {method} | "
            + " / ".join(f"{ours[s]:.3g}±{ci[s]:.2g}" for s in (1, 5, 10))
            + " (median " + " / ".join(f"{m['median'][method]['K5'][s]:.2f}" for s in (1, 5, 10)) + ")"
            + f" | {' / '.join(str(paper[s]) for s in ('1', '5', '10'))} | "
            f"{m['iterations']:,} it. × {m['meta_batch_size']} tasks ({m['preset']}) | "
            f"[results/{name}](results/{name}/table.md) |")
    return rows


BUILDERS = {"fig3_sinusoid": sinusoid_rows, "fig3_sinusoid_code": sinusoid_rows}


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
