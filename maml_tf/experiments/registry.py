"""Experiment and reproduce-target names -> what runs them, and the one default run-directory
layout. Imports no TensorFlow (``maml --help`` stays fast)."""
import dataclasses
import importlib
import os

from maml_tf import presets

RUN_ROOT = "checkpoints"  # default run directories: checkpoints/<result>/<preset>[/<setting>]


class UsageProblem(ValueError):
    """A name or value given by the user that does not exist (``param``: the option it came from)."""

    def __init__(self, message, param=None):
        super().__init__(message)
        self.param = param


@dataclasses.dataclass(frozen=True)
class Spec:
    """An experiment: its class (``module:Class`` under maml_tf.experiments), its presets
    (name -> preset, or setting -> preset for Table 1) and the results/ name of its paper figure."""
    implementation: str
    table: dict
    result_name: str
    has_settings: bool = False


EXPERIMENTS = {
    "sinusoid": Spec("sinusoid:SinusoidExperiment", presets.SINUSOID, "fig3_sinusoid"),
    "omniglot": Spec("classification:ClassificationExperiment", presets.OMNIGLOT, "table1_omniglot", True),
    "mini_imagenet": Spec("classification:ClassificationExperiment", presets.MINI_IMAGENET, "table1_miniimagenet", True),
    "navigation": Spec("rl:RLExperiment", presets.NAVIGATION, "fig4_navigation"),
    **{env: Spec("rl:RLExperiment", table, f"fig5_{env.replace('-', '_')}") for env, table in presets.LOCOMOTION.items()},
}


@dataclasses.dataclass(frozen=True)
class Target:
    """A figure or table of the paper: the experiments it runs (its ``--setting`` choices for
    RL figures), the function of ``maml_tf.experiments.targets`` that runs it, and the
    results/ name it writes (``{experiment}``: the chosen one's result name)."""
    experiments: tuple
    runner: str
    result_name: str = "{experiment}"
    doc: str = ""


TARGETS = {
    "fig3": Target(("sinusoid",), "fig3", doc="Figures 2 and 3: sinusoid regression, MAML vs pretrained vs oracle."),
    "table1-omniglot": Target(("omniglot",), "table1", doc="Table 1, Omniglot: 5/20-way 1/5-shot."),
    "table1-miniimagenet": Target(("mini_imagenet",), "table1", doc="Table 1, MiniImagenet: 5-way 1/5-shot."),
    "fig4": Target(("navigation",), "rl", doc="Figure 4: 2D navigation, MAML vs pretrained, random, oracle."),
    "fig4-step-sizes": Target(("navigation",), "step_sizes", "fig4_step_sizes",
                              doc="Figure 4's meta-test step sizes, selected on validation goals."),
    "fig5": Target(tuple(presets.LOCOMOTION), "rl", doc="Figure 5: half-cheetah and ant locomotion (one task per run)."),
}


@dataclasses.dataclass(frozen=True)
class Study:
    """An open question about MAML answered by experiment: its module under maml_tf.studies
    (``PRESETS`` and ``run``) and the results/ name it writes."""
    module: str
    result_name: str
    doc: str = ""


STUDIES = {
    "first-order": Study("first_order", "first_order_activation",
                         doc="Does first-order MAML still match second order with a smooth activation (SiLU)? "
                             "{ReLU, SiLU} x {first, second order} x seeds on the sinusoid and Omniglot, and "
                             "the dropped second-order term measured along training."),
    "task-switching": Study("task_switching", "task_switching",
                            doc="Can MAML switch back and forth between tasks? Chains A -> B -> A -> C with and "
                                "without reset to the meta-learned weights (sinusoid, Omniglot, 2D navigation)."),
    "precision": Study("precision", "precision",
                       doc="Can Table 1 meta-train in mixed bfloat16? float32 against mixed_bfloat16 on Omniglot and "
                           "MiniImagenet 5-way 1-shot: accuracy on the same test tasks, seconds per iteration, and "
                           "how far the bf16 meta-gradient departs from float32's."),
    "evaluation-suite": Study("evaluation_suite", "evaluation_suite",
                              doc="MAML vs pretrained vs scratch: out of distribution, adaptation speed, "
                                  "sample efficiency, robustness (sinusoid, Omniglot)."),
}


def study(name):
    """The module of study ``name`` (imports no TensorFlow at load)."""
    if name not in STUDIES:
        raise UsageProblem(f"Unknown study {name!r}; choose one of {', '.join(STUDIES) or 'none'}.")
    return importlib.import_module(f"maml_tf.studies.{STUDIES[name].module}")


def study_preset(name, preset_name):
    """The preset ``preset_name`` of study ``name``."""
    table = study(name).PRESETS
    if preset_name not in table:
        raise UsageProblem(f"{preset_name!r} is not a preset of study {name}; choose one of "
                           f"{', '.join(table)}.", "--preset")
    return table[preset_name]


