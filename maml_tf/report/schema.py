"""The result schema: one record per result row, one ``metrics.json`` per result.

A record (:func:`record`) is what an experiment's evaluation returns: which experiment,
preset, setting and method; the training budget spent beside the preset's and the
paper's; the metric after 0, 1, 2, ... inner steps with 95% CIs; the paper's numbers
(:mod:`maml_tf.paper`); the command, machine and training history behind it; a curve
seen during training. A results file (:func:`document`) is ``{"schema_version",
"experiment", "kind", "rows": [records], ...shared fields}``; :func:`load` refuses a
file of another version with a message saying what to do.

Optional fields, which files written before them lack and still render without: an RL row's
``per_direction`` (direction tasks), ``movement`` (robots: displacement per episode) and its
curve's ``pre_update_points`` (MAML); an RL file's ``test_directions``.
"""
import json

from maml_tf import reporting

SCHEMA_VERSION = 2  # 1: the per-script layouts of before, without a version field
KINDS = {"classification": ("accuracy", "%"), "regression": ("MSE", ""), "rl": ("return", "")}
RECORD_FIELDS = ("experiment", "kind", "preset", "setting", "method", "budget", "metric", "paper",
                 "command", "machine", "training_history", "curve", "settings", "summary")


class SchemaError(ValueError):
    """A results file this version of maml_tf cannot read."""


def metric(kind, mean, ci95, tasks, headline_step, **extra):
    """Per-step results: ``mean[k]`` and ``ci95[k]`` after k inner steps over ``tasks``
    test tasks; ``headline_step`` is the step a summary quotes. ``extra``: optional
    ``median``, ``diverged`` (tasks per step), ``diverged_above``, ``per_task``."""
    name, unit = KINDS[kind]
    return {"name": name, "unit": unit, "mean": [float(v) for v in mean], "ci95": [float(v) for v in ci95],
            "tasks": int(tasks), "headline_step": int(headline_step), **extra}


def budget(iterations, preset_iterations, paper_iterations, meta_batch_size, smaller_than_paper=(), **extra):
    """Training spent: ``iterations`` done (None: nothing to train), the preset's and the
    paper's; ``smaller_than_paper`` names the preset fields below the paper's. ``extra``:
    e.g. ``seconds``, ``seconds_per_iteration``, ``env_steps``, ``eval_seconds``."""
    return {"iterations": iterations, "preset_iterations": preset_iterations,
            "paper_iterations": paper_iterations, "meta_batch_size": meta_batch_size,
            "smaller_than_paper": list(smaller_than_paper), **extra}


def record(experiment, kind, preset, setting, method, budget, metric, paper=None, command=None,
           machine=None, training_history=(), curve=None, settings=None, summary=True, **extra):
    """One result row. ``curve``: ``{"name", "points": [[iteration, value, ci95 or None], ...]}``
    seen during training (validation accuracy, training return); ``settings``: the preset's
    hyperparameters; ``summary``: whether the README's summary lists the row. ``command`` and
    ``machine`` default to this process's; ``training_history`` None: not kept (older runs)."""
    if kind not in KINDS:
        raise SchemaError(f"kind {kind!r} is not one of {', '.join(KINDS)}.")
    return {"experiment": experiment, "kind": kind, "preset": preset, "setting": setting, "method": method,
            "budget": budget, "metric": metric, "paper": paper,
            "command": command if command is not None else reporting.command(),
            "machine": machine if machine is not None else reporting.machine(),
            "training_history": None if training_history is None else list(training_history), "curve": curve,
            "settings": settings, "summary": summary, **extra}


def document(experiment, kind, rows, **shared):
    """A results file: the rows and what they share (command, machine, data, notes)."""
    return {"schema_version": SCHEMA_VERSION, "experiment": experiment, "kind": kind, "rows": list(rows),
            **shared}


def validate(doc, where="results"):
    """``doc`` itself when it is a results file of this schema version; else a SchemaError
    naming ``where`` and what to do."""
    if not isinstance(doc, dict) or "rows" not in doc and "schema_version" not in doc:
        raise SchemaError(f"{where} is not a results file (no schema_version, no rows).")
    version = doc.get("schema_version", 1)
    if version != SCHEMA_VERSION:
        raise SchemaError(f"{where} has result schema version {version}; this maml_tf reads version "
                          f"{SCHEMA_VERSION}: re-run the command it names to rewrite it, or use the "
                          "maml_tf version that wrote it.")
    for i, row in enumerate(doc["rows"]):
        missing = [f for f in RECORD_FIELDS if f not in row]
        if missing:
            raise SchemaError(f"{where}, row {i}: missing field(s) {', '.join(missing)}.")
        if row["kind"] not in KINDS:
            raise SchemaError(f"{where}, row {i}: kind {row['kind']!r} is not one of {', '.join(KINDS)}.")
        m = row["metric"]
        if len(m["mean"]) != len(m["ci95"]) or not 0 <= m["headline_step"] < len(m["mean"]):
            raise SchemaError(f"{where}, row {i}: metric needs as many ci95 as means and a headline "
                              "step among them.")
    return doc


def load(path):
    """The validated results file at ``path``."""
    with open(path) as f:
        try:
            doc = json.load(f)
        except ValueError as error:
            raise SchemaError(f"{path} is not JSON ({error}).") from None
    return validate(doc, path)


def save(path, doc):
    """Write a validated results file (non-finite numbers as JSON's Infinity / NaN)."""
    reporting.write_json(path, validate(doc, path))


def merge_rows(doc, rows, key=("setting", "method")):
    """``doc``'s rows with each of ``rows`` replacing the row of the same ``key``."""
    new = {tuple(r[k] for k in key) for r in rows}
    return [r for r in doc["rows"] if tuple(r[k] for k in key) not in new] + list(rows)
