"""Episode transforms (maml_tf.tasks.transforms) change exactly what they say, and the task
distributions' additions (frequency family, with_shots, fixed_tasks)."""
import numpy as np
import pytest
import tensorflow as tf

from maml_tf.core.episodes import make
from maml_tf.tasks import FewShotTasks, SinusoidTasks
from maml_tf.tasks import transforms


def _arrays(episodes):
    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    return [np.asarray(t) for t in (sx, sy, qx, qy)]


def _classification(rng, tasks=400, ways=5, shots=2, size=6):
    sx = rng.uniform(size=(tasks, ways * shots, size, size, 1)).astype("float32")
    sy = np.tile(np.repeat(np.arange(ways), shots), (tasks, 1)).astype("int32")
    qx = rng.uniform(size=(tasks, ways, size, size, 1)).astype("float32")
    qy = np.tile(np.arange(ways), (tasks, 1)).astype("int32")
    return make(*(tf.constant(a) for a in (sx, sy, qx, qy)))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.4, 1.0])
def test_label_noise_flips_the_asked_fraction_of_support_labels_to_other_classes(rng, fraction):
    episodes = _classification(rng)
    out = transforms.label_noise(fraction, num_classes=5)(episodes, seed=3)
    sx, sy, qx, qy = _arrays(episodes)
    nx, ny, nqx, nqy = _arrays(out)
    flipped = ny != sy
    assert abs(flipped.mean() - fraction) < 0.02  # 4,000 labels
    per_task = flipped.sum(axis=1)  # fraction * 10 labels per task, rounded up or down
    assert per_task.min() >= np.floor(fraction * 10) and per_task.max() <= np.ceil(fraction * 10)
    assert ny.min() >= 0 and ny.max() < 5
    np.testing.assert_array_equal(nx, sx)
    np.testing.assert_array_equal(nqx, qx)
    np.testing.assert_array_equal(nqy, qy)


def test_label_noise_negates_regression_targets():
    episodes, _ = SinusoidTasks(10, 5).sample(50, [0, 0])
    out = transforms.label_noise(0.3)(episodes, seed=1)
    sy, ny = _arrays(episodes)[1], _arrays(out)[1]
    changed = ~np.isclose(ny, sy)
    np.testing.assert_allclose(ny[changed], -sy[changed])
    assert (changed.sum(axis=1) == 3).all()  # exactly 0.3 x 10 per task


def test_input_noise_touches_only_the_support_inputs_with_the_asked_std(rng):
    episodes = _classification(rng)
    out = transforms.input_noise(0.05)(episodes, seed=0)
    sx, sy, qx, qy = _arrays(episodes)
    nx, ny, nqx, nqy = _arrays(out)
    assert abs((nx - sx).std() - 0.05) < 0.002
    np.testing.assert_array_equal(ny, sy)
    np.testing.assert_array_equal(nqx, qx)
    both = _arrays(transforms.input_noise(0.5, part="both", clip=(0.0, 1.0))(episodes, seed=0))
    assert not np.allclose(both[2], qx) and both[0].min() >= 0.0 and both[0].max() <= 1.0


def test_corrupt_example_changes_one_support_input_per_task_and_no_label(rng):
    episodes = _classification(rng, tasks=20)
    sx, sy, qx, _ = _arrays(episodes)
    nx, ny, nqx, _ = _arrays(transforms.corrupt_example()(episodes, seed=5))
    changed = (nx != sx).reshape(nx.shape[:2] + (-1,)).any(axis=-1)
    assert (changed.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(ny, sy)
    np.testing.assert_array_equal(nqx, qx)


def test_duplicate_example_appends_a_copy_of_one_support_example(rng):
    episodes = _classification(rng, tasks=20)
    sx, sy = _arrays(episodes)[:2]
    nx, ny = _arrays(transforms.duplicate_example()(episodes, seed=5))[:2]
    assert nx.shape[1] == sx.shape[1] + 1
    np.testing.assert_array_equal(nx[:, :-1], sx)
    np.testing.assert_array_equal(ny[:, :-1], sy)
    for t in range(len(sx)):  # the new example equals its source, image and label
        source = [i for i in range(sx.shape[1]) if np.array_equal(sx[t, i], nx[t, -1])]
        assert len(source) == 1 and ny[t, -1] == sy[t, source[0]]


def test_rotation_by_90_degrees_is_a_quarter_turn_and_scale_1_is_the_identity(rng):
    episodes = _classification(rng, tasks=3)
    sx = _arrays(episodes)[0]
    turned = _arrays(transforms.rotate_images(90)(episodes, seed=0))[0]
    quarter = [np.rot90(sx, k, axes=(-3, -2)) for k in (1, 3)]
    assert min(np.abs(turned - q).max() for q in quarter) < 1e-4
    np.testing.assert_allclose(_arrays(transforms.scale_images(1.0)(episodes, seed=0))[0], sx, atol=1e-5)
    assert not np.allclose(_arrays(transforms.rotate_images(45)(episodes, seed=0))[0], sx)


@pytest.mark.parametrize("make_transform, message", [
    (lambda: transforms.label_noise(1.5), r"\[0, 1\]"),
    (lambda: transforms.label_noise(-0.1), r"\[0, 1\]"),
    (lambda: transforms.input_noise(-1.0), ">= 0"),
    (lambda: transforms.input_noise(0.1, part="query"), "part"),
    (lambda: transforms.scale_images(0.0), "> 0"),
])
def test_bad_strengths_are_one_line_errors(make_transform, message):
    with pytest.raises(ValueError, match=message) as error:
        make_transform()
    assert "\n" not in str(error.value)


def test_transformed_tasks_give_the_same_tasks_and_change_on_every_call():
    tasks = transforms.TransformedTasks(SinusoidTasks(5, 5), transforms.input_noise(0.3))
    first, second = (_arrays(next(tasks.fixed_tasks(10, 4))) for _ in range(2))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    five = tasks.with_shots(2)
    assert five.support_shots == 2 and _arrays(next(five.fixed_tasks(3, 4)))[0].shape == (3, 2, 1)


def test_sinusoid_frequency_family_and_fixed_tasks():
    paper = SinusoidTasks(5, 5)
    episodes, params = paper.sample(20, [1, 0])
    sx, sy = _arrays(episodes)[:2]
    a, p = np.asarray(params["amplitude"])[:, None, None], np.asarray(params["phase"])[:, None, None]
    np.testing.assert_allclose(sy, a * np.sin(sx - p), atol=1e-5)  # the default is the paper's family
    fixed = _arrays(next(paper.fixed_tasks(20, 1)))
    np.testing.assert_array_equal(fixed[1], sy)
    shifted, params = SinusoidTasks(5, 5, frequency_range=(2.0, 2.0)).sample(20, [1, 0])
    sx, sy = _arrays(shifted)[:2]
    np.testing.assert_allclose(sy, a * np.sin(2 * sx - p), atol=1e-4)


def test_with_shots_checks_its_input():
    with pytest.raises(ValueError, match=">= 1"):
        SinusoidTasks(5, 5).with_shots(0)
    images = np.zeros((6, 20, 4, 4, 1), np.uint8)
    tasks = FewShotTasks(images, 5, 1, 5)
    assert tasks.with_shots(15).support_shots == 15
    with pytest.raises(ValueError, match="only 20"):
        tasks.with_shots(16)
