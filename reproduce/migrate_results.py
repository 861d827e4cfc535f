"""One-off: convert every results/*/metrics.json of the per-script layouts (schema 1) to
the versioned result schema (maml_tf/report/schema.py) and render it again.

    python reproduce/migrate_results.py
"""
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from maml_tf import presets  # noqa: E402
from maml_tf.report import records, render, schema  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table1(m):
    rows = []
    for r in m["rows"]:
        preset = types.SimpleNamespace(name=r["preset"], **r["settings"])
        preset.setting = r["setting"]
        row = records.classification_percent(
            m["name"], preset, r["preset"], r["accuracy_per_step"], r["ci95_per_step"], r["test_tasks"],
            r["iterations"], r["seconds_per_iteration"],
            {"name": "validation accuracy", "unit": "%",
             "points": [[int(c["iteration"]), 100 * c["accuracy"], 100 * c["ci95"]] for c in r["validation_curve"]],
             "seconds": [c["seconds"] for c in r["validation_curve"]]},
            r.get("training_history"), command=r["command"], machine=r.get("machine"))
        row["settings"], row["machine"] = r["settings"], r.get("machine")
        row["budget"].update(preset_iterations=r["budget_iterations"], seconds=r["seconds"],
                             eval_seconds=r["eval_seconds"])
        assert row["budget"]["paper_iterations"] == r["paper_iterations"]
        assert row["metric"]["mean"][row["metric"]["headline_step"]] == r["accuracy"], r["setting"]
        assert row["metric"]["ci95"][row["metric"]["headline_step"]] == r["ci95"], r["setting"]
        assert (r["paper"] is None) == (row["paper"] is None)
        if r["paper"] is not None:
            assert (row["paper"]["mean"][0], row["paper"]["ci95"][0]) == (r["paper"], r["paper_ci95"])
        rows.append(row)
    return schema.document(m["name"], "classification", rows, command=m["command"], machine=m["machine"],
                           data=m["data"])


def sinusoid(m, name):
    preset = types.SimpleNamespace(name=m["preset"], **m["settings"])
    assert preset.iterations == m["iterations"] and preset.meta_batch_size == m["meta_batch_size"]
    stats = {k: m[k] for k in ("curves", "ci95", "median", "diverged")}
    rows = records.sinusoid(name, preset, stats, m["train_seconds"], m["diverged_mse"], command=m["command"],
                            machine=m["machine"])
    for row in rows:
        row["settings"] = m["settings"]
        old = m["paper"].get(row["method"], {}).get(row["setting"])
        assert (old is None) == (row["paper"] is None)
        if old:
            assert row["paper"]["mean"] == [old[s] for s in ("1", "5", "10")]
    return schema.document(name, "regression", rows, command=m["command"], machine=m["machine"],
                           seconds=m["seconds"])


def rl(m):
    preset = types.SimpleNamespace(name=m["preset"], **m["settings"])
    paper_preset = types.SimpleNamespace(**m["paper_budget"])
    rows = []
    for method in m["returns"]:
        trained = method != "random"
        row = records.rl(
            m["experiment"], preset, paper_preset, method,
            {"mean": m["returns"][method], "ci95": m["ci95"][method], "per_task": m["per_task"][method]},
            m["test_step_sizes"][method], m["iterations"][method] if trained else None,
            m["env_steps"][method], m["seconds"][method], m["training_curve"].get(method, []),
            m["training_history"].get(method) if "training_history" in m else None,
            command=m["command"], machine=m["machine"])
        row["settings"] = m["settings"]
        assert row["paper"]["mean"] == m["paper"][method], method
        assert row["paper"]["note"] == m["paper_notes"].get(method), method
        assert trained or m["iterations"][method] == 0
        rows.append(row)
    return schema.document(m["experiment"], "rl", rows, command=m["command"], machine=m["machine"],
                           environment=m["environment"], paper_budget=m["paper_budget"],
                           eval_seconds=m["eval_seconds"])


def step_sizes(m, name):
    table = presets.NAVIGATION
    config = presets.get(table, m["preset"])
    with open(os.path.join(ROOT, m["checkpoints"], "preset.json")) as f:
        meta_batch = json.load(f)["meta_batch_size"]
    config = types.SimpleNamespace(**{**records.settings(config), "name": m["preset"],
                                      "meta_batch_size": meta_batch, "eval_tasks": m["test_tasks"],
                                      "eval_episodes_per_task": m["episodes_per_task"]})
    rows = []
    own = m["preset_step_sizes"]  # an early file: one list for every method
    for method, result in m["test"].items():
        for label, sizes in (("preset_step_sizes", own[method] if isinstance(own, dict) else own),
                             ("selected_step_sizes", m["selected"][method])):
            row = records.rl(name, config, table["paper"], method, result[label], sizes,
                             m["iterations"][method] if method != "random" else None, summary=label != "preset_step_sizes",
                             command=m["command"], machine=m["machine"], step_sizes_selected=label != "preset_step_sizes")
            assert row["paper"]["mean"] == m["paper"][method]
            rows.append(row)
    search = {k: m[k] for k in ("checkpoints", "candidates", "selection", "validation_tasks", "episodes_per_task",
                                "validation_grid")}
    return schema.document(name, "rl", rows, command=m["command"], machine=m["machine"], seconds=m["seconds"],
                           step_size_search=search)


def convert(name, m):
    if "rows" in m:
        return table1(m)
    if name.startswith("fig3_"):
        return sinusoid(m, name)
    if name.startswith("fig4_step_sizes"):
        return step_sizes(m, name)
    return rl(m)


def main():
    results = os.path.join(ROOT, "results")
    for name in sorted(os.listdir(results)):
        path = os.path.join(results, name, "metrics.json")
        with open(path) as f:
            m = json.load(f)
        if "schema_version" in m:
            continue
        render.write(convert(name, m), os.path.join(results, name))
        print("converted", name)


if __name__ == "__main__":
    main()
