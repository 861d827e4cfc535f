"""Task switching (issue 30, part 2): maml_tf.evaluation.task_switching, its policy version,
MAML.adapt(start=) / PolicyLearner.adapt(start=) and the study "task-switching"."""
import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from maml_tf.core.episodes import make as make_episodes
from maml_tf.evaluation import task_chain, task_switching
from conftest import classification_loss, compiled_maml, conv_bn_model, mlp_model

STEPS = 3


def _regression_tasks(chains, seed, support=5, query=7, dim=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (chains, support + query, dim)).astype("float32")
    w = rng.normal(size=(chains, dim, 1)).astype("float32")
    y = x @ w + rng.normal(size=(chains, 1, 1)).astype("float32")
    return make_episodes(x[:, :support], y[:, :support], x[:, support:], y[:, support:])


@pytest.fixture
def mlp_maml():
    return compiled_maml(mlp_model(hidden=(8,)), inner_lr=0.05)


@pytest.fixture
def pool():
    return {letter: _regression_tasks(4, seed) for seed, letter in enumerate("ABC")}


def _one(episodes, c):
    """Task ``c`` of a meta-batch as ``(support_x, support_y, query_x, query_y)``."""
    return tuple(t[c] for t in (*episodes["support"], *episodes["query"]))


def _query_loss(maml, weights, qx, qy):
    return float(maml.inner_loop.task_loss(qy, maml.predict_with(weights, qx)))


# ----------------------------------------------------------------------------- MAML.adapt(start=)
def test_adapt_from_start_continues_the_adaptation(mlp_maml, pool):
    sx, sy, _, _ = _one(pool["A"], 0)
    two = mlp_maml.adapt(sx, sy, steps=2)
    one_then_one = mlp_maml.adapt(sx, sy, steps=1, start=mlp_maml.adapt(sx, sy, steps=1))
    for a, b in zip(two, one_then_one):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    meta = [v.numpy() for v in mlp_maml.model.trainable_variables]
    for a, b in zip(mlp_maml.adapt(sx, sy, steps=1, start=meta), mlp_maml.adapt(sx, sy, steps=1)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_adapt_rejects_a_start_of_another_shape(mlp_maml, pool):
    sx, sy, _, _ = _one(pool["A"], 0)
    with pytest.raises(ValueError, match="start must be"):
        mlp_maml.adapt(sx, sy, steps=1, start=[np.zeros((3, 3))])


# ----------------------------------------------------------------------------- task_switching
def test_with_reset_every_link_equals_adapting_from_the_meta_weights_alone(mlp_maml, pool):
    chain = task_chain("ABAC", pool)
    result = task_switching(mlp_maml, chain, steps=STEPS)
    assert result["num_links"] == 4 and result["num_chains"] == 4 and result["steps"] == STEPS
    for i, link in enumerate(chain):
        alone = mlp_maml.evaluate_tasks(link, STEPS)["loss"].numpy()
        np.testing.assert_allclose(result["reset"]["loss"]["per_chain"][:, i], alone, rtol=1e-4, atol=1e-6)
    # The gradient norm at the start: an SGD step from the meta-weights moves them lr * ||g||.
    meta = [v.numpy() for v in mlp_maml.model.trainable_variables]
    for c in range(4):
        sx, sy, _, _ = _one(chain[1], c)
        moved = np.sqrt(sum(np.sum((a - m) ** 2) for a, m in zip(mlp_maml.adapt(sx, sy, steps=1), meta)))
        assert result["reset"]["gradient_norm"]["per_chain"][c, 1] == pytest.approx(moved / 0.05, rel=1e-3)


def test_without_reset_each_link_starts_where_the_last_one_ended(mlp_maml, pool):
    chain = task_chain("ABA", pool)
    result = task_switching(mlp_maml, chain, steps=STEPS)
    keep, reset = result["no_reset"], result["reset"]
    np.testing.assert_allclose(keep["loss"]["per_chain"][:, 0], reset["loss"]["per_chain"][:, 0], rtol=1e-6)
    meta = [v.numpy() for v in mlp_maml.model.trainable_variables]
    for c in range(4):
        weights = None
        for i, link in enumerate(chain):
            sx, sy, qx, qy = _one(link, c)
            # step 0 of link i: the query loss under the weights link i - 1 ended at
            start = meta if weights is None else weights
            assert keep["loss"]["per_chain"][c, i, 0] == pytest.approx(_query_loss(mlp_maml, start, qx, qy), rel=1e-4)
            weights = mlp_maml.adapt(sx, sy, steps=STEPS, start=weights)
            end = _query_loss(mlp_maml, weights, qx, qy)
            assert keep["loss"]["per_chain"][c, i, -1] == pytest.approx(end, rel=1e-4)
            distance = np.sqrt(sum(np.sum((w.numpy() - m) ** 2) for w, m in zip(weights, meta)))
            assert keep["distance"]["per_chain"][c, i + 1] == pytest.approx(distance, rel=1e-4)
    for mode in ("reset", "no_reset"):
        np.testing.assert_array_equal(result[mode]["distance"]["per_chain"][:, 0], 0.0)
    norm = np.sqrt(sum(np.sum(m ** 2) for m in meta))
    np.testing.assert_allclose(keep["relative_distance"]["mean"], keep["distance"]["mean"] / norm)
    # Revisiting A after B without reset starts elsewhere than the meta-weights.
    assert np.all(keep["distance"]["per_chain"][:, 2] > 0)
    assert not np.allclose(keep["loss"]["per_chain"][:, 2, 0], reset["loss"]["per_chain"][:, 2, 0])


def test_a_chain_a_to_a_without_reset_keeps_lowering_a_linear_models_loss():
    maml = compiled_maml(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), inner_lr=0.02)
    task = _regression_tasks(3, 5, support=10, query=10, dim=2)
    task = make_episodes(*task["support"], *task["support"])  # query = support: plain gradient descent
    result = task_switching(maml, task_chain("AAAA", {"A": task}), steps=2)
    loss = result["no_reset"]["loss"]["per_chain"]
    np.testing.assert_allclose(loss[:, 1:, 0], loss[:, :-1, -1], rtol=1e-5)  # each link resumes the last
    assert np.all(np.diff(loss.reshape(3, -1)[:, [0, 2, 4, 6, 8]], axis=1) < 0)
    reset = result["reset"]["loss"]["per_chain"]
    np.testing.assert_allclose(reset[:, 3], reset[:, 0], rtol=1e-6)  # reset forgets every link
    assert np.all(loss[:, 3, -1] < reset[:, 3, -1])


