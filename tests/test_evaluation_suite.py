"""The evaluation suite's measures (maml_tf.evaluation) on tiny models whose behaviour is known,
the pretrained baseline's parts, and a smoke run of the whole study."""
import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf import MAML, baselines, evaluation
from maml_tf.core.episodes import make
from maml_tf.tasks import SinusoidTasks
from conftest import classification_loss, compiled_maml, mlp_model


class LineTasks:
    """y = a x + b with a, b ~ U[-2, 2], x ~ U[-1, 1]: a linear model adapted by many SGD steps
    approaches least squares on the support set, so its query error falls with K."""

    def __init__(self, support_shots=1, query_shots=20):
        self.support_shots, self.query_shots = support_shots, query_shots

    def with_shots(self, support_shots, query_shots=None):
        return LineTasks(support_shots, query_shots or self.query_shots)

    def fixed_tasks(self, num_tasks, seed, chunk_size=100):
        rng = np.random.default_rng(seed)
        a, b = rng.uniform(-2, 2, (2, num_tasks, 1, 1))
        x = rng.uniform(-1, 1, (num_tasks, self.support_shots + self.query_shots, 1))
        y = a * x + b
        k = self.support_shots
        yield make(*(tf.constant(t, tf.float32) for t in (x[:, :k], y[:, :k], x[:, k:], y[:, k:])))


class BlobTasks:
    """N-way tasks of well-separated Gaussian blobs in 4-D (each task its own class means):
    a zero-initialised linear classifier adapts to near-perfect accuracy on clean labels."""

    def __init__(self, ways=3, support_shots=5, query_shots=10):
        self.ways, self.support_shots, self.query_shots = ways, support_shots, query_shots

    def with_shots(self, support_shots, query_shots=None):
        return BlobTasks(self.ways, support_shots, query_shots or self.query_shots)

    def fixed_tasks(self, num_tasks, seed, chunk_size=100):
        rng = np.random.default_rng(seed)
        means = rng.normal(0, 3, (num_tasks, self.ways, 1, 4))

        def draw(shots):
            x = means + rng.normal(0, 0.5, (num_tasks, self.ways, shots, 4))
            y = np.broadcast_to(np.arange(self.ways)[None, :, None], x.shape[:3])
            return (tf.constant(x.reshape(num_tasks, -1, 4), tf.float32),
                    tf.constant(y.reshape(num_tasks, -1), tf.int32))

        yield make(*draw(self.support_shots), *draw(self.query_shots))


def _uncompiled_xla(model, loss, **kwargs):
    """A MAML of a tiny model without XLA (whose compile time would dominate these tests)."""
    maml = MAML(model, **kwargs)
    maml.compile(optimizer="adam", loss=loss, jit_compile=False)
    return maml


def _linear_regressor(inner_lr=0.5, steps=10):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    return _uncompiled_xla(model, "mse", inner_lr=inner_lr, eval_inner_steps=steps)


def _linear_classifier(ways=3, steps=10):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(ways, kernel_initializer="zeros")])
    return _uncompiled_xla(model, classification_loss(), inner_lr=0.5, eval_inner_steps=steps)


def test_adaptation_curve_at_step_0_is_the_unadapted_models_loss():
    maml = _uncompiled_xla(mlp_model(), "mse", inner_lr=0.05)
    tasks = SinusoidTasks(5, 20)
    curve = evaluation.adaptation_curve(maml, tasks, steps=3, num_tasks=30)
    episodes = next(tasks.fixed_tasks(30, evaluation.settings.TEST_SEED, 50))
    qx, qy = episodes["query"]
    per_task = tf.reduce_mean((maml.model(tf.reshape(qx, (-1, 1))) - tf.reshape(qy, (-1, 1))) ** 2 * 1.0, axis=-1)
    unadapted = float(tf.reduce_mean(tf.reshape(per_task, (30, -1))))
    assert curve["steps"] == [0, 1, 2, 3] and len(curve["loss"]["mean"]) == 4
    assert curve["loss"]["mean"][0] == pytest.approx(unadapted, rel=1e-5)
    assert curve["loss"]["mean"][1] != pytest.approx(curve["loss"]["mean"][0])  # the steps change it