def spec(experiment):
    if experiment not in EXPERIMENTS:
        raise UsageProblem(f"Unknown experiment {experiment!r}; choose one of {', '.join(EXPERIMENTS)}.")
    return EXPERIMENTS[experiment]


def preset_names(experiment):
    s = spec(experiment)
    return sorted(presets.BUDGETS if s.has_settings else s.table)


def settings(experiment):
    """The Table 1 rows of a classification experiment (empty for the others)."""
    s = spec(experiment)
    return list(s.table) if s.has_settings else []


def check_preset_name(experiment, name):
    if name not in preset_names(experiment):
        raise UsageProblem(f"{name!r} is not a preset of {experiment}; choose one of "
                           f"{', '.join(preset_names(experiment))}.", "--preset")


def preset(experiment, name="paper", setting=None):
    """The preset dataclass of ``experiment`` at ``name`` (and ``setting``, Table 1 rows)."""
    s = spec(experiment)
    check_preset_name(experiment, name)
    if not s.has_settings:
        if setting:
            raise UsageProblem(f"{experiment} has no --setting (its presets are {', '.join(preset_names(experiment))}).")
        return s.table[name]
    if setting not in s.table:
        raise UsageProblem(f"{experiment} settings are {', '.join(sorted(s.table))}"
                           + ("" if setting else " (pass one with --setting)") + ".", "--setting")
    return presets.classification(s.table, setting, name)


def paper_preset(experiment, setting=None):
    return preset(experiment, "paper", setting)


def result_name(name, preset_name="paper"):
    """results/<this>: an experiment's or target's figure name, suffixed by a preset other than paper."""
    base = EXPERIMENTS[name].result_name if name in EXPERIMENTS else name
    return base + ("" if preset_name == "paper" else f"_{preset_name}")


def default_run_dir(name, preset_name, setting=None):
    """Where a run of experiment (or result) ``name`` trains unless ``--run-dir`` says otherwise
    (every command and script): ``checkpoints/<figure>/<preset>[/<setting>]``, where the
    committed checkpoints are."""
    figure = EXPERIMENTS[name].result_name if name in EXPERIMENTS else name
    return os.path.join(RUN_ROOT, figure, preset_name, *([setting] if setting else []))


def create(experiment, preset_name="paper", setting=None, run_dir=None, data_dir=None, methods=None,
           verbose=0, **changes):
    """The :class:`~maml_tf.experiments.base.Experiment` of ``experiment`` at a preset;
    ``changes``: preset fields replaced (compute or evaluation ones, e.g. ``task_parallelism``)."""
    config = preset(experiment, preset_name, setting)
    if changes:
        config = dataclasses.replace(config, **changes)
    return _build(experiment, config, run_dir or default_run_dir(experiment, preset_name, setting),
                  data_dir, methods, verbose)


def open(run_dir, data_dir=None, **changes):  # noqa: A001 (the registry's verb)
    """The experiment a trained run directory records, its methods the parts with checkpoints.
    Writes nothing."""
    from maml_tf.experiments.runs import RECORD, LegacyRunDirectory, RunDirectory, RunDirectoryMismatch, preset_of
    run = RunDirectory(run_dir)
    try:
        record = run.record()
    except LegacyRunDirectory:
        raise
    except RunDirectoryMismatch as error:
        raise UsageProblem(str(error)) from None
    if record is None:
        raise UsageProblem(f"{run_dir} is not a run directory (no {RECORD}): make one with "
                           "`maml train EXPERIMENT --run-dir DIR`.")
    try:
        config = preset_of(record)
        experiment = record["experiment"]
        spec(experiment)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise UsageProblem(
            f"{os.path.join(run_dir, RECORD)} is not a config this version of maml_tf can read "
            f"({type(error).__name__}: {error}); it was edited by hand or written by another version: "
            "train again into a new run directory, or restore the file.") from None
    if changes:
        config = dataclasses.replace(config, **changes)
    cls = _class(experiment)
    methods = [m for m in cls.METHODS if run.has_checkpoint(m)] or None
    return _build(experiment, config, run_dir, data_dir, methods, 0)


def _class(experiment):
    module, name = spec(experiment).implementation.split(":")
    return getattr(importlib.import_module(f"maml_tf.experiments.{module}"), name)


def _build(experiment, config, run_dir, data_dir, methods, verbose):
    return _class(experiment)(experiment, config, run_dir, data_dir=data_dir, methods=methods,
                              result_name=spec(experiment).result_name, verbose=verbose)


def runner(target):
    """The function of ``maml_tf.experiments.targets`` that runs reproduce target ``target``."""
    if target not in TARGETS:
        raise UsageProblem(f"Unknown target {target!r}; choose one of {', '.join(TARGETS)}.")
    return getattr(importlib.import_module("maml_tf.experiments.targets"), TARGETS[target].runner)
