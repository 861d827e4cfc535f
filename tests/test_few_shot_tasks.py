"""FewShotTasks (N-way K-shot episodes, Section 5.2) on a synthetic array whose pixels
say which class and which example each image is, and how it was rotated."""
import numpy as np
import pytest
import tensorflow as tf

from maml_tf.core import episodes as episode_utils
from maml_tf.tasks.few_shot import FewShotTasks

CLASSES, PER_CLASS, SIZE = 12, 7, 6
MARKER = 250  # in the top-left corner of every (unrotated) image


def make_images(classes=CLASSES, per_class=PER_CLASS, height=SIZE, width=SIZE):
    """uint8 [classes, per_class, H, W, 1]: background 1 + class, the corner marker at
    (0, 0) and 100 + example at (0, 1), so an image is asymmetric under rotation."""
    images = np.empty((classes, per_class, height, width, 1), np.uint8)
    for c in range(classes):
        for e in range(per_class):
            images[c, e] = 1 + c
            images[c, e, 0, 0] = MARKER
            images[c, e, 0, 1] = 100 + e
    return images


IMAGES = make_images()


def identify(x):
    """(class, example, quarter turns) of a sampled float image [H, W, 1] in [0, 1]:
    undo the rotation that puts the marker back at (0, 0) and look the image up."""
    pixels = np.round(np.asarray(x) * 255).astype(np.uint8)
    turns = [k for k in range(4) if np.rot90(pixels, -k, axes=(0, 1))[0, 0, 0] == MARKER]
    assert len(turns) == 1, pixels[..., 0]
    k = turns[0]
    original = np.rot90(pixels, -k, axes=(0, 1))
    c, e = int(original[1, 1, 0]) - 1, int(original[0, 1, 0]) - 100
    np.testing.assert_array_equal(original, IMAGES[c, e])  # exactly a source image
    return c, e, k


def identify_all(xs):
    """[tasks, examples, 3] of (class, example, turns)."""
    return np.array([[identify(x) for x in task] for task in np.asarray(xs)])


def as_numpy(episodes):
    (sx, sy), (qx, qy) = episodes["support"], episodes["query"]
    return [np.asarray(t) for t in (sx, sy, qx, qy)]