def test_adaptation_curve_with_another_step_size_restores_the_models_own():
    maml = _linear_regressor(inner_lr=0.1)
    tasks = LineTasks(5)
    own = evaluation.adaptation_curve(maml, tasks, steps=2, num_tasks=20)
    larger = evaluation.adaptation_curve(maml, tasks, steps=2, inner_lr=0.4, num_tasks=20)
    assert larger["inner_lr"] == 0.4 and own["inner_lr"] == pytest.approx(0.1)
    assert larger["loss"]["mean"][0] == pytest.approx(own["loss"]["mean"][0])
    assert larger["loss"]["mean"][2] < own["loss"]["mean"][2]  # bigger steps on a convex problem
    assert maml.inner_rule.learning_rate == pytest.approx(0.1)
    again = evaluation.adaptation_curve(maml, tasks, steps=2, num_tasks=20)
    np.testing.assert_allclose(again["loss"]["mean"], own["loss"]["mean"], rtol=1e-6)


def test_more_support_examples_lower_the_error_of_a_model_that_adapts():
    result = evaluation.sample_efficiency(_linear_regressor(), LineTasks(), shots=(1, 2, 10), num_tasks=200)
    mse, ci = np.array(result["loss"]["mean"]), np.array(result["loss"]["ci95"])
    assert result["settings"] == [1, 2, 10] and result["steps"] == 10
    assert mse[0] > mse[1] > mse[2]
    assert mse[0] - ci[0] > mse[2] + ci[2]  # the gap is well outside the CIs


def test_label_noise_lowers_the_accuracy_of_an_adapted_model():
    result = evaluation.robustness(_linear_classifier(), BlobTasks(), label_noise=(0.0, 0.2, 0.4),
                                   input_noise=(0.0, 2.0), num_tasks=100)
    accuracy = result["label_noise"]["accuracy"]["mean"]
    assert accuracy[0] > 0.95  # clean labels: the blobs are separable
    assert accuracy[0] > accuracy[1] > accuracy[2]
    assert result["input_noise"]["accuracy"]["mean"][1] < accuracy[0]
    example = result["support_example"]
    assert example["settings"] == ["clean", "corrupted", "duplicated"]
    assert example["accuracy"]["mean"][0] == pytest.approx(accuracy[0])  # the same clean tasks


def test_out_of_distribution_scores_every_shift_and_the_sinusoid_shifts_leave_the_training_ranges():
    tasks = SinusoidTasks(5, 10)
    shifts = evaluation.sinusoid_shifts(tasks)
    assert list(shifts)[0] == "in distribution" and shifts["in distribution"] is tasks
    outside = list(shifts.values())[1:]
    assert any(s.amplitude_range[0] >= 5.0 for s in outside)
    assert any(s.phase_range[0] >= np.pi - 1e-6 for s in outside)
    assert any(s.input_range[0] >= 5.0 for s in outside)
    assert any(s.frequency_range != (1.0, 1.0) for s in outside)
    maml = _uncompiled_xla(mlp_model(), "mse", inner_lr=0.01)
    result = evaluation.out_of_distribution(maml, shifts, steps=1, num_tasks=10)
    assert result["settings"] == list(shifts) and len(result["loss"]["ci95"]) == len(shifts)
    # Larger amplitudes give larger errors for a model that knows nothing of them.
    assert result["loss"]["mean"][1] > result["loss"]["mean"][0]


@pytest.mark.parametrize("call, message", [
    (lambda m, t: evaluation.adaptation_curve(m, t, steps=-1), "steps"),
    (lambda m, t: evaluation.adaptation_curve(m, t, steps=2, inner_lr=-0.1), "inner_lr"),
    (lambda m, t: evaluation.sample_efficiency(m, t, shots=(0, 5)), "shots"),
    (lambda m, t: evaluation.sample_efficiency(m, t, shots=(1.5,)), "shots"),
    (lambda m, t: evaluation.robustness(m, t, label_noise=(0.0, 1.2)), r"\[0, 1\]"),
    (lambda m, t: evaluation.robustness(m, t, input_noise=(-0.1,)), ">= 0"),
    (lambda m, t: evaluation.out_of_distribution(m, {}), "shifts"),
    (lambda m, t: evaluation.evaluate_settings(m, {"a": t}, num_tasks=1), "num_tasks"),
])
def test_bad_input_is_a_one_line_error(call, message):
    maml = _linear_regressor()
    with pytest.raises(ValueError, match=message) as error:
        call(maml, LineTasks())
    assert "\n" not in str(error.value)


def test_another_step_size_is_refused_for_learned_step_sizes():
    maml = compiled_maml(mlp_model(), inner_rule="meta-sgd")
    with pytest.raises(ValueError, match="learns its step"):
        evaluation.adaptation_curve(maml, LineTasks(), steps=1, inner_lr=0.1)


