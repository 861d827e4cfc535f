"""The results summaries: one short line per result row that the paper reports, ours
beside the paper's at the row's headline step, its budget and a link to its table. The
README lists MAML's rows; the reproduction document every method's."""
from maml_tf.report.tables import RL_TITLES, budget_status

HEADER = ["| result (its table) | method | ours | paper | budget |", "|---|---|---|---|---|"]
MAML_METHODS = ("maml", "MAML", "first-order MAML")
DATASETS = {"omniglot": "Omniglot", "mini_imagenet": "MiniImagenet"}


def lines(doc, link, methods=MAML_METHODS):
    """The summary rows of ``doc``: its rows marked ``summary`` of ``methods`` (None: every
    method); ``link``: its table.md, relative to the summary's file."""
    return [line(doc, row, link) for row in doc["rows"]
            if row["summary"] and (methods is None or row["method"] in methods)]


def line(doc, row, link):
    m = row["metric"]
    step = m["headline_step"]
    unit = f" {m['unit']}" if m["unit"] else ""
    what = f"[{title(doc, row)}]({link}), {m['name']}{unit} after {step} step{'s' if step != 1 else ''}"
    # Numbers on generated data check the pipeline; the paper's would invite a comparison.
    paper = reference(row) if doc.get("data", "real") == "real" else "— (pipeline check)"
    return f"| {what} | {row['method']} | {ours(row)} | {paper} | {budget(row)} |"


def title(doc, row):
    if row["kind"] == "classification":
        data = "" if doc.get("data", "real") == "real" else " (synthetic data)"
        return f"{DATASETS[row['settings']['dataset']]}{data} {row['setting']}"
    if row["kind"] == "regression":
        return f"Sinusoid {row['setting'][0]}={row['setting'][1:]}"
    name = RL_TITLES[row["setting"]]
    return name + (", step sizes selected on validation goals" if row.get("step_sizes_selected") else "")


def _number(row, value):
    digits = {"classification": 2, "regression": 3, "rl": 1}[row["kind"]]
    return f"{value:.{digits}f}"


def ours(row):
    m, step = row["metric"], row["metric"]["headline_step"]
    text = f"{_number(row, m['mean'][step])} ± {_number(row, m['ci95'][step])}"
    notes = []
    if "median" in m:
        notes.append(f"median {_number(row, m['median'][step])}")
    if m.get("diverged") and m["diverged"][step]:
        notes.append(f"{m['diverged'][step]} of {m['tasks']} tasks diverged")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def reference(row):
    """The paper's number at the headline step; "about" when the paper gives one value for
    every step (the random baselines); a dash when it reports none at that step."""
    p, step = row["paper"], row["metric"]["headline_step"]
    if p is not None and p["steps"] is None:
        return f"about {p['mean'][0]:g}"
    if p is None or step not in p["steps"]:
        return "—"
    i = p["steps"].index(step)
    return f"{p['mean'][i]:g}" + (f" ± {p['ci95'][i]:g}" if p["ci95"] else "")


def budget(row):
    b = row["budget"]
    if b["iterations"] is None:
        spent = "untrained"
    else:
        spent = f"{b['iterations']:,}"
        if b["iterations"] < b["preset_iterations"]:
            spent += f" of {b['preset_iterations']:,}"
        spent += f" it. × {b['meta_batch_size']} tasks"
    status = budget_status(row)
    return f"{spent}, {row['preset']} preset" + (f" ({status})" if status else "")


def console(row):
    """A row as the ``maml`` command prints it: the metric after 0, 1, 2, ... steps. Where test
    tasks diverged, the median leads, labelled, with how many diverged: their huge or
    infinite errors would make the mean meaningless on its own."""
    m, step = row["metric"], row["metric"]["headline_step"]
    means = _numbers(m["mean"])
    head = f"meta-test {m['name']} {row['setting'] or ''} {row['method']}: "
    tail = f" (step {step}, {m['tasks']} tasks)"
    diverged = list(m.get("diverged") or [0])
    if not max(diverged):
        return head + means + tail
    worst = diverged.index(max(diverged))
    limit = f"{m['name']} above {m['diverged_above']:g} or not finite" if m.get("diverged_above") else "not finite"
    return (head + "median " + _numbers(m["median"]) + tail
            + f"; {max(diverged)} of {m['tasks']} tasks diverged by step {worst} ({limit}), "
            f"mean with them {means}")


def _numbers(values):
    return " ".join(f"{v:.3f}" for v in values)
