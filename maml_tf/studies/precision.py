"""Can Table 1 rows meta-train in mixed bfloat16 without losing accuracy, and how much faster?

The issue (31) asks, before any Table 1 row uses ``precision="mixed_bfloat16"``, for evidence on
Omniglot 5-way 1-shot and MiniImagenet 5-way 1-shot (paper presets, same seed): both precisions
trained to the same budget and meta-tested on the same test tasks, the seconds per iteration of
each, and how far the bfloat16 meta-gradient departs from float32's (relative L2 and cosine, per
layer too) on the same weights and meta-batch, at initialisation and at a trained checkpoint.
A side may reuse an existing run directory of the same preset (copied into the study's run
directory, never trained again there): the committed MiniImagenet paper run is float32 at 2,000.
"""
import dataclasses
import os

from maml_tf.studies import training_verbose

PRECISIONS = ("float32", "mixed_bfloat16")
TASKS = ("omniglot", "mini_imagenet")
SETTING = "5way1shot"
DEPARTURE_SEED, NOISE_SEED = 40_001, 40_002  # the fixed meta-batches of the departure, of its noise scale
# What the departure measures against float32's meta-gradient: bf16's, and as scales first
# order's and float32's own at the weights rounded to bfloat16 (a 2^-8 relative perturbation:
# how sensitive the meta-gradient is to a change of bfloat16's size).
SCALES = {"bf16": "mixed_bfloat16", "first_order": "first_order", "rounded_weights": "rounded_weights"}
TEST_FILE = "precision_test.json"  # <side>/: its meta-test, kept so that a resumed study does not redo it
CHECKPOINTS = {"omniglot": os.path.join("checkpoints", "table1_omniglot", "paper", SETTING),
               "mini_imagenet": os.path.join("checkpoints", "table1_miniimagenet", "paper", SETTING)}


@dataclasses.dataclass(frozen=True)
class Preset:
    """The study's budget: each task's paper 5way1shot preset with the fields of ``changes``
    replaced (the same for both precisions), ``reuse`` ``((task, precision, run_dir), ...)``."""
    name: str
    tasks: tuple = TASKS
    changes: tuple = ()               # ((task, ((field, value), ...)), ...)
    eval_tasks: int = 600             # fixed test tasks, the same for both precisions
    reuse: tuple = ()
    departure_batches: int = 3        # fixed training meta-batches of the departure
    departure_checkpoints: tuple = tuple(CHECKPOINTS.items())  # (task, trained run_dir); absent: skipped
    timing_rounds: int = 3            # in-process timing, precisions alternating (0: none)
    timing_steps: int = 3             # meta-iterations per precision and round

    def config(self, task, precision):
        """The experiment preset of one side."""
        from maml_tf.experiments import registry
        return dataclasses.replace(registry.preset(task, "paper", SETTING), precision=precision,
                                   **dict(dict(self.changes).get(task, ())))


PRESETS = {
    # Omniglot: 1,000 iterations of the paper's meta-batch 32 (the paper: 60,000), validation
    # every 100; MiniImagenet: 2,000 of meta-batch 4 (the paper: 60,000), as the committed
    # float32 paper run, which is reused.
    "full": Preset("full", changes=(("omniglot", (("iterations", 1_000), ("steps_per_epoch", 100))),
                                    ("mini_imagenet", (("iterations", 2_000),))),
                   reuse=(("mini_imagenet", "float32", CHECKPOINTS["mini_imagenet"]),)),
    "quick": Preset("quick", tasks=("omniglot",), eval_tasks=200, departure_batches=2,
                    changes=(("omniglot", (("iterations", 200), ("steps_per_epoch", 100),
                                           ("validation_tasks", 100))),)),
    "smoke": Preset("smoke", tasks=("omniglot",), eval_tasks=8, departure_batches=1, departure_checkpoints=(),
                    timing_rounds=1, timing_steps=1,
                    changes=(("omniglot", (("iterations", 4), ("steps_per_epoch", 2), ("meta_batch_size", 2),
                                           ("validation_tasks", 4), ("eval_tasks", 8))),)),
}


def summary(metrics):
    """The README's line, from the answer."""
    from maml_tf.studies import precision_page
    return precision_page.summary(metrics)