def test_classification_records_accuracy_per_step():
    images = np.random.default_rng(0).uniform(size=(2, 6, 8, 8, 1)).astype("float32")
    labels = np.tile(np.repeat(np.arange(3, dtype="int32"), 2), (2, 1))
    episodes = make_episodes(images, labels, images, labels)
    maml = compiled_maml(conv_bn_model(), loss=classification_loss(), inner_lr=0.4)
    result = task_switching(maml, [episodes, episodes], steps=2)
    accuracy = result["reset"]["accuracy"]["per_chain"]
    assert accuracy.shape == (2, 2, 3) and np.all((accuracy >= 0) & (accuracy <= 1))
    alone = maml.evaluate_tasks(episodes, 2)["accuracy"].numpy()
    np.testing.assert_allclose(accuracy[:, 0], alone)


@pytest.mark.parametrize("chain, steps, message", [
    ([], 1, "chain is empty"),
    (None, -1, "steps must be a whole number >= 0"),
    (None, 1.5, "steps must be a whole number >= 0"),
    ("mismatch", 1, "same number of chains"),
])
def test_bad_input_gets_a_one_line_error(mlp_maml, pool, chain, steps, message):
    if chain is None:
        chain = [pool["A"]]
    elif chain == "mismatch":
        chain = [pool["A"], _regression_tasks(2, 9)]
    with pytest.raises(ValueError, match=message):
        task_switching(mlp_maml, chain, steps=steps)


def test_task_chain_repeats_the_same_task_and_names_missing_ones(pool):
    chain = task_chain("ABA", pool)
    assert chain[0] is chain[2] and chain[1] is pool["B"]
    with pytest.raises(ValueError, match="names tasks D"):
        task_chain("ABD", pool)
    with pytest.raises(ValueError, match="pattern is empty"):
        task_chain("", pool)


# ----------------------------------------------------------------------------- policies
@pytest.fixture
def policy_learner():
    from maml_tf.models.policy import gaussian_mlp_policy
    from maml_tf.rl.learner import PolicyLearner
    return PolicyLearner(gaussian_mlp_policy(2, 2, hidden=(8,)), env="navigation", episodes_per_task=2, seed=3)


def test_policy_adapt_from_the_meta_weights_equals_the_default(policy_learner):
    tasks = policy_learner.sample_tasks(2, seed=1)
    meta = [np.repeat(v.numpy()[None], 2, axis=0) for v in policy_learner.model.trainable_variables]
    default, returns = policy_learner.adapt(tasks, 1, seed=4)
    started, started_returns = policy_learner.adapt(tasks, 1, seed=4, start=meta)
    for a, b in zip(default, started):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(returns, started_returns)
    with pytest.raises(ValueError, match="start must hold"):
        policy_learner.adapt(tasks, 1, start=[v.numpy() for v in policy_learner.model.trainable_variables])


