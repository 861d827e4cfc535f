"""A results file's ``table.md``, from its records only: one layout per experiment kind
(Table 1 classification, Figure 3 regression, Figures 4 / 5 RL, the Figure 4 step-size
search), sharing the cells, budget marks and command histories."""
from maml_tf.reporting import as_typed

RL_TITLES = {"navigation": "Figure 4: 2D navigation", "cheetah-vel": "Figure 5: half-cheetah, goal velocity",
             "cheetah-dir": "Figure 5: half-cheetah, goal direction", "ant-vel": "Figure 5: ant, goal velocity",
             "ant-dir": "Figure 5: ant, goal direction"}


def markdown(doc):
    """The table.md of a results file (:func:`maml_tf.report.schema.validate`'d)."""
    if doc["kind"] == "classification":
        return _lines(classification(doc))
    if doc["kind"] == "regression":
        return _lines(regression(doc))
    return _lines(step_size_search(doc) if "step_size_search" in doc else rl(doc))


def _lines(lines):
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- shared
def budget_status(row):
    """``"unfinished run"`` (fewer iterations than the preset's: the same command resumes),
    ``"reduced budget"`` (a budget smaller than the paper's) or ``""``."""
    b = row["budget"]
    if b["iterations"] is not None and b["iterations"] < b["preset_iterations"]:
        return "unfinished run"
    return "reduced budget" if b["smaller_than_paper"] else ""


def mean_ci(row, step, digits):
    m = row["metric"]
    return f"{m['mean'][step]:.{digits}f} ± {m['ci95'][step]:.{digits}f}"


def paper_values(row):
    """``-40.4 / -11.7 / -3.3 / -3.2``: the paper's numbers of a row, as the paper prints them."""
    return " / ".join(f"{v:g}" for v in row["paper"]["mean"])


def step_sizes(sizes):
    return "/".join(f"{a:g}" for a in sizes)


def history(row):
    """The training runs behind a row's checkpoint (see :func:`history_lines`)."""
    return history_lines(row["training_history"] or [], row["budget"]["iterations"] or 0)


def history_lines(runs, iterations):
    """Markdown lines ``- a -> b: `command` (date)`` for a run at ``iterations``, with a
    line for each span no recorded command covers (trained before the history was kept,
    or by a run killed before it recorded itself)."""
    lines, reached = [], 0
    for run in runs:
        if run["from_iteration"] > reached:
            lines.append(_unrecorded(reached, run["from_iteration"]))
        where = f", {run['machine']}" if run.get("machine") else ""
        lines.append(f"- {run['from_iteration']:,} -> {run['to_iteration']:,}: `{as_typed(run['command'])}` ({run['date']}{where})")
        reached = max(reached, run["to_iteration"])
    if iterations > reached:
        lines.append(_unrecorded(reached, iterations))
    return lines


def _unrecorded(first, last):
    return (f"- {first:,} -> {last:,}: command not recorded (trained before the checkpoint "
            "directory kept its history, or by a run killed before it recorded itself)")


def machine(doc):
    return doc["machine"] or {}


def trained_on(row, doc):
    """The CPUs a Table 1 row was trained on, as its training history recorded them; older
    rows (no machine in their history): the machine that meta-tested them."""
    cpus = [run["machine"].split(",")[0] for run in row.get("training_history") or [] if run.get("machine")]
    return ", ".join(dict.fromkeys(cpus)) or (row.get("machine") or machine(doc)).get("cpu", "—")