def run(preset, run_dir, out, time_limit=None, verbose=1, echo=print):
    """Measure the meta-gradient departure, train both precisions of every task (resuming from
    ``run_dir``; training stops at the first checkpoint past ``time_limit`` minutes), meta-test
    the sides that reached the budget, write ``out``. Returns the metrics."""
    from maml_tf import reporting
    from maml_tf.experiments import base
    from maml_tf.studies import precision_page
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    metrics = dict(study="precision", preset=preset.name, budget=dataclasses.asdict(preset), tasks={},
                   command=reporting.command(), machine=reporting.machine())
    deadline = base.Deadline.of(time_limit)  # training only: the measurements before it always run
    for task in preset.tasks:
        source = dict(preset.departure_checkpoints).get(task)
        metrics["tasks"][task] = {"config": dataclasses.asdict(preset.config(task, "float32")), "departure": measured(
            os.path.join(run_dir, task, "departure.json"), {"batches": preset.departure_batches, "checkpoint": source},
            lambda: departure(task, preset, echo))}
        if preset.timing_rounds:
            metrics["tasks"][task]["timing"] = measured(
                os.path.join(run_dir, task, "timing.json"), {"rounds": preset.timing_rounds, "steps": preset.timing_steps},
                lambda: timing(task, preset, echo))
        precision_page.write(metrics, out)  # the departure is on the page before the long trainings
    for task in preset.tasks:
        metrics["tasks"][task]["sides"] = {
            p: train_and_test(task, p, preset, os.path.join(run_dir, task, p), deadline, verbose, echo)
            for p in PRECISIONS}
        metrics["tasks"][task]["comparison"] = precision_page.compare(metrics["tasks"][task]["sides"])
        precision_page.write(metrics, out)
    metrics["answer"] = precision_page.answer(metrics)
    precision_page.write(metrics, out)
    echo(f"wrote {out}")
    return metrics


def measured(path, key, measure):
    """``measure()``, kept in ``path`` with ``key`` (what it was measured with), so that a resumed
    study reads it back instead of measuring again."""
    import json

    from maml_tf import reporting
    if os.path.exists(path):
        with open(path) as f:
            kept = json.load(f)
        if kept.get("key") == key:
            return kept["result"]
    result = measure()
    reporting.write_json(path, {"key": key, "result": result})
    return result


# ----------------------------------------------------------------------------- training
def train_and_test(task, precision, preset, side_dir, deadline, verbose, echo):
    """One side: train (or copy the reused run in once), then meta-test at the budget."""
    import shutil
    import time

    from maml_tf.experiments import classification, registry
    from maml_tf.experiments.runs import RunDirectory
    config = preset.config(task, precision)
    reused = dict(((t, p), path) for t, p, path in preset.reuse).get((task, precision))
    if reused and not os.path.exists(os.path.join(side_dir, "run.json")):
        shutil.copytree(reused, side_dir, dirs_exist_ok=True)
        echo(f"{task} {precision}: copied the existing run {reused} ({RunDirectory(side_dir).iteration('maml')} "
             "iterations)")
    if reused and RunDirectory(side_dir).iteration("maml") > config.iterations:
        # A run trained past the budget would compare unequal budgets: refuse, never meta-test it.
        raise ValueError(f"{side_dir} (copied from {reused}) is at iteration {RunDirectory(side_dir).iteration('maml')}, "
                         f"past the study's {config.iterations}: delete {side_dir} and copy in a checkpoint of "
                         f"iteration {config.iterations}, or train the {precision} side here (drop its reuse).")
    experiment = registry.create(task, "paper", SETTING, run_dir=side_dir, verbose=training_verbose(verbose),
                                 precision=precision, **dict(dict(preset.changes).get(task, ())))
    if not deadline.passed():
        started = time.time()
        experiment.train(time_limit=deadline)
        echo(f"{task} {precision}: trained to {RunDirectory(side_dir).iteration('maml')}/{config.iterations} "
             f"({time.time() - started:.0f} s)")
    done = RunDirectory(side_dir).iteration("maml")
    side = {"precision": precision, "run_dir": side_dir, "iterations": done, "reused_from": reused,
            "seconds_per_iteration": classification.seconds_per_iteration(side_dir),
            "curve": classification.validation_curve(side_dir),
            "training_history": RunDirectory(side_dir).training_history()}
    if done < config.iterations:
        echo(f"{task} {precision}: at {done}/{config.iterations}, not meta-tested (run again to resume)")
        return side
    side["test"] = meta_test(experiment, config, preset, side_dir)
    echo(f"{task} {precision}: meta-test {side['test']['accuracy']:.4f} +- {side['test']['ci95']:.4f} "
         f"({side['test']['num_tasks']} tasks, {done} iterations)")
    return side


