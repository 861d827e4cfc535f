"""The bad-input inventory (issue 33): every kind of bad input a user can give over the
command line, the Python API, the task datasets and the exported SavedModel, each with the
message it must produce (one line naming the argument or input, the value and what is
allowed; no traceback; no work done).

``RUN``: kinds pinned here, one row = (surface, bad input, message fragment, how to provoke
it); ``PINNED_HERE``: kinds pinned by the other tests of this module. ``ELSEWHERE``
(bad_input_elsewhere.json): kinds pinned by a test beside the code they exercise, checked here
to exist and to assert the fragment, so that each kind is pinned once. ``KINDS``, the sum, is
the count docs/development.md and the README state.
"""
import ast
import dataclasses
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf import MAML, export, presets
from maml_tf.core import InnerSGD
from maml_tf.evaluation import settings as evaluation_settings
from maml_tf.experiments import runs, sinusoid
from maml_tf.models import mlp
from maml_tf.report import summary
from maml_tf.tasks import FewShotTasks, SinusoidTasks
from test_cli import invoke, ok, usage_error

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Kind:
    surface: str      # CLI | Python API | datasets | SavedModel
    bad_input: str
    fragment: str     # what the message must contain (RUN: literally; ELSEWHERE: in the test's source)
    where: object     # RUN: a callable that must raise; ELSEWHERE: "test_file.py::test_name"


def _maml(**kwargs):
    return MAML(mlp(hidden=(4,)), **kwargs)


def _compiled():
    maml = _maml(inner_lr=0.01)
    maml.compile(optimizer="adam", loss="mse")
    return maml


def _support():
    episodes = SinusoidTasks(5, 5).sample(2, seed=[0, 0])[0]
    return episodes["support"][0][0], episodes["support"][1][0]


def _images(classes=4, per_class=5, size=6):
    return np.random.default_rng(0).integers(0, 255, (classes, per_class, size, size, 1), dtype=np.uint8)


def _fit(**kwargs):
    return _compiled().fit(SinusoidTasks(5, 5).dataset(2), epochs=1, verbose=0, **kwargs)