def test_policy_switching_links_and_errors(policy_learner):
    from maml_tf.rl.switching import policy_switching
    a, b = policy_learner.sample_tasks(3, seed=1), policy_learner.sample_tasks(3, seed=2)
    result = policy_switching(policy_learner, [a, b, a], steps=2, episodes_per_task=2, seed=5)
    keep, reset = result["no_reset"], result["reset"]
    assert keep["return"]["per_chain"].shape == (3, 3, 3)
    for key, first_link in (("return", 0), ("gradient_norm", 0), ("distance", slice(0, 2))):
        # the first link: the same start and the same seeds in both modes
        np.testing.assert_allclose(keep[key]["per_chain"][:, first_link], reset[key]["per_chain"][:, first_link],
                                   rtol=1e-5)
    np.testing.assert_array_equal(keep["distance"]["per_chain"][:, 0], 0.0)
    assert np.all(reset["gradient_norm"]["per_chain"] > 0)
    assert not np.allclose(keep["distance"]["per_chain"][:, 2], reset["distance"]["per_chain"][:, 2])
    with pytest.raises(ValueError, match="chain is empty"):
        policy_switching(policy_learner, [], steps=1)
    with pytest.raises(ValueError, match="steps must be"):
        policy_switching(policy_learner, [a], steps=-1)
    with pytest.raises(ValueError, match="same number of tasks"):
        policy_switching(policy_learner, [a, a[:2]], steps=1)


# ----------------------------------------------------------------------------- the study
def test_study_presets_and_a_bad_preset_name():
    from maml_tf.experiments import registry
    from maml_tf.studies import task_switching as study
    assert set(study.PRESETS) == {"full", "quick", "smoke"}
    assert registry.STUDIES["task-switching"].result_name == "task_switching"
    assert registry.study_preset("task-switching", "full").sinusoid_preset == "paper"
    with pytest.raises(registry.UsageProblem, match="not a preset of study task-switching"):
        registry.study_preset("task-switching", "huge")


@pytest.mark.slow
def test_smoke_study_writes_the_page(tmp_path, use_real_omniglot):
    from maml_tf.studies import task_switching as study
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    copies = {}
    for key, path in (("omniglot_run_dir", "checkpoints/table1_omniglot/paper/5way1shot"),
                      ("navigation_run_dir", "checkpoints/fig4_navigation/paper")):
        copies[key] = str(tmp_path / key)
        shutil.copytree(os.path.join(root, path), copies[key])  # the committed runs stay untouched
    preset = dataclasses.replace(study.PRESETS["smoke"], **copies)
    lines = []
    study.run(preset, run_dir=str(tmp_path / "run"), out=str(tmp_path / "out"), echo=lines.append)
    out = tmp_path / "out"
    assert {"metrics.json", "table.md", "switching_sinusoid.png", "switching_omniglot.png",
            "switching_navigation.png"} <= set(os.listdir(out))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["models"]) == {"sinusoid", "omniglot", "navigation"}
    assert metrics["preset"]["name"] == "smoke" and "machine" in metrics and "command" in metrics
    sinusoid = metrics["models"]["sinusoid"]
    assert np.array(sinusoid["no_reset"]["loss"]["mean"]).shape == (3, 3)
    assert "per_chain" not in sinusoid["reset"]["loss"]
    table = (out / "table.md").read_text()
    answer = table.split("## Answer")[1]
    assert answer.count("back on A after B") == 3 and "drifted" in answer and "does adapting back to A" in answer
    assert len(lines) == 5
    # A second run resumes the finished sinusoid training instead of training again.
    study.run(preset, run_dir=str(tmp_path / "run"), out=str(tmp_path / "again"), echo=lines.append)
    assert "300/300" in lines[5]


def test_chains_that_diverge_are_counted_and_left_out_of_the_statistics():
    from maml_tf.evaluation.switching import over_chains
    values = np.array([[1.0, 2.0], [3.0, np.inf], [5.0, 4.0], [np.nan, 6.0]])
    stats = over_chains(values)
    np.testing.assert_array_equal(stats["diverged"], [1, 1])
    np.testing.assert_allclose(stats["mean"], [3.0, 4.0])
    np.testing.assert_allclose(stats["median"], [3.0, 4.0])
    assert np.all(np.isfinite(stats["ci95"]))