def meta_test(experiment, config, preset, side_dir):
    """Accuracy on ``preset.eval_tasks`` fixed test tasks (the experiments' test seed, so the
    same tasks for both sides), per task kept for the paired difference; cached per iteration."""
    import json

    from maml_tf import reporting
    from maml_tf.experiments import classification
    from maml_tf.experiments.runs import RunDirectory
    path = os.path.join(side_dir, TEST_FILE)
    key = {"iteration": RunDirectory(side_dir).iteration("maml"), "eval_tasks": preset.eval_tasks}
    if os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if {k: cached.get(k) for k in key} == key:
            return cached
    maml = experiment.learners()["maml"]
    distribution = classification.tasks(config, "test")
    step = config.eval_inner_steps
    result = classification.meta_test(maml, distribution, preset.eval_tasks, step,
                                      classification.TEST_SEED + config.seed)["accuracy"]
    test = {**key, "steps": step, "accuracy": float(result["mean"][step]), "ci95": float(result["ci95"][step]),
            "num_tasks": int(len(result["per_task"])), "per_task": [float(v) for v in result["per_task"][:, step]]}
    reporting.write_json(path, test)
    return test


# ----------------------------------------------------------------------------- the meta-gradient
def _models(task, preset, echo):
    """(name, iteration, float32 MAML) to measure: initialisation (the preset's seed) and the
    trained checkpoint of ``preset.departure_checkpoints`` (copied first: a training may write there)."""
    import shutil
    import tempfile

    import keras

    from maml_tf.experiments import classification, registry
    from maml_tf.experiments.runs import RunDirectory
    config = preset.config(task, "float32")
    keras.utils.set_random_seed(config.seed)
    models = [("initialisation", 0, classification.build_maml(config))]
    source = dict(preset.departure_checkpoints).get(task)
    if source and os.path.exists(os.path.join(source, "run.json")):
        copy = os.path.join(tempfile.mkdtemp(prefix="precision_"), SETTING)
        shutil.copytree(source, copy)
        models.append(("trained", RunDirectory(copy).iteration("maml"), registry.open(copy).learners()["maml"]))
    elif source:
        echo(f"{task}: no checkpoint at {source}: the departure at initialisation only")
    return config, models


