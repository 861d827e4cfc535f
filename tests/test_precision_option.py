"""The ``precision`` option of meta-training (presets, experiments, ``maml train --precision``),
the scoped policy of ``maml_tf.core.precision`` and the per-machine bfloat16 detection.

The numbers behind the tolerances (tiny conv + BN, 5-way, 4 tasks, observed on an Intel Xeon
with AMX): the mixed_bfloat16 meta-gradient departs from float32's by 3-5% (relative L2),
first order from second order by far more; rounding the weights to bfloat16 alone moves it
as much, so weights in bfloat16 are caught where they do harm: an inner update below
bfloat16's resolution (2^-8 relative) vanishes.
"""
import dataclasses
import json
import logging

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from conftest import classification_episodes, classification_loss, conv_bn_model, flat
from maml_tf import MAML, presets, reporting
from maml_tf.cli import main as maml_cli
from maml_tf.core import precision
from maml_tf.experiments import classification, registry
from maml_tf.experiments.runs import RunDirectory

TOLERANCE = 0.1  # relative L2 of the bf16 meta-gradient against float32's (observed 0.03-0.05)


def _maml(policy, inner_lr=0.2, inner_steps=2, first_order=False):
    with precision.policy(policy):
        keras.utils.set_random_seed(0)
        maml = MAML(conv_bn_model(num_classes=5, size=12), inner_lr=inner_lr, inner_steps=inner_steps,
                    first_order=first_order)
    maml.compile(optimizer=keras.optimizers.Adam(1e-2), loss=classification_loss())
    return maml


def _episodes(rng):
    return classification_episodes(rng, tasks=4, ways=5, shots=1, query_shots=2, size=12, dtype="float32")


def _relative(a, b):
    return float(np.linalg.norm(flat(a) - flat(b)) / np.linalg.norm(flat(b)))


def test_policy_scopes_the_build_and_restores_the_previous_global_policy():
    keras.mixed_precision.set_global_policy("float32")
    with precision.policy("mixed_bfloat16"):
        inner = keras.config.dtype_policy().name
        model = conv_bn_model()
    assert inner == "mixed_bfloat16" and keras.config.dtype_policy().name == "float32"
    assert conv_bn_model().layers[-1].compute_dtype == "float32"  # no leak into later models
    assert {layer.compute_dtype for layer in model.layers if layer.weights} == {"bfloat16"}
    assert {v.dtype for v in model.weights} == {"float32"}
    with pytest.raises(RuntimeError):  # restored also when the build fails
        with precision.policy("mixed_bfloat16"):
            raise RuntimeError("build failed")
    assert keras.config.dtype_policy().name == "float32"


def test_bf16_meta_gradient_is_float32_and_close_to_float32s(rng):
    episodes = _episodes(rng)
    reference, mixed = _maml("float32"), _maml("mixed_bfloat16")
    mixed.model.set_weights(reference.model.get_weights())
    expected_loss, expected = reference.meta_gradients(episodes)
    loss, grads = mixed.meta_gradients(episodes)
    assert loss.dtype == tf.float32 and {g.dtype for g in grads} == {tf.float32}  # no missed cast
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=0.02)
    error = _relative(grads, expected)
    assert error < TOLERANCE, error
    # The tolerance tells a real change of the meta-gradient apart: dropping the second-order
    # term moves it much further than bfloat16 does.
    _, first_order = _maml("float32", first_order=True).meta_gradients(episodes)
    assert _relative(first_order, expected) > 3 * error


def test_bf16_inner_updates_stay_in_float32(rng):
    """An inner update of ~1e-4 of the weights survives under mixed_bfloat16 (float32
    weights); in bfloat16 weights it would round away, as the check on the rounding shows."""
    episodes = _episodes(rng)
    (sx, sy), _ = (episodes["support"], episodes["query"])
    reference, mixed = _maml("float32", inner_lr=1e-4), _maml("mixed_bfloat16", inner_lr=1e-4)
    mixed.model.set_weights(reference.model.get_weights())
    start = [v.value for v in mixed.model.trainable_variables]
    assert {v.dtype for v in mixed.model.weights} == {"float32"}
    adapted = mixed.adapt(sx[0], sy[0], steps=1, training=True)
    expected = reference.adapt(sx[0], sy[0], steps=1, training=True)
    assert {a.dtype for a in adapted} == {tf.float32}
    update = [a - s for a, s in zip(adapted, start)]
    expected_update = [a - s for a, s in zip(expected, start)]
    assert _relative(update, expected_update) < TOLERANCE
    rounded = [tf.cast(tf.cast(a, tf.bfloat16), tf.float32) - tf.cast(tf.cast(s, tf.bfloat16), tf.float32)
               for a, s in zip(expected, start)]
    assert _relative(rounded, expected_update) > 0.5  # what weights in bfloat16 would have kept


def test_a_few_bf16_meta_iterations_reduce_the_loss(rng):
    episodes = _episodes(rng)
    maml = _maml("mixed_bfloat16")
    losses = [float(maml.train_on_batch(episodes, return_dict=True)["loss"]) for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0], losses
    assert {v.dtype for v in maml.model.weights} == {"float32"}