def assert_batches_equal(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_shapes_and_dtypes():
    tasks = FewShotTasks(IMAGES, ways=3, support_shots=2, query_shots=4)
    assert tasks.image_shape == (SIZE, SIZE, 1)
    sx, sy, qx, qy = tasks.sample_numpy(5, seed=[0, 1])
    assert sx.shape == (5, 6, SIZE, SIZE, 1) and qx.shape == (5, 12, SIZE, SIZE, 1)
    assert sy.shape == (5, 6) and qy.shape == (5, 12)
    assert sx.dtype == qx.dtype == np.float32 and sy.dtype == qy.dtype == np.int32
    assert 0.0 <= min(sx.min(), qx.min()) and max(sx.max(), qx.max()) <= 1.0
    assert np.isclose(sx.max(), MARKER / 255)  # x = uint8 / 255

    episodes = tasks.sample(5, seed=[0, 1])
    assert set(episodes) == {"support", "query"}
    for got, want in zip(as_numpy(episodes), (sx, sy, qx, qy)):
        np.testing.assert_array_equal(got, want)  # sample is sample_numpy as tensors
    (tsx, tsy), (tqx, tqy) = episodes["support"], episodes["query"]
    assert tsx.dtype == tqx.dtype == tf.float32 and tsy.dtype == tqy.dtype == tf.int32
    episode_utils.unpack(episodes)

    spec = tasks.dataset(meta_batch_size=5).element_spec
    (ssx, ssy), (sqx, sqy) = spec["support"], spec["query"]
    assert ssx.shape == (5, 6, SIZE, SIZE, 1) and ssy.shape == (5, 6)
    assert sqx.shape == (5, 12, SIZE, SIZE, 1) and sqy.shape == (5, 12)
    assert all(s.shape.is_fully_defined() for s in (ssx, ssy, sqx, sqy))
    assert ssx.dtype == sqx.dtype == tf.float32 and ssy.dtype == sqy.dtype == tf.int32
    batch = next(iter(tasks.dataset(meta_batch_size=5)))
    assert as_numpy(batch)[0].shape == (5, 6, SIZE, SIZE, 1)


def test_labels_each_class_k_and_q_times():
    ways, k, q = 4, 2, 3
    _, sy, _, qy = FewShotTasks(IMAGES, ways, k, q).sample_numpy(20, seed=[1, 2])
    for task_sy, task_qy in zip(sy, qy):
        np.testing.assert_array_equal(np.bincount(task_sy, minlength=ways), [k] * ways)
        np.testing.assert_array_equal(np.bincount(task_qy, minlength=ways), [q] * ways)
        assert task_sy.min() == 0 and task_sy.max() == ways - 1


def test_support_and_query_of_a_label_are_one_class_and_distinct_images():
    ways, k, q = 5, 3, 4  # 7 = all images of a class
    sx, sy, qx, qy = FewShotTasks(IMAGES, ways, k, q).sample_numpy(30, seed=[2, 3])
    s_id, q_id = identify_all(sx), identify_all(qx)
    assert np.all(s_id[..., 2] == 0) and np.all(q_id[..., 2] == 0)  # rotate=False
    for t in range(len(sx)):
        classes = []
        for label in range(ways):
            s = s_id[t][sy[t] == label]
            qq = q_id[t][qy[t] == label]
            source = set(s[:, 0]) | set(qq[:, 0])
            assert len(source) == 1, (t, label, s, qq)  # one source class per label
            classes.append(source.pop())
            examples = list(s[:, 1]) + list(qq[:, 1])
            assert len(set(examples)) == k + q  # no image twice, support and query disjoint
            assert not set(s[:, 1]) & set(qq[:, 1])
        assert len(set(classes)) == ways, classes  # distinct classes within a task


def test_label_assignment_and_classes_vary_across_tasks():
    sx, sy, _, _ = FewShotTasks(IMAGES, 3, 1, 1).sample_numpy(200, seed=[4, 5])
    ids = identify_all(sx)
    # Support is class-major with one shot: example i has label i.
    assert np.all(sy == np.arange(3))
    classes = ids[..., 0]  # [tasks, ways]: source class of label 0, 1, 2
    assert len({tuple(c) for c in classes}) > 50
    assert not np.all(np.diff(classes, axis=1) > 0)  # labels are not in class order
    # Every class shows up under every label.
    for label in range(3):
        assert set(classes[:, label]) == set(range(CLASSES))
    # And different images of a class are drawn.
    assert len(set(ids[..., 1].ravel())) == PER_CLASS


def test_seeds_determine_the_tasks():
    tasks = FewShotTasks(IMAGES, 4, 2, 2, rotate=True)
    a = tasks.sample_numpy(8, seed=[3, 4])
    assert_batches_equal(a, tasks.sample_numpy(8, seed=[3, 4]))
    assert_batches_equal(a, FewShotTasks(IMAGES.copy(), 4, 2, 2, rotate=True).sample_numpy(8, seed=[3, 4]))
    for other in ([3, 5], [4, 4], 3):
        assert not np.array_equal(a[0], tasks.sample_numpy(8, seed=other)[0]), other


def test_dataset_batches_are_seeded_by_index_and_can_start_anywhere():
    tasks = FewShotTasks(IMAGES, 3, 2, 1)
    first = [as_numpy(b) for b in tasks.dataset(4, seed=7).take(4)]
    for a, b in zip(first, [as_numpy(b) for b in tasks.dataset(4, seed=7).take(4)]):
        assert_batches_equal(a, b)
    for i, batch in enumerate(first):
        assert_batches_equal(batch, tasks.sample_numpy(4, seed=[7, i]))
    assert not np.array_equal(first[0][0], first[1][0])
    resumed = [as_numpy(b) for b in tasks.dataset(4, seed=7, start=2).take(2)]
    assert_batches_equal(resumed[0], first[2])
    assert_batches_equal(resumed[1], first[3])
    other_seed = as_numpy(next(iter(tasks.dataset(4, seed=8))))
    assert not np.array_equal(other_seed[0], first[0][0])


def test_fixed_tasks_are_the_same_on_every_call():
    tasks = FewShotTasks(IMAGES, 3, 1, 2, rotate=True)
    a = [as_numpy(c) for c in tasks.fixed_tasks(25, seed=11, chunk_size=10)]
    b = [as_numpy(c) for c in tasks.fixed_tasks(25, seed=11, chunk_size=10)]
    assert [c[0].shape[0] for c in a] == [10, 10, 5]
    assert sum(c[1].shape[0] for c in a) == 25
    for x, y in zip(a, b):
        assert_batches_equal(x, y)
    one_chunk = [as_numpy(c) for c in tasks.fixed_tasks(7, seed=11)]
    assert len(one_chunk) == 1 and one_chunk[0][0].shape[0] == 7
    other = as_numpy(next(tasks.fixed_tasks(10, seed=12, chunk_size=10)))
    assert not np.array_equal(other[0], a[0][0])


def test_rotation_is_per_class_and_uses_all_four_turns():
    before = IMAGES.copy()
    ways, k, q = 4, 2, 3
    sx, sy, qx, qy = FewShotTasks(IMAGES, ways, k, q, rotate=True).sample_numpy(50, seed=[5, 6])
    s_id, q_id = identify_all(sx), identify_all(qx)  # asserts each is a rotated source image
    turns_seen = []
    for t in range(len(sx)):
        for label in range(ways):
            turns = set(s_id[t][sy[t] == label][:, 2]) | set(q_id[t][qy[t] == label][:, 2])
            assert len(turns) == 1, (t, label, turns)  # the whole class turns together
            turns_seen.append(turns.pop())
    counts = np.bincount(turns_seen, minlength=4)
    assert np.all(counts > 0.1 * len(turns_seen)), counts  # all four rotations, roughly uniform
    # Classes in one task can be turned differently (new classes by rotation).
    per_task = np.array(turns_seen).reshape(len(sx), ways)
    assert any(len(set(row)) > 1 for row in per_task)
    np.testing.assert_array_equal(IMAGES, before)  # the source array is not rotated in place


def test_no_rotation_without_rotate():
    sx, _, qx, _ = FewShotTasks(IMAGES, 4, 2, 3).sample_numpy(30, seed=[5, 6])
    assert np.all(identify_all(sx)[..., 2] == 0) and np.all(identify_all(qx)[..., 2] == 0)


@pytest.mark.parametrize("images, kwargs, message", [
    (IMAGES, dict(ways=CLASSES + 1, support_shots=1, query_shots=1),
     f"{CLASSES + 1}-way tasks need {CLASSES + 1} classes; this split has {CLASSES}"),
    (IMAGES, dict(ways=2, support_shots=5, query_shots=3),
     f"support_shots \\+ query_shots = 8 images per class, but each class has only {PER_CLASS}"),
    (IMAGES[:, :, :, :, 0], dict(ways=2, support_shots=1, query_shots=1),
     r"images must be \[classes, examples, height, width, channels\], got shape \(12, 7, 6, 6\)"),
    (IMAGES[0], dict(ways=2, support_shots=1, query_shots=1), "got shape"),
    (make_images(height=6, width=5), dict(ways=2, support_shots=1, query_shots=1, rotate=True),
     "rotate=True needs square images"),
    (IMAGES, dict(ways=0, support_shots=1, query_shots=1), "ways must be a whole number >= 1, got 0"),
    (IMAGES, dict(ways=2, support_shots=1, query_shots=0), "query_shots must be a whole number >= 1, got 0"),
])
def test_invalid_configurations(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        FewShotTasks(images, **kwargs)


def test_edge_configurations_are_valid():
    # All classes in one task, all images of a class used; non-square without rotate.
    sx, _, qx, _ = FewShotTasks(IMAGES, CLASSES, 3, 4).sample_numpy(2, seed=[0, 0])
    assert sx.shape[1] == CLASSES * 3 and qx.shape[1] == CLASSES * 4
    sx, _, _, _ = FewShotTasks(make_images(height=6, width=5), 2, 1, 1).sample_numpy(1, seed=0)
    assert sx.shape == (1, 2, 6, 5, 1)