# ----------------------------------------------------------------------------- Table 1
def classification(doc):
    rows = doc["rows"]
    m = machine(doc)
    lines = [
        f"# Table 1, {doc['experiment']}: meta-test accuracy (%), mean ± 95% CI over fixed test tasks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, no GPU (the last evaluation; each row's training machine is "
        "its last column: seconds per iteration compare only within one machine). Each row's commands are "
        "listed below the table. "
        "Rows trained for fewer iterations than the paper are marked in bold: an unfinished run "
        "(resumable: the same command continues from its checkpoint) or a reduced-budget preset.",
        "",
    ] + ([f"**Data: {doc['data']}.** These numbers check the pipeline, not the paper.", ""]
         if doc.get("data", "real") != "real" else []) + (
        ["Preset `code`: the authors' code where it departs from the paper's text: cross-entropy "
         "summed over a task's examples and divided by K (alpha acts on N times the mean loss's "
         "gradient), batch norm with an offset only (tf.contrib's default) and not adapted in the "
         "inner loop, the Omniglot conv head drawn from N(0, 1) and the FC net's kernels with std "
         "0.01, 10 steps at test (every step's accuracy is listed below).", ""]
        if any(r["preset"] in ("code", "authors") for r in rows) else []) + (
        ["Preset `authors`: the code preset on the authors' Omniglot images, 28x28 by nearest-neighbour "
         "sampling and so binary (their resize script asked PIL for LANCZOS, which PIL ignores for the "
         "1-bit PNGs), where the other presets resize with antialiased lanczos3.", ""]
        if any(r["preset"] == "authors" for r in rows) else []) + [
        "| setting | method | ours | paper | iterations (paper) | meta-batch | steps at test | test tasks "
        "| s / iteration | trained on |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, metric = r["budget"], r["metric"]
        spent = f"{b['iterations']:,} ({b['paper_iterations']:,})"
        status = budget_status(r)
        if status:
            spent = f"**{spent}, {status}**"
        spi = f"{b['seconds_per_iteration']:.3f}" if b.get("seconds_per_iteration") else "—"
        lines.append(f"| {r['setting']} | {r['method']} | {mean_ci(r, metric['headline_step'], 2)} | "
                     f"{paper_accuracy(r)} | {spent} | {b['meta_batch_size']} | "
                     f"{metric['headline_step']} | {metric['tasks']} | {spi} | {trained_on(r, doc)} |")
    lines += first_order_comparison(rows)
    lines += ["", "Accuracy after 0, 1, 2, ... inner steps at meta-test:", ""]
    for r in rows:
        lines.append(f"- {r['setting']} ({r['method']}): " + ", ".join(f"{a:.1f}" for a in r["metric"]["mean"]))
    lines += ["", "Commands: each row's evaluation, then the training runs behind its checkpoint."]
    for r in rows:
        lines += ["", f"{r['setting']} ({r['method']}), evaluated by `{as_typed(r['command'])}`:", ""] + history(r)
    return lines


def paper_accuracy(row):
    p = row["paper"]
    return "—" if p is None else f"{p['mean'][0]} ± {p['ci95'][0]}"


def first_order_comparison(rows):
    """Section 5.2: first-order MAML beside second order (the paper: similar accuracy,
    about 33% less computation). One line per setting run both ways."""
    by_setting = {r["setting"]: r for r in rows}
    pairs = [(by_setting[s[:-3]], r) for s, r in by_setting.items() if s.endswith("_fo") and s[:-3] in by_setting]
    if not pairs:
        return []
    lines = ["", "First versus second order (same data and test tasks; seconds per iteration are the "
             "median epoch of each run, which may have shared the machine with other work: the "
             "like-for-like time ratio, first and second order in alternating rounds of one process, "
             "is `benchmarks/bench_first_order.py`'s table in benchmarks/README.md):", "",
             "| setting | iterations | accuracy SO | accuracy FO | s / it. SO | s / it. FO | FO / SO time |",
             "|---|---|---|---|---|---|---|"]
    for so, fo in pairs:
        spi = [so["budget"].get("seconds_per_iteration"), fo["budget"].get("seconds_per_iteration")]
        ratio = f"{spi[1] / spi[0]:.2f}" if all(spi) else "—"
        lines.append(f"| {so['setting']} | {so['budget']['iterations']:,} / {fo['budget']['iterations']:,} | "
                     f"{mean_ci(so, so['metric']['headline_step'], 2)} | "
                     f"{mean_ci(fo, fo['metric']['headline_step'], 2)} | "
                     + " | ".join(f"{x:.3f}" if x else "—" for x in spi) + f" | {ratio} |")
    return lines


# ----------------------------------------------------------------------------- Figure 3
def regression(doc):
    rows = doc["rows"]
    first = rows[0]
    s, b = first["settings"], first["budget"]
    lines = [
        "# Sinusoid regression (Figure 3), MSE after 1 / 5 / 10 gradient steps",
        "",
        f"Command: `{as_typed(doc['command'])}`  ",
        f"Preset `{first['preset']}`: inner_lr {s['inner_lr']}, {s['inner_steps']} inner step(s), "
        f"K={s['support_shots']} in training"
        + ("; the authors' weights: kernels truncated normal (std 0.01), biases zero"
           if s.get("authors_layers") else "") + ".  ",
        f"Budget: {b['iterations']:,} meta-iterations (paper: {b['paper_iterations']:,}), meta-batch "
        f"{b['meta_batch_size']}; {first['metric']['tasks']} test tasks per K, "
        f"{s['eval_query_points']} query points each; mean ± 95% CI over tasks "
        "(median in brackets). The oracle is not fine-tuned (flat, as in the paper).  ",
        f"Machine: {machine(doc)['cpu']}, {machine(doc)['cores']} cores, no GPU"
        + (f"; {doc['seconds']:.0f} s in total." if doc.get("seconds") is not None else "."),
        "",
        "| K | method | ours: 1 step | 5 steps | 10 steps | paper: 1 / 5 / 10 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metric"]
        cells = [f"{mse(m['mean'][k])} ± {mse(m['ci95'][k])} (median {mse(m['median'][k])})"
                 if k < len(m["mean"]) else "—" for k in (1, 5, 10)]
        paper = " / ".join(f"{v:.2f}" for v in r["paper"]["mean"]) if r["paper"] else "—"
        lines.append(f"| {r['setting'][1:]} | {r['method']} | " + " | ".join(cells) + f" | {paper} |")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    notes = [f"{r['method']} K={r['setting'][1:]}: " + " / ".join(str(r["metric"]["diverged"][k]) for k in (1, 5, 10))
             for method in methods for r in rows
             if r["method"] == method and any(r["metric"].get("diverged", ()))]
    if notes:
        lines += ["", f"Test tasks that diverged (MSE above {first['metric']['diverged_above']:g} or not finite) "
                  f"after 1 / 5 / 10 steps, of {first['metric']['tasks']}: " + "; ".join(notes)
                  + ". They dominate the mean; the median is robust to them."]
    return lines


def mse(value):
    return f"{value:.3f}" if 1e-2 <= abs(value) < 1e4 else f"{value:.2e}"


# ----------------------------------------------------------------------------- Figures 4 and 5
def format_step_sizes(by_method):
    """``0.1, 0.05`` if every method fine-tunes alike, else ``maml 0.1/0.05, pretrained ...``."""
    distinct = {tuple(sizes) for sizes in by_method.values()}
    if len(distinct) == 1:
        return ", ".join(f"{a:g}" for a in distinct.pop())
    return ", ".join(f"{method} {step_sizes(sizes)}" for method, sizes in by_method.items())


def rl(doc):
    rows = doc["rows"]
    s, paper_budget, m = rows[0]["settings"], doc["paper_budget"], machine(doc)
    steps = len(rows[0]["metric"]["mean"])
    sizes = format_step_sizes({r["method"]: r["test_step_sizes"] for r in rows})
    trained = [r for r in rows if r["budget"]["iterations"] is not None]
    lines = [
        f"# {RL_TITLES[rows[0]['setting']]}: mean return after 0..{steps - 1} gradient steps",
        "",
        f"Command: `{as_typed(doc['command'])}`  ",
        f"Preset `{rows[0]['preset']}`: {s['iterations']} iterations of {s['meta_batch_size']} tasks x "
        f"{s['episodes_per_task']} trajectories (paper: {paper_budget['iterations']} of "
        f"{paper_budget['meta_batch_size']} x {paper_budget['episodes_per_task']}; the pretrained and oracle "
        "baselines train as many TRPO iterations on as many tasks, a budget the paper does not give); "
        f"test: {s['eval_tasks']} fixed tasks x {s['eval_episodes_per_task']} trajectories (paper: "
        f"{paper_budget['eval_tasks']} x {paper_budget['eval_episodes_per_task']}), inner step sizes "
        f"{sizes} (the last repeated; MAML meta-trained with "
        f"{s['inner_lr']:g}); TRPO Hessian-vector products {s['hvp']}; "
        + ("trajectories counted as a budget of steps per task (trajectories x horizon), an episode that "
           "ends early restarting within it, returns averaged over complete episodes (rllab's sampler); "
           if s.get("sampling") == "steps" else "")
        + ("trajectories counted as a budget of steps (trajectories x horizon) per task, one stream of "
           "episodes back to back per task until the complete episodes of all tasks fill it, each task's "
           "unfinished last episode dropped (rllab's VectorizedSampler); " if s.get("sampling") == "stream" else "")
        + ("at test every episode started within that budget runs to its end and none is dropped "
           "(the authors' test sampler); " if s.get("eval_sampling") == "complete" else "")
        + ("the test tasks are the authors' test script's (maml_rl, np.random.seed(1)); "
           if s.get("eval_task_source") == "authors" else "")
        + "mean ± 95% CI over tasks. "
        "Bold: fewer iterations than the preset's (unfinished: the same command resumes) or a "
        "budget smaller than the paper's.  ",
        f"Environment: {doc['environment']}.  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['gpus'] or 'no'} GPU; training seconds "
        + ", ".join(f"{r['method']} {r['budget']['seconds']:.0f}" for r in trained)
        + f"; meta-test {doc['eval_seconds']:.0f} s.",
        "",
        "| method | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in range(steps))
        + " | paper | iterations | env steps |",
        "|---|" + "---|" * steps + "---|---|---|",
    ]
    for r in rows:
        cells = [mean_ci(r, k, 1) for k in range(steps)]
        note = r["paper"]["note"]
        iterations = "—" if r["budget"]["iterations"] is None else str(r["budget"]["iterations"])
        status = budget_status(r)
        if status:
            iterations = f"**{iterations}, {status}**"
        lines.append(f"| {r['method']} | " + " | ".join(cells) + f" | {paper_values(r)}"
                     + (f" ({note})" if note else "") + f" | {iterations} | {r['budget']['env_steps']:,} |")
    lines += per_direction(rows, steps) + low_returns(doc) + movement(rows, steps) + training_curve_link(doc)
    recorded = [r for r in rows if r["training_history"] is not None]
    if recorded:  # results written before the history was kept have none
        lines += ["", "Training runs behind each checkpoint (the command above evaluated them all):"]
        for r in recorded:
            lines += ["", f"{r['method']}:", ""] + history(r)
    return lines


def per_direction(rows, steps):
    """The mean return over the forward and over the backward test tasks (direction tasks;
    results written before rows kept them have none)."""
    kept = [r for r in rows if r.get("per_direction")]
    if not kept:
        return []
    lines = ["", "Per direction (mean return over the test tasks of each direction):", "",
             "| method | direction | tasks | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in range(steps))
             + " |", "|---|---|---|" + "---|" * steps]
    for r in kept:
        for name, part in r["per_direction"].items():
            cells = ["—"] * steps if part["mean"] is None else [f"{v:.1f}" for v in part["mean"]]
            lines.append(f"| {r['method']} | {name} | {part['tasks']} | " + " | ".join(cells) + " |")
    return lines


# A direction task's return after one step below this counts as not adapted: the paper's MAML
# averages 293 (half-cheetah), a policy standing still about 0 (the control cost only).
LOW_RETURN = 100


def low_returns(doc):
    """Direction tasks: how many test tasks each method leaves below ``LOW_RETURN`` after one
    step, per direction (pages written with the movement diagnostics, see :func:`movement`)."""
    rows, directions = doc["rows"], doc.get("test_directions")
    if not directions or not any(r.get("movement") for r in rows) or len(rows[0]["metric"]["mean"]) < 2:
        return []
    parts = []
    for r in rows:
        after_one = [task[1] for task in r["metric"]["per_task"]]
        split = ", ".join(f"{name} {sum(v < LOW_RETURN for v, d in zip(after_one, directions) if d == sign)} "
                          f"of {directions.count(sign)}" for name, sign in (("forward", 1.0), ("backward", -1.0)))
        parts.append(f"{r['method']} {sum(v < LOW_RETURN for v in after_one)} of {len(after_one)} ({split})")
    return ["", f"Test tasks with a return below {LOW_RETURN} after 1 step: " + "; ".join(parts) + "."]


def movement(rows, steps):
    """The robot's signed forward displacement per episode (x at its end minus x at its
    start; the observation leaves x out), per method and step: pre-update lines, then a
    table over all test tasks and per direction. Results written before rows kept it: none."""
    kept = [r for r in rows if r.get("movement")]
    if not kept:
        return []

    def cells(part):
        return [f"{part['displacement'][k]:+.2f} / {part['distance'][k]:.2f} / {100 * part['forward'][k]:.0f}%"
                if part["displacement"] is not None else "—" for k in range(steps)]

    lines = ["", "Pre-update policy (0 steps): " + "; ".join(
        f"{r['method']} moves {r['movement']['all']['displacement'][0]:+.2f} m per episode on average "
        f"(|displacement| {r['movement']['all']['distance'][0]:.2f} m, "
        f"{100 * r['movement']['all']['forward'][0]:.0f}% of episodes forward)" for r in kept) + ".",
        "", "Movement per episode: signed forward displacement (m; x at the episode's end minus x at its "
        "start) / its absolute value / episodes moving forward, each task's episode mean averaged over the "
        "test tasks; after adaptation a direction task's robot should move along its direction:", "",
        "| method | direction | tasks | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in range(steps)) + " |",
        "|---|---|---|" + "---|" * steps]
    for r in kept:
        for name, part in r["movement"].items():
            lines.append(f"| {r['method']} | {name} | {part['tasks']} | " + " | ".join(cells(part)) + " |")
    return lines


def training_curve_link(doc):
    """The link to the training-curve PNG, on the pages :func:`maml_tf.report.plots.names` draws it for."""
    from maml_tf.report import plots

    if plots.TRAINING_CURVE not in plots.names(doc):
        return []
    return ["", f"Training curves, return per iteration (MAML: post-update, dashed pre-update; the baselines: "
            f"their training return): [{plots.TRAINING_CURVE}]({plots.TRAINING_CURVE})"]


# ----------------------------------------------------------------------------- Figure 4, step sizes
def selected(row, search):
    """``0.1/0.02 (selected)``, noting a choice at the edge of the candidates."""
    candidates = search["candidates"]
    edge = any(size in (min(candidates[k]), max(candidates[k]))
               for size, k in zip(row["test_step_sizes"], ("first", "later")))
    return step_sizes(row["test_step_sizes"]) + " (selected" + (", at the edge of the candidates)" if edge else ")")


def step_size_search(doc):
    search, m, rows = doc["step_size_search"], machine(doc), doc["rows"]
    iterations = {r["method"]: r["budget"]["iterations"] for r in rows if r["budget"]["iterations"] is not None}
    lines = [
        "# Figure 4, 2D navigation: meta-test step sizes selected on validation goals",
        "",
        f"Command: `{as_typed(doc['command'])}`  ",
        f"Checkpoints `{search['checkpoints']}` (preset `{rows[0]['preset']}`; training iterations "
        + ", ".join(f"{k} {v}" for k, v in iterations.items())
        + "). Candidates: first step " + ", ".join(f"{a:g}" for a in search["candidates"]["first"])
        + "; second and third step " + ", ".join(f"{b:g}" for b in search["candidates"]["later"])
        + f". Selected per method by the {search['selection']} ({search['validation_tasks']} goals, "
        f"drawn with another seed than the test goals), then meta-tested on the {rows[0]['metric']['tasks']} "
        f"fixed test goals; {search['episodes_per_task']} trajectories per step; mean ± 95% CI over goals.  ",
        f"Machine: {m['cpu']}, {m['cores']} cores; {doc['seconds']:.0f} s.",
        "",
        "| method | step sizes | return after 0 / 1 / 2 / 3 steps (test goals) | paper |",
        "|---|---|---|---|",
    ]
    for r in rows:
        p = r["paper"]
        paper = paper_values(r) if p["steps"] is not None and len(p["mean"]) > 1 else f"about {p['mean'][0]:g}"
        sizes = selected(r, search) if r["step_sizes_selected"] else step_sizes(r["test_step_sizes"])
        cells = " / ".join(mean_ci(r, k, 1) for k in range(len(r["metric"]["mean"])))
        lines.append(f"| {r['method']} | {sizes} | {cells} | {paper} |")
    return lines