@pytest.mark.parametrize("name", ["bfloat16", "float16", "bf16", "mixed_float16"])
def test_bad_precision_names_are_refused_by_the_presets(name):
    paper = registry.preset("omniglot", "paper", "5way1shot")
    with pytest.raises(ValueError, match=rf"^precision must be one of float32, mixed_bfloat16, got '{name}'\.$"):
        registry.create("omniglot", "paper", "5way1shot", precision=name)
    with pytest.raises(ValueError, match="^precision must be one of"):
        presets.SinusoidPreset(precision=name)
    assert paper.precision == "float32"


def test_bad_policy_names_are_refused_by_the_helper():
    with pytest.raises(ValueError, match=r"^precision must be one of float32, mixed_bfloat16, mixed_float16, "
                                         r"got 'bfloat16'\.$"):
        with precision.policy("bfloat16"):
            pass
    assert keras.config.dtype_policy().name == "float32"


def test_cli_precision_is_one_validated_option(tmp_path):
    result = CliRunner().invoke(maml_cli, ["train", "omniglot", "--setting", "5way1shot", "--precision", "bf16",
                                           "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2 and "'--precision': 'bf16' is not one of 'float32', 'mixed_bfloat16'" in result.output
    result = CliRunner().invoke(maml_cli, ["train", "navigation", "--precision", "mixed_bfloat16",
                                           "--run-dir", str(tmp_path / "rl")])
    assert result.exit_code == 2 and "--precision is for sinusoid, omniglot and mini_imagenet" in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "rl").exists()


def test_native_bfloat16_reads_the_cpu_flags_and_onednn_switches(tmp_path):
    intel, amd = tmp_path / "intel", tmp_path / "amd"
    intel.write_text("model name\t: Xeon\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n")
    amd.write_text("model name\t: EPYC\nflags\t\t: fpu avx2 avx512f\n")
    assert precision.native_bfloat16(str(intel), environ={}) == ("amx_bf16", "avx512_bf16")
    assert precision.native_bfloat16(str(amd), environ={}) == ()
    assert precision.native_bfloat16(str(intel), environ={"TF_ENABLE_ONEDNN_OPTS": "0"}) == ()
    assert precision.native_bfloat16(str(intel), environ={"ONEDNN_MAX_CPU_ISA": "avx512_core"}) == ()
    assert precision.native_bfloat16(str(intel), environ={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}) != ()
    assert precision.native_bfloat16(str(tmp_path / "missing"), environ={}) == ()
    record = reporting.machine()
    assert record["bfloat16_flags"] == list(precision.native_bfloat16())
    assert record["bfloat16_native"] == bool(record["bfloat16_flags"])


def test_mixed_bfloat16_without_native_bfloat16_warns_once_per_build(monkeypatch, caplog):
    monkeypatch.setattr(precision, "native_bfloat16", lambda: ())
    with caplog.at_level(logging.WARNING, logger="maml_tf"):
        with precision.policy("float32"):
            pass
        assert not caplog.records
        with precision.policy("mixed_bfloat16"):
            pass
    [record] = caplog.records
    assert record.name == "maml_tf" and "\n" not in record.getMessage()
    assert "mixed_bfloat16 on a CPU without native bfloat16" in record.getMessage()


@pytest.mark.slow  # ~35 s: two conv4 trainings compiled
def test_a_run_resumes_in_another_precision_and_records_each(tmp_path, use_real_omniglot):
    """Precision is compute, as task_parallelism: float32 then mixed_bfloat16 in one run
    directory, each command's precision in commands.jsonl; the record keeps old runs' form."""
    run_dir = str(tmp_path / "run")
    registry.create("omniglot", "smoke", "5way1shot", run_dir=run_dir).train(until=10)
    with open(f"{run_dir}/run.json") as f:  # float32, the default, is left out as before the option
        assert "precision" not in json.load(f)["hyperparameters"]
    mixed = registry.create("omniglot", "smoke", "5way1shot", run_dir=run_dir, precision="mixed_bfloat16")
    mixed.check()  # not refused
    assert mixed.train().finished
    history = RunDirectory(run_dir).training_history()
    assert [(h["from_iteration"], h["to_iteration"], h["precision"]) for h in history] == [
        (0, 10, "float32"), (10, 20, "mixed_bfloat16")]
    model = mixed.learners()["maml"].model
    assert model.layers[-1].compute_dtype == "bfloat16" and keras.config.dtype_policy().name == "float32"
    assert classification.completed_iterations(run_dir) == 20


def test_the_sinusoid_builds_in_its_presets_precision():
    from maml_tf.experiments import sinusoid
    preset = dataclasses.replace(presets.SINUSOID["smoke"], precision="mixed_bfloat16")
    maml = sinusoid.build_learner(preset, "maml")
    assert maml.model.layers[-1].compute_dtype == "bfloat16" and {v.dtype for v in maml.model.weights} == {"float32"}
    assert keras.config.dtype_policy().name == "float32"
    assert sinusoid.build_learner(presets.SINUSOID["smoke"], "maml").model.layers[-1].compute_dtype == "float32"