def test_the_new_head_predicts_uniformly_and_only_the_head_adapts():
    inputs = keras.Input((4,))
    features = keras.layers.Dense(8, activation="relu", name="features")(inputs)
    trained = keras.Model(inputs, keras.layers.Dense(50, name="head")(features))
    model = baselines.with_new_head(trained, 3)
    assert model.output_shape == (None, 3)
    np.testing.assert_array_equal(model(np.ones((2, 4), "float32")), np.zeros((2, 3)))
    learner = baselines.fine_tuner(model, 0.5, 5, adapt="head", loss=classification_loss())
    assert [v.path for v in learner.adapted_variables] == [v.path for v in model.get_layer("head").trainable_variables]
    curve = evaluation.adaptation_curve(learner, BlobTasks(), steps=5, num_tasks=20)
    assert curve["accuracy"]["mean"][0] == pytest.approx(1 / 3, abs=0.02)  # uniform logits: first class by argmax
    assert curve["accuracy"]["mean"][5] > 0.5


def test_classifier_dataset_labels_each_rotation_of_a_class_as_its_own_class(rng):
    images = rng.integers(0, 255, (3, 4, 5, 5, 1), dtype=np.uint8)
    x, y = next(iter(baselines.classifier_dataset(images, 64, seed=1)))
    x, y = np.asarray(x), np.asarray(y)
    assert y.min() >= 0 and y.max() < 12 and len(set(y.tolist())) > 6
    for image, label in zip(x, y):
        source = np.rot90(images[label % 3], label // 3, axes=(-3, -2)).astype("float32") / 255
        assert any(np.array_equal(image, s) for s in source)


def test_step_size_selection_picks_the_best_candidate():
    from maml_tf.studies.evaluation_suite import select_step_size
    maml = _linear_regressor(inner_lr=0.01, steps=5)
    picked = select_step_size(maml, LineTasks(5), (0.01, 0.3, 5.0), steps=5, num_tasks=20)
    assert picked["chosen"] == 0.3  # 0.01 barely moves, 5.0 diverges
    assert maml.inner_rule.learning_rate == 0.3


@pytest.mark.slow
def test_smoke_preset_writes_the_results_page(tmp_path, use_real_omniglot):
    """The whole study at its smoke budget, Omniglot included."""
    from maml_tf.studies import evaluation_suite, evaluation_suite_report
    preset = evaluation_suite.PRESETS["smoke"]
    lines = []
    evaluation_suite.run(preset, str(tmp_path / "runs"), str(tmp_path / "out"), echo=lines.append)
    out = tmp_path / "out"
    for name in ("metrics.json", "table.md", *evaluation_suite_report.PLOTS):
        assert (out / name).stat().st_size > 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["preset"]["name"] == "smoke" and doc["command"] and doc["machine"]["cores"]
    sinusoid = doc["domains"]["sinusoid"]
    assert set(sinusoid["sample_efficiency"]) == {"maml_K10", "maml_K5", "pretrained", "scratch"}
    assert sinusoid["sample_efficiency"]["maml_K10"]["settings"] == list(preset.sinusoid_shots)
    assert set(sinusoid["out_of_distribution"]) == {"maml", "pretrained", "scratch"}
    assert set(doc["domains"]["omniglot"]["sample_efficiency"]) == {"maml_K1", "maml_K5", "pretrained", "scratch"}
    table = (out / "table.md").read_text()
    assert table.rstrip().splitlines()[-1].startswith("- **")  # ends with the generated answer
    assert "## Answer" in table and "MAML beats both baselines in" in table
    assert any("sinusoid K=10" in line for line in lines)
    # Resuming trains nothing more.
    lines.clear()
    evaluation_suite.run(dataclasses.replace(preset, omniglot=False), str(tmp_path / "runs"), str(tmp_path / "again"),
                         echo=lines.append)
    assert any("maml 300, pretrained 300 of 300 iterations" in line for line in lines)


def test_unknown_preset_is_a_one_line_error():
    from click.testing import CliRunner

    from maml_tf.cli import study_command
    result = CliRunner().invoke(study_command("evaluation-suite"), ["--preset", "nope"])
    assert result.exit_code != 0 and "full, quick, smoke" in result.output


def test_diverged_tasks_are_counted_and_the_median_ranks_them_worst():
    maml = _linear_regressor(inner_lr=50.0, steps=10)  # far past the stable step size
    result = evaluation.evaluate_settings(maml, {"clean": LineTasks(5)}, num_tasks=10)
    assert result["diverged"] == [10]
    assert result["loss"]["median"] == [np.inf]
    calm = evaluation.evaluate_settings(_linear_regressor(), {"clean": LineTasks(5)}, num_tasks=10)
    assert calm["diverged"] == [0] and np.isfinite(calm["loss"]["median"][0])
