"""MiniImagenet through the project's TFDS builder, on tiny generated data (offline)."""
import csv
import os
import pickle
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from maml_tf.datasets import mini_imagenet, paths, synthetic
from maml_tf.datasets.errors import DatasetNotFoundError

PREPARE_COMMAND = "maml data prepare mini_imagenet --from"
CLASSES = (3, 2, 2)
PER_CLASS = 4


def csv_rows(root, name):
    with open(os.path.join(root, name), newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Ravi layout, 3/2/2 classes x 4 images of 40x40 (so they get resized)."""
    root = str(tmp_path_factory.mktemp("source"))
    return synthetic.write_mini_imagenet_like(root, classes=CLASSES, images_per_class=PER_CLASS,
                                              image_size=40, seed=3)


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory):
    return mini_imagenet.prepare(source, data_dir=str(tmp_path_factory.mktemp("tfds")))


@pytest.fixture
def source_copy(source, tmp_path):
    return shutil.copytree(source, tmp_path / "source")


def write_pickles(root, protocols=(2, 4, 5), classes=CLASSES, seed=0):
    """The three cache pickles with random images; returns {split: (image_data, class_dict)}."""
    rng = np.random.default_rng(seed)
    written, wnid = {}, 0
    for stem, count, protocol in zip(("train", "val", "test"), classes, protocols):
        images = rng.integers(0, 256, size=(count * PER_CLASS, 84, 84, 3), dtype=np.uint8)
        # Rows of a class need not be contiguous: interleave them.
        class_dict = {f"n8{wnid + c:07d}": list(range(c, count * PER_CLASS, count)) for c in range(count)}
        wnid += count
        with open(os.path.join(root, f"mini-imagenet-cache-{stem}.pkl"), "wb") as f:
            pickle.dump({"image_data": images, "class_dict": class_dict}, f, protocol=protocol)
        written[stem] = (images, class_dict)
    return written


def test_prepare_from_ravi_layout(source, prepared):
    builder = tfds.builder("mini_imagenet", data_dir=prepared)
    assert isinstance(builder, mini_imagenet.MiniImagenet)
    all_wnids = sorted({row["label"] for name in synthetic.SPLIT_FILES for row in csv_rows(source, name)})
    assert builder.info.features["label"].names == all_wnids
    assert {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")} == {
        "train": 12, "validation": 8, "test": 8}

    for split, csv_name, count in zip(("train", "validation", "test"), synthetic.SPLIT_FILES, CLASSES):
        images, class_names = mini_imagenet.load(split, data_dir=prepared)
        rows = csv_rows(source, csv_name)
        assert class_names == sorted({row["label"] for row in rows})
        assert images.shape == (count, PER_CLASS, 84, 84, 3) and images.dtype == np.uint8
        # Exactly the resized source pixels (PNG is lossless), classes and files sorted.
        for i, wnid in enumerate(class_names):
            files = sorted(row["filename"] for row in rows if row["label"] == wnid)
            expected = [mini_imagenet._read_image(os.path.join(source, "images", f)) for f in files]
            np.testing.assert_array_equal(images[i], np.stack(expected))


def test_val_alias_and_unknown_split(prepared):
    np.testing.assert_array_equal(mini_imagenet.load("val", prepared)[0],
                                  mini_imagenet.load("validation", prepared)[0])
    with pytest.raises(ValueError, match="^split must be one of train, validation, test, val for MiniImagenet, "
                                         "got 'meta-test'\\.$"):
        mini_imagenet.load("meta-test", prepared)


def test_load_is_deterministic_and_cached(prepared, monkeypatch):
    first, names = mini_imagenet.load("test", prepared)
    cache = os.path.join(paths.array_cache_dir(prepared, "mini_imagenet", "1.0.0"), "test.npy")
    assert os.path.isfile(cache) and isinstance(first, np.memmap)

    def no_decoding(*args):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(mini_imagenet, "_decode_split", no_decoding)
    second, names_again = mini_imagenet.load("test", prepared)
    np.testing.assert_array_equal(first, second)
    assert names == names_again


def test_decoding_again_gives_the_same_array(source, tmp_path):
    """Two independent builds and decodes of the same source agree."""
    a = mini_imagenet.load("train", mini_imagenet.prepare(source, data_dir=str(tmp_path / "a")))
    b = mini_imagenet.load("train", mini_imagenet.prepare(source, data_dir=str(tmp_path / "b")))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


def test_csvs_from_splits_dir(source_copy, tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    for name in synthetic.SPLIT_FILES:
        shutil.move(source_copy / name, splits / name)
    data_dir = mini_imagenet.prepare(source_copy, data_dir=str(tmp_path / "tfds"), splits_dir=str(splits))
    assert mini_imagenet.load("test", data_dir)[0].shape[:2] == (2, PER_CLASS)


def class_folders(source, root, extra=()):
    """The images of ``source`` regrouped as a snapshot of the split does it: class folders
    ``train/<wnid>/`` and ``val/<wnid>/`` (a per-class split of its own, not the CSVs'), no
    images/ folder; the CSVs at the top. ``extra``: file names added that no CSV lists."""
    for name in synthetic.SPLIT_FILES:
        for i, row in enumerate(csv_rows(source, name)):
            folder = os.path.join(root, "val" if i % 4 == 3 else "train", row["label"])
            os.makedirs(folder, exist_ok=True)
            shutil.copy(os.path.join(source, "images", row["filename"]), folder)
        shutil.copy(os.path.join(source, name), root)
    for name in extra:
        shutil.copy(os.path.join(folder, os.listdir(folder)[0]), os.path.join(folder, name))
    return root


def test_prepare_from_class_folders_gives_the_same_dataset(source, prepared, tmp_path):
    heard = []
    folders = class_folders(source, str(tmp_path / "snapshot"), extra=("n9999999900000001.jpg",))
    data_dir = mini_imagenet.prepare(folders, data_dir=str(tmp_path / "tfds"), echo=heard.append)
    assert len(heard) == 1 and "1 image files" in heard[0] and "n9999999900000001.jpg" in heard[0]
    for split in ("train", "validation", "test"):  # the CSVs decide the split, not the folders
        ours, names = mini_imagenet.load(split, data_dir)
        reference, reference_names = mini_imagenet.load(split, prepared)
        np.testing.assert_array_equal(ours, reference)
        assert names == reference_names


def test_class_folders_missing_and_misfiled_images(source, tmp_path):
    folders = class_folders(source, str(tmp_path / "snapshot"))
    first, second = csv_rows(folders, "train.csv")[0], csv_rows(folders, "val.csv")[0]
    os.remove(os.path.join(folders, "train", first["label"], first["filename"]))
    with pytest.raises(DatasetNotFoundError) as error:
        mini_imagenet.prepare(folders, data_dir=str(tmp_path / "tfds"))
    assert "1 of the 28 images" in str(error.value) and first["filename"] in str(error.value)

    folders = class_folders(source, str(tmp_path / "again"))
    wrong = os.path.join(folders, "train", first["label"])
    shutil.move(os.path.join(folders, "train", second["label"], second["filename"]), wrong)
    with pytest.raises(ValueError, match=f"1 images are in the folder of another class.*CSV: {second['label']}"):
        mini_imagenet.prepare(folders, data_dir=str(tmp_path / "tfds"))


def test_identical_images(source_copy, prepared, tmp_path):
    assert mini_imagenet.identical_images(prepared) == []
    train, test = csv_rows(source_copy, "train.csv"), csv_rows(source_copy, "test.csv")
    shutil.copy(source_copy / "images" / train[0]["filename"], source_copy / "images" / test[1]["filename"])
    data_dir = mini_imagenet.prepare(source_copy, data_dir=str(tmp_path / "tfds"))
    first = sorted(r["filename"] for r in train if r["label"] == train[0]["label"]).index(train[0]["filename"])
    second = sorted(r["filename"] for r in test if r["label"] == test[1]["label"]).index(test[1]["filename"])
    assert mini_imagenet.identical_images(data_dir) == [
        [("train", train[0]["label"], first), ("test", test[1]["label"], second)]]


# The Ravi & Larochelle CSVs (twitter/meta-learning-lstm), as their README lists them.
RAVI_SHA256 = {"train.csv": "498519cd8e49ce97ed26a4a3638966698ae41ab35e9c68538319fc9b46ba7d2f",
               "val.csv": "5658a59921ca027ee76af92949869c5d6f41d77592ff3b18db325a9d10c893b9",
               "test.csv": "2b7cfa78342995761a572a8158e539bc4e0a80f9bbd7d00c1e17a460fbbb93fa"}


def test_the_package_ships_the_ravi_split_csvs():
    import hashlib

    folder = paths.bundled(mini_imagenet.SPLITS_SOURCE)
    for name, sha in RAVI_SHA256.items():
        with open(os.path.join(folder, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha, name
    assert os.path.isfile(os.path.join(folder, "LICENSE"))


def test_images_without_csvs_use_the_shipped_splits(tmp_path):
    (tmp_path / "source" / "images").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as error:
        mini_imagenet.prepare(tmp_path / "source", data_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert "n0153282900000005.jpg" in message and paths.bundled(mini_imagenet.SPLITS_SOURCE) in message


def test_prepare_from_pickles(tmp_path):
    source = tmp_path / "pickles"
    source.mkdir()
    written = write_pickles(source)
    data_dir = mini_imagenet.prepare(source, data_dir=str(tmp_path / "tfds"))
    for split, stem in (("train", "train"), ("val", "val"), ("test", "test")):
        images, class_names = mini_imagenet.load(split, data_dir)
        image_data, class_dict = written[stem]
        assert class_names == sorted(class_dict)
        expected = np.stack([image_data[class_dict[wnid]] for wnid in class_names])
        np.testing.assert_array_equal(images, expected)


def test_pickle_written_by_numpy_1(tmp_path):
    """numpy 1.x pickles name numpy.core.multiarray (numpy 2 moved it to numpy._core)."""
    images = np.arange(2 * 84 * 84 * 3, dtype=np.uint8).reshape(2, 84, 84, 3)
    data = pickle.dumps({"image_data": images, "class_dict": {"n01": [0, 1]}}, protocol=2)
    assert b"cnumpy._core.multiarray\n" in data
    path = tmp_path / "old.pkl"
    path.write_bytes(data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    np.testing.assert_array_equal(mini_imagenet._read_pickle(path)["image_data"], images)


def test_prepare_from_another_source_rebuilds(source, tmp_path):
    data_dir = mini_imagenet.prepare(source, data_dir=str(tmp_path / "tfds"))
    ravi_names = mini_imagenet.load("train", data_dir)[1]
    pickles = tmp_path / "pickles"
    pickles.mkdir()
    written = write_pickles(pickles)
    mini_imagenet.prepare(pickles, data_dir=data_dir)
    names = mini_imagenet.load("train", data_dir)[1]
    assert names == sorted(written["train"][1]) and names != ravi_names


def test_malicious_pickle_is_refused_without_running(tmp_path):
    source = tmp_path / "pickles"
    source.mkdir()
    write_pickles(source)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with open(source / "mini-imagenet-cache-train.pkl", "wb") as f:
        pickle.dump({"image_data": Exploit(), "class_dict": {}}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load the global posix.system"):
        mini_imagenet.prepare(source, data_dir=str(tmp_path / "tfds"))
    assert not marker.exists()


def test_missing_images(source_copy, tmp_path):
    for name in ("train", "test"):
        os.remove(source_copy / "images" / csv_rows(source_copy, f"{name}.csv")[0]["filename"])
    first_missing = csv_rows(source_copy, "train.csv")[0]["filename"]
    with pytest.raises(DatasetNotFoundError) as error:
        mini_imagenet.prepare(source_copy, data_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert "2 of the 28 images" in message and first_missing in message
    assert PREPARE_COMMAND in message and "prepare(DIR)" in message


def test_missing_csv(source_copy, tmp_path):
    os.remove(source_copy / "val.csv")
    with pytest.raises(DatasetNotFoundError, match="val.csv") as error:
        mini_imagenet.prepare(source_copy, data_dir=str(tmp_path / "tfds"))
    assert "train.csv" not in str(error.value).split("\n")[0]
    assert PREPARE_COMMAND in str(error.value)


@pytest.mark.parametrize("make", ["absent", "empty", "some_pickles"])
def test_no_source(tmp_path, make):
    source = tmp_path / "source"
    if make != "absent":
        source.mkdir()
    if make == "some_pickles":
        (source / "mini-imagenet-cache-train.pkl").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError) as error:
        mini_imagenet.prepare(source, data_dir=str(tmp_path / "tfds"))
    message = str(error.value)
    assert "images/" in message and "mini-imagenet-cache-val.pkl" in message and PREPARE_COMMAND in message
    assert not (tmp_path / "tfds").exists()


def test_unprepared_data_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        mini_imagenet.load("train", data_dir=str(tmp_path))
    message = str(error.value)
    assert str(tmp_path) in message and "images/" in message and "mini-imagenet-cache-train.pkl" in message
    assert f"{PREPARE_COMMAND} DIR" in message
    assert f"maml_tf.datasets.mini_imagenet.prepare(DIR, data_dir={str(tmp_path)!r})" in message


def test_unequal_class_counts(source_copy, tmp_path):
    rows = csv_rows(source_copy, "train.csv")[1:]
    with open(source_copy / "train.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ("filename", "label"), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    data_dir = mini_imagenet.prepare(source_copy, data_dir=str(tmp_path / "tfds"))
    with pytest.raises(ValueError, match="different numbers of images"):
        mini_imagenet.load("train", data_dir)


def test_synthetic_is_deterministic(tmp_path):
    def files(seed, name):
        root = synthetic.write_mini_imagenet_like(tmp_path / name, classes=(2, 1, 1), images_per_class=2,
                                                  image_size=16, seed=seed)
        return {p: (root / "images" / p).read_bytes() for p in sorted(os.listdir(root / "images"))}

    assert files(0, "a") == files(0, "b") != files(1, "c")
    labels = [[row["label"] for row in csv_rows(tmp_path / "a", name)] for name in synthetic.SPLIT_FILES]
    assert [len(set(split)) for split in labels] == [2, 1, 1]
    assert [len(split) for split in labels] == [4, 2, 2]

