"""The sinusoid task distribution of Section 5.1."""
import math

import numpy as np
import pytest
import tensorflow as tf

from maml_tf.core import episodes as episode_utils
from maml_tf.tasks import SinusoidTasks


def _arrays(episodes):
    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    return [np.asarray(t) for t in (sx, sy, qx, qy)]


def test_shapes_and_dtypes():
    episodes, params = SinusoidTasks(support_shots=10, query_shots=7).sample(25, seed=[0, 1])
    sx, sy, qx, qy = _arrays(episodes)
    assert sx.shape == (25, 10, 1) and sy.shape == (25, 10, 1)
    assert qx.shape == (25, 7, 1) and qy.shape == (25, 7, 1)
    assert all(t.dtype == np.float32 for t in (sx, sy, qx, qy))
    assert params["amplitude"].shape == (25,) and params["phase"].shape == (25,)
    episode_utils.unpack(episodes)  # valid episode format


def test_ranges_and_labels_follow_the_paper():
    episodes, params = SinusoidTasks(10, 10).sample(2000, seed=[3, 4])
    sx, sy, qx, qy = _arrays(episodes)
    amplitude, phase = np.asarray(params["amplitude"]), np.asarray(params["phase"])
    assert amplitude.min() >= 0.1 and amplitude.max() <= 5.0
    assert phase.min() >= 0.0 and phase.max() <= math.pi
    x = np.concatenate([sx, qx], axis=1)
    assert x.min() >= -5.0 and x.max() <= 5.0
    # The samples cover the ranges (uniform), not a corner of them.
    assert amplitude.min() < 0.2 and amplitude.max() > 4.9
    assert phase.min() < 0.05 and phase.max() > math.pi - 0.05
    assert x.min() < -4.99 and x.max() > 4.99
    assert abs(amplitude.mean() - 2.55) < 0.1 and abs(x.mean()) < 0.05
    # y = A sin(x - phase), task by task, for support and query.
    a, p = amplitude[:, None, None], phase[:, None, None]
    np.testing.assert_allclose(sy, a * np.sin(sx - p), atol=1e-5)
    np.testing.assert_allclose(qy, a * np.sin(qx - p), atol=1e-5)


def test_custom_ranges():
    tasks = SinusoidTasks(5, 5, amplitude_range=(1.0, 2.0), phase_range=(0.5, 0.6),
                          input_range=(0.0, 1.0))
    episodes, params = tasks.sample(500, seed=[0, 0])
    sx, _, qx, _ = _arrays(episodes)
    assert np.all((params["amplitude"].numpy() >= 1.0) & (params["amplitude"].numpy() <= 2.0))
    assert np.all((params["phase"].numpy() >= 0.5) & (params["phase"].numpy() <= 0.6))
    assert sx.min() >= 0.0 and qx.max() <= 1.0


def test_same_seed_same_tasks_other_seed_other_tasks():
    tasks = SinusoidTasks(5, 5)
    a, pa = tasks.sample(10, seed=[7, 8])
    b, pb = tasks.sample(10, seed=[7, 8])
    c, pc = tasks.sample(10, seed=[7, 9])
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(pa["amplitude"], pb["amplitude"])
    assert not np.allclose(pa["amplitude"], pc["amplitude"])
    assert not np.allclose(pa["phase"], pc["phase"])
    assert not np.allclose(_arrays(a)[0], _arrays(c)[0])


def test_support_and_query_points_are_different_draws():
    episodes, _ = SinusoidTasks(10, 10).sample(5, seed=[0, 0])
    sx, _, qx, _ = _arrays(episodes)
    assert not np.allclose(np.sort(sx, axis=1), np.sort(qx, axis=1))


def test_oracle_has_the_same_tasks_and_three_features():
    plain, p_plain = SinusoidTasks(5, 6).sample(12, seed=[1, 2])
    oracle_tasks = SinusoidTasks(5, 6, oracle=True)
    assert oracle_tasks.input_dim == 3 and SinusoidTasks().input_dim == 1
    oracle, p_oracle = oracle_tasks.sample(12, seed=[1, 2])
    np.testing.assert_array_equal(p_plain["amplitude"], p_oracle["amplitude"])
    np.testing.assert_array_equal(p_plain["phase"], p_oracle["phase"])
    for (x, y), (ox, oy) in zip((plain["support"], plain["query"]),
                                (oracle["support"], oracle["query"])):
        assert ox.shape == x.shape[:-1] + (3,)
        np.testing.assert_array_equal(ox[..., :1], x)
        np.testing.assert_array_equal(oy, y)
        amplitude = np.asarray(p_oracle["amplitude"])[:, None]
        phase = np.asarray(p_oracle["phase"])[:, None]
        np.testing.assert_array_equal(ox[..., 1], np.broadcast_to(amplitude, ox.shape[:2]))
        np.testing.assert_array_equal(ox[..., 2], np.broadcast_to(phase, ox.shape[:2]))


def test_dataset_structure_and_determinism():
    tasks = SinusoidTasks(support_shots=4, query_shots=3)
    ds = tasks.dataset(meta_batch_size=6, seed=5)
    spec = ds.element_spec
    assert set(spec) == {"support", "query"}
    assert spec["support"][0].shape == (6, 4, 1) and spec["query"][1].shape == (6, 3, 1)
    assert spec["support"][0].dtype == tf.float32
    first = [_arrays(e) for e in ds.take(3)]
    again = [_arrays(e) for e in tasks.dataset(meta_batch_size=6, seed=5).take(3)]
    other = [_arrays(e) for e in tasks.dataset(meta_batch_size=6, seed=6).take(1)]
    for batch_a, batch_b in zip(first, again):
        for x, y in zip(batch_a, batch_b):
            np.testing.assert_array_equal(x, y)
    assert not np.allclose(first[0][0], first[1][0])  # each meta-batch is new tasks
    assert not np.allclose(first[0][0], other[0][0])
    for sx, sy, qx, qy in first:
        episode_utils.unpack({"support": (sx, sy), "query": (qx, qy)})


def test_curve_matches_the_labels():
    tasks = SinusoidTasks(5, 5)
    episodes, params = tasks.sample(3, seed=[0, 0])
    sx, sy, _, _ = _arrays(episodes)
    for i in range(3):
        curve = tasks.curve(float(params["amplitude"][i]), float(params["phase"][i]), sx[i])
        np.testing.assert_allclose(curve, sy[i], atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"support_shots": 0}, {"query_shots": 0}])
def test_needs_at_least_one_shot(kwargs):
    with pytest.raises(ValueError, match=f"^{next(iter(kwargs))} must be a whole number >= 1, got 0.$"):
        SinusoidTasks(**kwargs)


def test_dataset_resumes_at_start():
    """The stream from ``start=k`` is the whole stream without its first k meta-batches,
    so a resumed run trains on the tasks an uninterrupted one would have."""
    tasks = SinusoidTasks(support_shots=4, query_shots=3)
    whole = [_arrays(e) for e in tasks.dataset(meta_batch_size=6, seed=5).take(5)]
    resumed = [_arrays(e) for e in tasks.dataset(meta_batch_size=6, seed=5, start=3).take(2)]
    for batch_a, batch_b in zip(whole[3:], resumed):
        for x, y in zip(batch_a, batch_b):
            np.testing.assert_array_equal(x, y)
    assert not np.allclose(whole[0][0], resumed[0][0])
