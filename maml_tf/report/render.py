"""Write a result: metrics.json, table.md and the PNGs, from its records only."""
import os

from maml_tf.report import plots, schema, tables


def write(doc, out, figures=True):
    """Save ``doc`` (a results file) to ``out``/metrics.json and render its table.md and
    PNGs beside it; returns the markdown."""
    os.makedirs(out, exist_ok=True)
    schema.save(os.path.join(out, "metrics.json"), doc)
    text = tables.markdown(doc)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text)
    if figures:
        plots.write(doc, out)
    return text


def rerender(results_dir, figures=True):
    """Render ``results_dir``/metrics.json again (after a change of the renderer)."""
    doc = schema.load(os.path.join(results_dir, "metrics.json"))
    return write(doc, results_dir, figures)