RUN = [
    # ------------------------------------------------------------------ Python API: MAML(...)
    Kind("Python API", 'MAML(inner_lr="fast")', "inner_lr must be a number > 0, got 'fast' (str)",
         lambda: _maml(inner_lr="fast")),
    Kind("Python API", "MAML(inner_lr=True)", "inner_lr must be a number > 0, got True (bool)",
         lambda: _maml(inner_lr=True)),
    Kind("Python API", "MAML(inner_lr=nan)", "inner_lr must be a finite number > 0, got nan",
         lambda: _maml(inner_lr=float("nan"))),
    Kind("Python API", "MAML(inner_steps=2.5)", "inner_steps must be a whole number >= 0, got 2.5",
         lambda: _maml(inner_steps=2.5)),
    Kind("Python API", "MAML(inner_steps=True)", "inner_steps must be a whole number >= 0, got True (bool)",
         lambda: _maml(inner_steps=True)),
    Kind("Python API", 'MAML(inner_steps="3")', "inner_steps must be a whole number >= 0, got '3' (str)",
         lambda: _maml(inner_steps="3")),
    Kind("Python API", "MAML(eval_inner_steps=1.5)",
         "eval_inner_steps must be a whole number >= 0 or None, got 1.5", lambda: _maml(eval_inner_steps=1.5)),
    Kind("Python API", 'MAML(first_order="no")', "first_order must be True or False, got 'no' (str)",
         lambda: _maml(first_order="no")),
    Kind("Python API", "MAML(multi_step_loss_iterations=0)",
         "multi_step_loss_iterations must be a whole number >= 1, got 0",
         lambda: _maml(multi_step_loss_iterations=0)),
    Kind("Python API", "InnerSGD(learning_rate=-1)", "inner learning_rate must be a finite number > 0, got -1",
         lambda: InnerSGD(-1)),
    # ------------------------------------------------------------------ Python API: calls
    Kind("Python API", "maml.adapt(..., steps=-1)", "steps must be a whole number >= 0, got -1",
         lambda: _compiled().adapt(*_support(), steps=-1)),
    Kind("Python API", "maml.adapt(..., steps=1.5)", "steps must be a whole number >= 0, got 1.5",
         lambda: _compiled().adapt(*_support(), steps=1.5)),
    Kind("Python API", "maml.evaluate_tasks(..., steps=True)", "steps must be a whole number >= 0, got True (bool)",
         lambda: _compiled().evaluate_tasks(SinusoidTasks(5, 5).sample(2, [0, 0])[0], steps=True)),
    Kind("Python API", "fit(endless stream, steps_per_epoch=0)",
         "steps_per_epoch must be a whole number >= 1 or None, got 0", lambda: _fit(steps_per_epoch=0)),
    Kind("Python API", "fit(endless stream, steps_per_epoch=-3)",
         "steps_per_epoch must be a whole number >= 1 or None, got -3", lambda: _fit(steps_per_epoch=-3)),
    Kind("Python API", "fit(endless stream) without steps_per_epoch",
         "fit() on an endless task stream needs steps_per_epoch, a whole number >= 1", lambda: _fit()),
    Kind("Python API", "evaluate_settings(steps=-2)", "steps must be a whole number >= 0 or None, got -2",
         lambda: evaluation_settings.evaluate_settings(_compiled(), {"a": SinusoidTasks()}, steps=-2)),
    # ------------------------------------------------------------------ datasets
    Kind("datasets", "SinusoidTasks().dataset(meta_batch_size=0)", "meta_batch_size must be a whole number >= 1, got 0",
         lambda: SinusoidTasks().dataset(0)),
    Kind("datasets", "SinusoidTasks().dataset(meta_batch_size=-2)",
         "meta_batch_size must be a whole number >= 1, got -2", lambda: SinusoidTasks().dataset(-2)),
    Kind("datasets", "SinusoidTasks().dataset(meta_batch_size=2.5)",
         "meta_batch_size must be a whole number >= 1, got 2.5", lambda: SinusoidTasks().dataset(2.5)),
    Kind("datasets", 'SinusoidTasks(support_shots="5")', "support_shots must be a whole number >= 1, got '5' (str)",
         lambda: SinusoidTasks(support_shots="5")),
    Kind("datasets", "SinusoidTasks().sample(0, seed)", "num_tasks must be a whole number >= 1, got 0",
         lambda: SinusoidTasks().sample(0, [0, 0])),
    Kind("datasets", "SinusoidTasks().with_shots(0)", "support_shots must be a whole number >= 1, got 0",
         lambda: SinusoidTasks().with_shots(0)),
    Kind("datasets", "SinusoidTasks().fixed_tasks(chunk_size=0)", "chunk_size must be a whole number >= 1, got 0",
         lambda: next(SinusoidTasks().fixed_tasks(10, 0, chunk_size=0))),
    Kind("datasets", "FewShotTasks(...).dataset(meta_batch_size=0)",
         "meta_batch_size must be a whole number >= 1, got 0", lambda: FewShotTasks(_images(), 2, 1, 1).dataset(0)),
    Kind("datasets", "FewShotTasks(...).dataset(meta_batch_size=-2)",
         "meta_batch_size must be a whole number >= 1, got -2", lambda: FewShotTasks(_images(), 2, 1, 1).dataset(-2)),
    Kind("datasets", "FewShotTasks(ways=2.5)", "ways must be a whole number >= 1, got 2.5",
         lambda: FewShotTasks(_images(), 2.5, 1, 1)),
    Kind("datasets", "FewShotTasks(support_shots=True)", "support_shots must be a whole number >= 1, got True (bool)",
         lambda: FewShotTasks(_images(), 2, True, 1)),
    Kind("datasets", "FewShotTasks(...).sample(0, seed)", "num_tasks must be a whole number >= 1, got 0",
         lambda: FewShotTasks(_images(), 2, 1, 1).sample(0, 0)),
    Kind("datasets", "FewShotTasks(...).fixed_tasks(0, seed)", "num_tasks must be a whole number >= 1, got 0",
         lambda: next(FewShotTasks(_images(), 2, 1, 1).fixed_tasks(0, 0))),
]