def departure(task, preset, echo):
    """How far the mixed_bfloat16 meta-gradient is from float32's on the same weights and fixed
    training meta-batches: relative L2 and cosine (whole and per layer), beside three scales of
    the same quantity (:data:`SCALES` and float32 on another meta-batch)."""
    import numpy as np
    import tensorflow as tf

    from maml_tf.experiments import classification
    config, models = _models(task, preset, echo)
    distribution = classification.tasks(config, "train")
    batches = [distribution.sample(config.meta_batch_size, seed=[DEPARTURE_SEED, b])
               for b in range(preset.departure_batches)]
    noise_batch = distribution.sample(config.meta_batch_size, seed=[NOISE_SEED, 0])
    out = {"meta_batch_size": config.meta_batch_size, "inner_steps": config.inner_steps,
           "batches": preset.departure_batches, "models": {}}
    for name, iteration, reference in models:
        weights = reference.model.get_weights()
        mixed = classification.build_maml(dataclasses.replace(config, precision="mixed_bfloat16"))
        mixed.model.set_weights(weights)
        rounded = classification.build_maml(config)  # float32, its weights moved to bfloat16's grid
        rounded.model.set_weights([np.asarray(tf.cast(tf.cast(w, tf.bfloat16), w.dtype)) for w in weights])
        layers = [v.path.rsplit("/", 1)[0] for v in reference.trainable_variables]
        gradient = {key: tf.function(lambda e, m=m, fo=fo: m.meta_gradients(e, first_order=fo)[1])
                    for key, m, fo in (("float32", reference, None), ("mixed_bfloat16", mixed, None),
                                       ("first_order", reference, True), ("rounded_weights", rounded, None))}
        rows = []
        for episodes in batches:
            g = {key: [np.asarray(t, np.float64) for t in fn(episodes)] for key, fn in gradient.items()}
            rows.append({key: compare(g[source], g["float32"], layers) for key, source in SCALES.items()})
        other = [np.asarray(t, np.float64) for t in gradient["float32"](noise_batch)]
        noise = compare(other, [np.asarray(t, np.float64) for t in gradient["float32"](batches[0])], layers)
        model = {"iteration": int(iteration), "noise_other_batch": _whole(noise)}
        for key in SCALES:
            model[key] = {stat: float(np.mean([r[key][stat] for r in rows])) for stat in ("relative_l2", "cosine")}
            model[key]["per_batch"] = [_whole(r[key]) for r in rows]
        model["bf16_per_layer"] = {layer: {stat: float(np.mean([r["bf16"]["per_layer"][layer][stat] for r in rows]))
                                           for stat in ("relative_l2", "cosine")}
                                   for layer in rows[0]["bf16"]["per_layer"]}
        out["models"][name] = model
        echo(f"{task} {name} (iteration {iteration}): bf16 vs float32 meta-gradient relative L2 "
             f"{model['bf16']['relative_l2']:.4f}, cosine {model['bf16']['cosine']:.5f} (float32 at the weights "
             f"rounded to bf16: {model['rounded_weights']['relative_l2']:.3f}; first order vs second: "
             f"{model['first_order']['relative_l2']:.3f}; another meta-batch: {noise['relative_l2']:.3f})")
    return out


def compare(grads, reference, layers):
    """Relative L2 ``||g - r|| / ||r||`` and cosine of two gradient lists, whole and per layer."""
    import numpy as np

    def stats(a, b):
        a, b = np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in b])
        return {"relative_l2": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
                "cosine": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))}

    per_layer = {}
    for layer in dict.fromkeys(layers):
        picked = [i for i, name in enumerate(layers) if name == layer]
        per_layer[layer] = stats([grads[i] for i in picked], [reference[i] for i in picked])
    return {**stats(grads, reference), "per_layer": per_layer}


def _whole(stats):
    return {k: stats[k] for k in ("relative_l2", "cosine")}


def timing(task, preset, echo):
    """Seconds per meta-iteration of both precisions in this process, alternating in rounds on
    one meta-batch, so that both see the same load (the trainings' own seconds may not)."""
    import time

    import keras
    import numpy as np
    import tensorflow as tf

    from maml_tf.experiments import classification
    steps = {}
    for precision in PRECISIONS:
        config = preset.config(task, precision)
        keras.utils.set_random_seed(config.seed)
        maml = classification.build_maml(config)
        maml.optimizer.build(maml.trainable_variables)

        def step(episodes, maml=maml):
            loss, grads = maml.meta_gradients(episodes)
            maml.optimizer.apply(grads, maml.trainable_variables)
            return loss
        steps[precision] = tf.function(step)
    episodes = classification.tasks(config, "train").sample(config.meta_batch_size, seed=[DEPARTURE_SEED, 0])
    for fn in steps.values():
        float(fn(episodes))  # trace and compile
    times = {p: [] for p in PRECISIONS}
    for _ in range(preset.timing_rounds):
        for precision, fn in steps.items():
            for _ in range(preset.timing_steps):
                started = time.perf_counter()
                float(fn(episodes))
                times[precision].append(time.perf_counter() - started)
    out = {p: float(np.median(t)) for p, t in times.items()}
    out["ratio"] = out["mixed_bfloat16"] / out["float32"]
    out["steps"] = preset.timing_rounds * preset.timing_steps
    out["load_average"] = list(os.getloadavg())
    echo(f"{task} timing: float32 {out['float32']:.3f} s, mixed_bfloat16 {out['mixed_bfloat16']:.3f} s per "
         f"meta-iteration (ratio {out['ratio']:.2f}, load {out['load_average'][0]:.1f})")
    return out
