"""The hidden activation as a hyperparameter: networks, presets, experiments, and run
directories recorded before the field existed (which open with its default, relu)."""
import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import pytest

from maml_tf import presets
from maml_tf.experiments import classification, registry, sinusoid
from maml_tf.experiments.runs import RunDirectory, RunDirectoryMismatch, preset_of, record_of
from maml_tf.models import conv4, fully_connected, mlp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("build", [
    lambda a: conv4(5, input_shape=(8, 8, 1), filters=4, activation=a),
    lambda a: fully_connected(5, input_shape=(8, 8, 1), hidden=(6, 6), activation=a),
    lambda a: mlp(hidden=(6,), activation=a)], ids=["conv4", "fc", "mlp"])
def test_activation_changes_the_function_not_the_weights(build):
    relu, silu = build("relu"), build("silu")
    assert [w.shape for w in relu.weights] == [w.shape for w in silu.weights]
    silu.set_weights(relu.get_weights())
    x = np.random.default_rng(0).normal(size=(4, *relu.input_shape[1:])).astype("float32")
    assert not np.allclose(relu(x), silu(x))


def test_unknown_activation_is_a_one_line_error():
    with pytest.raises(ValueError, match="Unknown activation 'swishy'.*'silu'"):
        conv4(5, input_shape=(8, 8, 1), filters=4, activation="swishy")


def test_presets_reach_the_network_and_maml():
    config = dataclasses.replace(presets.SINUSOID["smoke"], activation="tanh", first_order=True)
    maml = sinusoid.build_maml(config)
    assert maml.first_order and maml.model.get_layer("hidden_0").activation is keras.activations.tanh
    assert not sinusoid.build_maml(presets.SINUSOID["smoke"]).first_order
    omniglot = dataclasses.replace(presets.classification(presets.OMNIGLOT, "5way1shot", "smoke"),
                                   activation="silu", filters=4)
    names = [l.name for l in classification.build_model(omniglot).layers]
    assert "silu_0" in names and "silu_3" in names


def test_setting_names_of_existing_rows_do_not_change():
    assert set(presets.OMNIGLOT) == {"5way1shot", "5way5shot", "20way1shot", "20way5shot", "5way1shot_fc",
                                     "5way5shot_fc", "5way1shot_fo"}
    assert dataclasses.replace(presets.OMNIGLOT["5way1shot"], activation="silu").setting == "5way1shot_silu"
    assert dataclasses.replace(presets.OMNIGLOT["5way1shot_fo"], activation="gelu").setting == "5way1shot_gelu_fo"


@pytest.mark.parametrize("committed", ["checkpoints/table1_omniglot/paper/5way1shot",
                                       "checkpoints/table1_miniimagenet/paper/5way1shot"])
def test_records_from_before_the_field_open_with_the_default(committed, tmp_path):
    source = os.path.join(ROOT, committed, "run.json")
    if not os.path.exists(source):
        pytest.skip(f"{committed} is not in this checkout")
    shutil.copy(source, tmp_path / "run.json")  # the record is all check() and preset_of() read
    record = json.loads((tmp_path / "run.json").read_text())
    assert "activation" not in record["hyperparameters"]
    config = preset_of(record)
    assert config.activation == "relu" and config.setting == record["setting"]
    run = RunDirectory(tmp_path)
    run.check(record["experiment"], config, classification.FREE_FIELDS)  # no mismatch
    with pytest.raises(RunDirectoryMismatch, match="activation: 'relu' there, 'silu' now"):
        run.check(record["experiment"], dataclasses.replace(config, activation="silu"), classification.FREE_FIELDS)


def test_a_record_names_the_new_fields_only_away_from_their_default(tmp_path):
    plain = record_of("sinusoid", presets.SINUSOID["smoke"])["hyperparameters"]
    assert "activation" not in plain and "first_order" not in plain  # as records written before them
    silu = record_of("sinusoid", dataclasses.replace(presets.SINUSOID["smoke"], activation="silu"))
    assert silu["hyperparameters"]["activation"] == "silu" and preset_of(silu).activation == "silu"
    omniglot = record_of("omniglot", presets.OMNIGLOT["5way1shot"])["hyperparameters"]
    assert omniglot["first_order"] is False and "activation" not in omniglot


def test_sinusoid_record_without_the_new_fields_resumes(tmp_path):
    config = presets.SINUSOID["smoke"]
    experiment = registry.create("sinusoid", "smoke", run_dir=tmp_path, methods=["maml"])
    RunDirectory(tmp_path).start("sinusoid", config, sinusoid.FREE_FIELDS, parts=("maml",))
    record = json.loads((tmp_path / "run.json").read_text())
    assert not {"activation", "first_order"} & set(record["hyperparameters"])  # as an older run's
    experiment.check()
    with pytest.raises(RunDirectoryMismatch, match="first_order"):
        registry.create("sinusoid", "smoke", run_dir=tmp_path, first_order=True).check()