@pytest.mark.parametrize("kind", RUN, ids=[k.bad_input for k in RUN])
def test_bad_input_gets_a_one_line_error_before_any_work(kind):
    with pytest.raises((TypeError, ValueError)) as error:
        kind.where()
    message = str(error.value)
    assert kind.fragment in message and "\n" not in message, message


def test_a_refused_fit_does_no_work():
    maml = _compiled()
    before = [w.copy() for w in maml.model.get_weights()]
    with pytest.raises(ValueError, match="steps_per_epoch"):
        maml.fit(SinusoidTasks(5, 5).dataset(2), epochs=1, steps_per_epoch=0, verbose=0)
    assert int(maml.optimizer.iterations.numpy()) == 0
    for a, b in zip(before, maml.model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- SavedModel dtypes
WAYS, FEATURES = 3, 4


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny 3-way classifier exported as a SavedModel, and the same request in its own dtypes."""
    keras.utils.set_random_seed(0)
    maml = MAML(keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(WAYS)]), inner_lr=0.5)
    maml.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    path = str(tmp_path_factory.mktemp("saved") / "model")
    export.save(maml, path)
    rng = np.random.default_rng(0)
    request = {"support_x": rng.random((WAYS, FEATURES), np.float32), "support_y": np.arange(WAYS, dtype=np.int32),
               "query_x": rng.random((2, FEATURES), np.float32)}
    return tf.saved_model.load(path), request


SAVED_MODEL_DTYPES = [
    ("support_x as strings", {"support_x": lambda r: np.full(r["support_x"].shape, "0.5")},
     "support_x has dtype string; it takes float32 or float64"),
    ("support_x as bool", {"support_x": lambda r: r["support_x"] > 0.5},
     "support_x has dtype bool; it takes float32 or float64"),
    ("query_x as complex numbers", {"query_x": lambda r: r["query_x"].astype(np.complex128)},
     "query_x has dtype complex128; it takes float32 or float64"),
    ("support_x as uint8 (unscaled images)", {"support_x": lambda r: (255 * r["support_x"]).astype(np.uint8)},
     "support_x has dtype uint8; it takes float32 or float64"),
    ("support_y as float labels", {"support_y": lambda r: r["support_y"].astype(np.float64)},
     "support_y has dtype float64; it takes int32 or int64"),
    ("support_y as float labels beside numpy's float64 features",
     {"support_y": lambda r: r["support_y"].astype(np.float32), "support_x": lambda r: r["support_x"].astype(float),
      "query_x": lambda r: r["query_x"].astype(float)},
     "support_y has dtype float32; it takes int32 or int64"),
]


@pytest.mark.parametrize("case", SAVED_MODEL_DTYPES, ids=[c[0] for c in SAVED_MODEL_DTYPES])
def test_a_saved_model_refuses_a_dtype_naming_the_input(classifier, case):
    loaded, request = classifier
    _, changes, fragment = case
    request = {**request, **{k: change(request) for k, change in changes.items()}}
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(fragment)):
        loaded.adapt_and_predict(**{k: tf.constant(v) for k, v in request.items()})


def test_a_saved_model_casts_numpy_defaults_in_functions_and_signatures(classifier):
    """int64 labels and float64 features (numpy's defaults) give the float32 / int32 answer."""
    loaded, request = classifier
    native = loaded.signatures["adapt_and_predict"](**{k: tf.constant(v) for k, v in request.items()})
    wide = {"support_x": request["support_x"].astype(np.float64), "support_y": request["support_y"].astype(np.int64),
            "query_x": request["query_x"].astype(np.float64)}
    for served in (loaded.adapt_and_predict(**wide), loaded.signatures["adapt_and_predict"](**wide)):
        np.testing.assert_array_equal(served["logits"], native["logits"])


def test_a_named_signature_names_the_input_of_a_tensor_of_another_dtype(classifier):
    loaded, request = classifier
    with pytest.raises(TypeError, match=r"dtype=tf\.int64, name='support_y'.*dtype=tf\.int32, name='support_y'"):
        loaded.signatures["adapt_and_predict"](support_x=request["support_x"], query_x=request["query_x"],
                                               support_y=tf.constant(request["support_y"], tf.int64))


# ----------------------------------------------------------------------------- CLI: damaged checkpoints
TINY = dataclasses.replace(presets.SINUSOID["smoke"], iterations=10, steps_per_epoch=5, eval_tasks=4,
                           eval_shots=(5,))


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    """A sinusoid run directory (tiny preset, as ``maml train sinusoid --preset smoke`` with the
    preset patched) with MAML checkpoints at iterations 5 and 10, made without training."""
    monkeypatch.setitem(presets.SINUSOID, "smoke", TINY)
    run_dir = tmp_path / "run"
    run = runs.RunDirectory(run_dir)
    run.start(sinusoid.EXPERIMENT, TINY, sinusoid.FREE_FIELDS, parts=("maml",))
    store = sinusoid._checkpoints(run, "maml", sinusoid.build_learner(TINY, "maml"))
    store.save(5)
    store.save(10)
    return run_dir


def _cut(run_dir, iteration, part="data-00000-of-00001", size=40):
    with open(run_dir / "maml" / f"ckpt-{iteration}.{part}", "r+b") as f:
        f.truncate(size)


def _no_traceback(result):
    assert "Traceback" not in result.output and "OSError" not in result.output, result.output
    return result


def test_evaluate_falls_back_past_a_truncated_latest_checkpoint_and_says_which(tiny_run):
    _cut(tiny_run, 10)
    result = _no_traceback(ok(invoke("evaluate", tiny_run)))
    assert f"warning: {tiny_run / 'maml'}: ckpt-10 (" in result.output
    assert ") unreadable; using ckpt-5 (iteration 5) instead." in result.output
    assert "meta-test maml K=5: test tasks 1-4 of 4" in result.output  # progress while meta-testing
    assert "meta-test MSE K5 maml: " in result.output


@pytest.mark.parametrize("part", ["data-00000-of-00001", "index"])
def test_evaluate_with_every_checkpoint_truncated_says_none_is_usable_and_what_to_do(tiny_run, part):
    _cut(tiny_run, 5, part, 20)
    _cut(tiny_run, 10, part, 20)
    result = _no_traceback(invoke("evaluate", tiny_run))
    assert result.exit_code == 1
    assert f"No usable checkpoint in {tiny_run / 'maml'} (ckpt-10 (" in result.output and "; ckpt-5 (" in result.output
    assert "restore its files from a copy, or delete" in result.output
    assert not (tiny_run / "metrics.json").exists()


def test_export_with_every_checkpoint_truncated_writes_nothing(tiny_run, tmp_path):
    _cut(tiny_run, 5)
    _cut(tiny_run, 10)
    result = _no_traceback(invoke("export", tiny_run, tmp_path / "out"))
    assert result.exit_code == 1 and "No usable checkpoint" in result.output
    assert not (tmp_path / "out").exists()


def test_a_damaged_checkpoint_state_file_reads_the_checkpoint_files(tiny_run):
    (tiny_run / "maml" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1')
    result = _no_traceback(ok(invoke("evaluate", tiny_run)))
    assert "the checkpoint state file is damaged; using the checkpoint files beside it." in result.output
    assert "meta-test MSE K5 maml: " in result.output


@pytest.mark.slow
def test_resume_past_a_truncated_latest_checkpoint_says_so_and_from_where(tiny_run):
    _cut(tiny_run, 10)
    result = _no_traceback(ok(invoke("train", "sinusoid", "--preset", "smoke", "--run-dir", tiny_run,
                                     "--method", "maml")))
    lines = result.output.splitlines()
    assert any(line.startswith("warning: ") and "ckpt-10 (" in line and "using ckpt-5 (iteration 5)" in line
               for line in lines), result.output
    assert f"resuming from iteration 5 ({tiny_run / 'maml'}, ckpt-5) up to 10" in lines
    assert "Epoch 2/2" in result.output and "\r" not in result.output and "━" not in result.output  # plain lines
    assert runs.RunDirectory(tiny_run).iteration("maml") == 10


def test_resume_with_every_checkpoint_truncated_trains_nothing(tiny_run):
    _cut(tiny_run, 5)
    _cut(tiny_run, 10)
    result = _no_traceback(invoke("train", "sinusoid", "--preset", "smoke", "--run-dir", tiny_run, "--method", "maml"))
    assert result.exit_code == 1 and "No usable checkpoint" in result.output and "Epoch" not in result.output
    assert not (tiny_run / "maml" / "log.csv").exists()


def test_export_of_an_rl_run_is_refused(tmp_path):
    preset = presets.NAVIGATION["smoke"]
    runs.RunDirectory(tmp_path).start(preset.env, preset)
    usage_error(invoke("export", tmp_path, tmp_path / "out"), "is an RL run")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- diverged test tasks
def test_diverged_sinusoid_tasks_are_counted_and_the_median_leads():
    metric = {"name": "MSE", "mean": [4.0, 14.783, 38744726.524], "median": [3.9, 0.51, 0.12],
              "diverged": [0, 0, 3], "diverged_above": 100.0, "tasks": 600, "headline_step": 1}
    line = summary.console({"metric": metric, "setting": "K5", "method": "maml"})
    assert line.startswith("meta-test MSE K5 maml: median 3.900 0.510 0.120 (step 1, 600 tasks); ")
    assert "3 of 600 tasks diverged by step 2 (MSE above 100 or not finite)" in line
    assert line.endswith("mean with them 4.000 14.783 38744726.524")
    healthy = summary.console({"metric": {**metric, "diverged": [0, 0, 0]}, "setting": "K5", "method": "maml"})
    assert healthy == "meta-test MSE K5 maml: 4.000 14.783 38744726.524 (step 1, 600 tasks)"


PINNED_HERE = [  # kinds the tests of this module pin beyond RUN: (surface, bad input, test)
    ("CLI", "maml evaluate, latest checkpoint truncated",
     "test_evaluate_falls_back_past_a_truncated_latest_checkpoint_and_says_which"),
    ("CLI", "maml evaluate, every checkpoint's data truncated",
     "test_evaluate_with_every_checkpoint_truncated_says_none_is_usable_and_what_to_do"),
    ("CLI", "maml evaluate, every checkpoint's index truncated",
     "test_evaluate_with_every_checkpoint_truncated_says_none_is_usable_and_what_to_do"),
    ("CLI", "maml export, every checkpoint truncated", "test_export_with_every_checkpoint_truncated_writes_nothing"),
    ("CLI", "damaged checkpoint state file", "test_a_damaged_checkpoint_state_file_reads_the_checkpoint_files"),
    ("CLI", "resume, latest checkpoint truncated",
     "test_resume_past_a_truncated_latest_checkpoint_says_so_and_from_where"),
    ("CLI", "resume, every checkpoint truncated", "test_resume_with_every_checkpoint_truncated_trains_nothing"),
    ("CLI", "maml export of an RL run", "test_export_of_an_rl_run_is_refused"),
    ("CLI", "maml train sinusoid where test tasks diverge",
     "test_diverged_sinusoid_tasks_are_counted_and_the_median_leads"),
    ("Python API", "fit refused before any step", "test_a_refused_fit_does_no_work"),
    *[("SavedModel", f"loaded.adapt_and_predict with {name}", "test_a_saved_model_refuses_a_dtype_naming_the_input")
      for name, _, _ in SAVED_MODEL_DTYPES],
    ("SavedModel", "int64 labels / float64 features (cast, same answer)",
     "test_a_saved_model_casts_numpy_defaults_in_functions_and_signatures"),
    ("SavedModel", "named signature given a tf.int64 tensor",
     "test_a_named_signature_names_the_input_of_a_tensor_of_another_dtype"),
]

# Kinds pinned by a test beside the code they exercise: [surface, bad input, fragment,
# "test_file.py::test_name"], one a line.
with open(os.path.join(HERE, "bad_input_elsewhere.json")) as _rows:
    ELSEWHERE = [Kind(*row) for row in json.load(_rows)]

KINDS = len(RUN) + len(PINNED_HERE) + len(ELSEWHERE)


def _tests_in(filename):
    """``(source, {test name: its source with decorators and the 3,000 characters above
    (where a parametrize table stands)})`` of a test module."""
    with open(os.path.join(HERE, filename)) as f:
        source = f.read()
    lines = source.splitlines(keepends=True)
    tests = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            above = "".join(lines[:first])[-3000:]
            tests[node.name] = above + "".join(lines[first:node.end_lineno])
    return source, tests


@pytest.mark.parametrize("kind", ELSEWHERE, ids=[k.bad_input for k in ELSEWHERE])
def test_a_kind_pinned_elsewhere_has_its_test_and_message(kind):
    filename, name = kind.where.split("::")
    _, tests = _tests_in(filename)
    assert name in tests, f"{kind.where} is gone: move its row or pin the kind again"
    assert kind.fragment in tests[name].replace("\\", ""), kind  # a regex's escapes dropped


def test_the_kinds_pinned_here_have_their_tests():
    _, tests = _tests_in("test_bad_input.py")
    assert all(name in tests for _, _, name in PINNED_HERE)


def test_the_inventory_covers_every_surface_and_the_docs_state_its_size():
    surfaces = {k.surface for k in RUN + ELSEWHERE} | {row[0] for row in PINNED_HERE}
    assert surfaces == {"CLI", "Python API", "datasets", "SavedModel"}
    assert KINDS >= 50
    with open(os.path.join(HERE, "..", "docs", "development.md")) as f:
        docs = f.read()
    assert f"covers {KINDS} kinds of bad input" in docs, f"docs/development.md should say: covers {KINDS} kinds"
    with open(os.path.join(HERE, "..", "README.md")) as f:
        readme = " ".join(f.read().split())  # across line breaks
    assert f"the inventory: {KINDS} kinds" in readme, f"the README's Reliability section should say: {KINDS} kinds"


# ----------------------------------------------------------------------------- informative output
# Not bad input (so not counted), but the same issue: a resumed run says so in every kind (the
# sinusoid's through the command, above), meta-testing says how far it got, and log files get
# plain lines.
@pytest.mark.slow
def test_an_rl_run_says_from_which_iteration_it_resumes(tmp_path, caplog):
    from maml_tf.experiments import rl
    preset = dataclasses.replace(presets.NAVIGATION["smoke"], iterations=2)
    rl.train(preset, "maml", tmp_path, until=1)
    with caplog.at_level("INFO", logger="maml_tf"):
        rl.train(preset, "maml", tmp_path)
    assert f"resuming from iteration 1 ({tmp_path / 'maml'}, ckpt-1) up to 2" in caplog.messages


@pytest.mark.slow
def test_a_classification_run_says_from_which_iteration_it_resumes(tmp_path, caplog, monkeypatch):
    from maml_tf.experiments import classification
    preset = presets.classification(presets.OMNIGLOT, "5way1shot", "smoke")
    images = np.random.default_rng(0).integers(0, 255, (8, 20, preset.image_size, preset.image_size, 1), np.uint8)
    monkeypatch.setattr(classification, "load_split", lambda *args, **kwargs: images)
    classification.train(preset, tmp_path, verbose=0, until=preset.steps_per_epoch)
    with caplog.at_level("INFO", logger="maml_tf"):
        classification.train(preset, tmp_path, verbose=0)
    step = preset.steps_per_epoch
    assert f"resuming from iteration {step} ({tmp_path / 'maml'}, ckpt-{step}) up to {preset.iterations}" in caplog.messages
    with caplog.at_level("INFO", logger="maml_tf"):  # and meta-testing says how far it got
        classification.evaluate(preset, classification.load_latest(preset, tmp_path))
    assert f"meta-test: {preset.eval_tasks}/{preset.eval_tasks} test tasks" in caplog.messages


def test_verbose_defaults_to_the_progress_bar_on_a_terminal_and_plain_lines_in_a_file(monkeypatch):
    import io
    import sys

    from maml_tf.cli import _terminal_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert _terminal_verbosity(None, None, None) == 1 and _terminal_verbosity(None, None, 0) == 0
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert _terminal_verbosity(None, None, None) == 2 and _terminal_verbosity(None, None, 1) == 1
