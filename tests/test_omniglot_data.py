"""Omniglot through TFDS, prepared offline from local zips: a tiny fake source in the
upstream layout (tests/fake_omniglot.py), the errors, and the real zips' checksums."""
import hashlib
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from click.testing import CliRunner

import fake_omniglot
from data_sources import OMNIGLOT_SOURCE as REAL_SOURCE
from maml_tf import cli
from maml_tf.datasets import omniglot
from maml_tf.datasets.errors import DatasetNotFoundError

COMMAND = "maml data prepare omniglot"
# 2 background alphabets x 3 characters (0001-0006), 1 evaluation alphabet x 2 (0007-0008).
BACKGROUND, EVALUATION = (3, 3), (2,)
SPLITS = {"train": 4, "validation": 2, "test": 2}
# The real zips' checksums, from the shared folder's README (independent of the module's table).
REAL_SHA256 = {
    "images_background.zip": "7a4cae547f16207901bd3acaabd866c1dbbef4d559dff26d797dbc6423a64a1e",
    "images_evaluation.zip": "d84af890b3ea334eca90f1cb04c6111603a1b620d66b82f86414b8707fbd0e8d",
    "images_background_small1.zip": "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "images_background_small2.zip": "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
}
UPSTREAM_BACKGROUND_SHA256 = "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return fake_omniglot.write_source(str(tmp_path_factory.mktemp("omniglot_source")),
                                      background=BACKGROUND, evaluation=EVALUATION)


@pytest.fixture
def fake(source, monkeypatch):
    """The fake source, with the module (and TFDS builder) constants patched to accept it."""
    fake_omniglot.patch(monkeypatch, source, SPLITS)
    return source


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory):
    """A data dir prepared (and decoded) once for the read-only tests."""
    with pytest.MonkeyPatch.context() as mp:
        fake_omniglot.patch(mp, source, SPLITS)
        data_dir = omniglot.prepare(source["source"], str(tmp_path_factory.mktemp("tfds")))
        images = omniglot.load_characters(data_dir)
    return data_dir, images


def forbid_tfds(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("TFDS was used")

    monkeypatch.setattr(tfds, "load", fail)
    monkeypatch.setattr(tfds, "builder", fail)
    monkeypatch.setattr(tfds, "builder_cls", fail)


def copy_source(source, destination, without=()):
    os.makedirs(destination)
    for name in omniglot.ZIPS:
        if name not in without:
            shutil.copy(os.path.join(source["source"], name), destination)
    return str(destination)


def assert_points_to_prepare(error, *missing):
    message = str(error.value)
    assert COMMAND in message, message
    for thing in missing:
        assert thing in message, (thing, message)


# ----------------------------------------------------------------------------- prepare + load
def test_fake_source_layout(source):
    import zipfile

    with zipfile.ZipFile(os.path.join(source["source"], "images_evaluation.zip")) as z:
        names = z.namelist()
    assert {n.split("/")[0] for n in names} == {"images_evaluation"}
    assert "images_evaluation/Evaluation_Alphabet_0/character02/0008_20.png" in names
    assert sum(n.endswith(".png") for n in names) == 2 * 20


def test_prepare_and_load_characters(fake, tmp_path):
    data_dir = omniglot.prepare(fake["source"], str(tmp_path / "tfds"))
    assert data_dir == str(tmp_path / "tfds")
    builder = tfds.builder("omniglot", data_dir=data_dir)
    assert builder.info.splits["train"].num_examples == 6 * 20
    assert builder.info.splits["test"].num_examples == 2 * 20

    images = omniglot.load_characters(data_dir)
    assert images.shape == (8, 20, 28, 28, 1) and images.dtype == np.uint8
    # Inverted: background 0, strokes 255 (the PNGs are black strokes on white).
    assert images.max() == 255 and np.mean(images == 0) > 0.6
    assert np.all(images[:, :, -1, 0] == 0) and np.all(images[:, :, 14, 14] == 0)  # empty cells
    for c in range(8):  # indexed by character number (file NNNN - 1), small1/2 not duplicated
        assert [fake_omniglot.character_of(d) for d in images[c]] == [c] * 20, c
        assert len({d.tobytes() for d in images[c]}) == 20  # 20 different drawings
    # The drawer marks (bottom-right corner) are the same 20 for every character.
    marks = [sorted(d[20:, 20:].tobytes() for d in images[c]) for c in range(8)]
    assert all(m == marks[0] for m in marks)
    assert os.path.isfile(omniglot._cache_path(data_dir, 28))  # decoded once, cached


def test_decode_cache_is_reused(fake, prepared, monkeypatch):
    data_dir, images = prepared
    cache = omniglot._cache_path(data_dir, 28)
    assert os.path.isfile(cache) and cache.startswith(data_dir + os.sep)
    forbid_tfds(monkeypatch)
    np.testing.assert_array_equal(omniglot.load_characters(data_dir), images)
    np.testing.assert_array_equal(omniglot.load("test", data_dir),
                                  images[omniglot.split_characters("test")])


def test_other_size_is_decoded_and_cached_separately(fake, prepared):
    data_dir, images = prepared
    small = omniglot.load_characters(data_dir, size=14)
    assert small.shape == (8, 20, 14, 14, 1) and small.dtype == np.uint8
    assert os.path.isfile(omniglot._cache_path(data_dir, 14))
    assert omniglot._cache_path(data_dir, 14) != omniglot._cache_path(data_dir, 28)
    for c in range(8):
        assert {fake_omniglot.character_of(d) for d in small[c]} == {c}


def test_two_fresh_data_dirs_give_identical_arrays(fake, prepared, tmp_path):
    _, images = prepared
    again = omniglot.load_characters(omniglot.prepare(fake["source"], str(tmp_path / "b")))
    np.testing.assert_array_equal(again, images)


def test_prepare_twice_is_harmless(fake, tmp_path):
    data_dir = omniglot.prepare(fake["source"], str(tmp_path / "tfds"))
    first = omniglot.load_characters(data_dir)
    assert omniglot.prepare(fake["source"], data_dir) == data_dir
    np.testing.assert_array_equal(omniglot.load_characters(data_dir), first)


def test_load_splits(fake, prepared):
    data_dir, images = prepared
    for split, count in SPLITS.items():
        part = omniglot.load(split, data_dir)
        assert part.shape == (count, 20, 28, 28, 1) and part.dtype == np.uint8
        expected = omniglot.split_characters(split)
        for i, c in enumerate(expected):
            assert {fake_omniglot.character_of(d) for d in part[i]} == {c}


def test_prepare_leaves_the_builder_checksums_alone(fake, tmp_path):
    builder_cls = tfds.builder_cls("omniglot")
    before = dict(builder_cls.url_infos)
    omniglot.prepare(fake["source"], str(tmp_path / "tfds"))
    assert dict(builder_cls.url_infos) == before
    assert "url_infos" not in builder_cls.__dict__ or builder_cls.__dict__["url_infos"] == before


# ----------------------------------------------------------------------------- the split
def check_split(num_characters, sizes):
    parts = {name: omniglot.split_characters(name) for name in sizes}
    for name, part in parts.items():
        assert len(part) == sizes[name], name
        assert np.all(np.diff(part) > 0), name  # sorted, no repeats
        np.testing.assert_array_equal(part, omniglot.split_characters(name))  # same every call
    everything = np.concatenate(list(parts.values()))
    assert len(set(everything.tolist())) == len(everything)  # disjoint
    np.testing.assert_array_equal(np.sort(everything), np.arange(num_characters))
    return parts


def test_split_characters_of_the_fake(fake):
    parts = check_split(8, SPLITS)
    other = omniglot.split_characters("train", seed=2)
    assert len(other) == 4  # another seed is another (valid) split


def test_real_split_sizes_without_data(monkeypatch):
    forbid_tfds(monkeypatch)
    assert omniglot.NUM_CHARACTERS == 1623
    assert omniglot.SPLIT_SIZES == {"train": 1100, "validation": 100, "test": 423}
    parts = check_split(1623, {"train": 1100, "validation": 100, "test": 423})
    order = np.random.RandomState(1).permutation(1623)  # the documented protocol
    np.testing.assert_array_equal(parts["train"], np.sort(order[:1100]))
    np.testing.assert_array_equal(parts["test"], np.sort(order[1200:]))
    # Meta-test characters come from both background (0-963) and evaluation alphabets.
    assert parts["test"].min() < 964 <= parts["test"].max()


def test_unknown_split():
    for split in ("val", "meta-test", "TRAIN"):
        message = f"^split must be one of train, validation, test for Omniglot, got '{split}'\\.$"
        with pytest.raises(ValueError, match=message):
            omniglot.split_characters(split)


def test_unknown_split_on_load(fake, prepared):
    with pytest.raises(ValueError, match="split must be one of train, validation, test for Omniglot, got 'val'"):
        omniglot.load("val", prepared[0])


# ----------------------------------------------------------------------------- errors
def test_no_source_folder(tmp_path):
    missing = str(tmp_path / "nowhere")
    for call in (lambda: omniglot.verify_source(missing),
                 lambda: omniglot.prepare(missing, str(tmp_path / "tfds"))):
        with pytest.raises(DatasetNotFoundError) as error:
            call()
        assert_points_to_prepare(error, "nowhere", *omniglot.ZIPS)
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.verify_source(None)
    assert_points_to_prepare(error, "No Omniglot source folder", "images_background.zip")
    assert not os.path.exists(tmp_path / "tfds")


def test_a_file_instead_of_a_folder(tmp_path):
    path = tmp_path / "images_background.zip"
    path.write_bytes(b"not a folder")
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.verify_source(str(path))
    assert_points_to_prepare(error, str(path))


@pytest.mark.parametrize("missing", [("images_evaluation.zip",),
                                     ("images_background_small1.zip", "images_background_small2.zip")])
def test_a_missing_zip_is_named(fake, tmp_path, missing):
    folder = copy_source(fake, tmp_path / "partial", without=missing)
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.prepare(folder, str(tmp_path / "tfds"))
    assert_points_to_prepare(error, f"lacks {', '.join(missing)}.", folder)
    present = [name for name in omniglot.ZIPS if name not in missing]
    first_sentence = str(error.value).split(". Omniglot needs")[0]
    assert not any(name in first_sentence for name in present), first_sentence
    assert not os.path.exists(tmp_path / "tfds")


def test_unknown_checksum_is_rejected(source, tmp_path):
    """Real module constants: the fake zips under their real names are unknown files."""
    folder = copy_source(source, tmp_path / "fake_under_real_names")
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.verify_source(folder)
    message = str(error.value)
    assert os.path.join(folder, "images_background.zip") in message
    assert source["sha256"]["images_background.zip"] in message
    assert UPSTREAM_BACKGROUND_SHA256 in message  # says what it expected
    with pytest.raises(DatasetNotFoundError):
        omniglot.prepare(folder, str(tmp_path / "tfds"))
    assert not os.path.exists(tmp_path / "tfds")


def test_unknown_checksum_of_one_zip_among_real_ones(source, tmp_path):
    if not os.path.isdir(REAL_SOURCE):
        pytest.skip(f"{REAL_SOURCE} is not on this machine")
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in omniglot.ZIPS[:-1]:
        os.symlink(os.path.join(REAL_SOURCE, name), folder / name)
    shutil.copy(os.path.join(source["source"], omniglot.ZIPS[-1]), folder)
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.verify_source(str(folder))
    message = str(error.value)
    assert os.path.join(str(folder), "images_background_small2.zip") in message
    assert source["sha256"]["images_background_small2.zip"] in message


def test_unknown_checksum_message_names_the_prepare_command(source, tmp_path):
    """Like every other omniglot error, the checksum one says how to prepare."""
    folder = copy_source(source, tmp_path / "fake_under_real_names")
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.verify_source(folder)
    assert_points_to_prepare(error, "images_background.zip")


def test_load_from_an_unprepared_data_dir(tmp_path):
    empty = str(tmp_path / "empty_tfds")
    for call in (lambda: omniglot.load_characters(empty), lambda: omniglot.load("train", empty)):
        with pytest.raises(DatasetNotFoundError) as error:
            call()
        assert_points_to_prepare(error, "not prepared", empty)
    assert not os.path.exists(omniglot._cache_path(empty, 28))


def test_incomplete_prepared_dataset(fake, tmp_path, monkeypatch):
    data_dir = omniglot.prepare(fake["source"], str(tmp_path / "tfds"))
    monkeypatch.setattr(omniglot, "NUM_CHARACTERS", 9)
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.load_characters(data_dir)
    assert_points_to_prepare(error, "incomplete", "8 characters")
    assert not os.path.exists(omniglot._cache_path(data_dir, 28))


# ----------------------------------------------------------------------------- real zips
def test_verify_real_source():
    if not os.path.isdir(REAL_SOURCE):
        pytest.skip(f"{REAL_SOURCE} is not on this machine")
    checksums = omniglot.verify_source(REAL_SOURCE)
    assert checksums == REAL_SHA256
    assert checksums["images_background.zip"] != UPSTREAM_BACKGROUND_SHA256
    assert omniglot.KNOWN_SHA256["images_background.zip"][checksums["images_background.zip"]] == "rebuilt"
    assert omniglot.KNOWN_SHA256["images_evaluation.zip"][checksums["images_evaluation.zip"]] == "rebuilt"
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        assert omniglot.KNOWN_SHA256[name][checksums[name]] == "upstream"
    with open(os.path.join(REAL_SOURCE, "images_background_small1.zip"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == checksums["images_background_small1.zip"]


class _OfflineBuilder:
    """TFDS's omniglot builder on a machine without network (requests raises its
    ConnectionError, an OSError subclass of the same name)."""

    def download_and_prepare(self, *args, **kwargs):
        raise ConnectionError(
            "HTTPSConnectionPool(host='github.com', port=443): Max retries exceeded with url: "
            "/brendenlake/omniglot/raw/master/python/images_evaluation.zip")


def test_prepare_without_a_source_downloads_through_tfds(monkeypatch, tmp_path):
    asked = []

    class Builder:
        def download_and_prepare(self, *args, **kwargs):
            asked.append(kwargs)

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: asked.append((name, data_dir)) or Builder())
    assert omniglot.prepare(data_dir=str(tmp_path)) == str(tmp_path)
    assert asked == [("omniglot", str(tmp_path)), {}]  # upstream URLs and checksums, nothing patched


def test_offline_download_says_to_pass_from(monkeypatch, tmp_path):
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: _OfflineBuilder())
    with pytest.raises(DatasetNotFoundError) as error:
        omniglot.prepare(data_dir=str(tmp_path))
    message = str(error.value)
    assert "\n" not in message and "Could not download Omniglot (ConnectionError)" in message
    assert "--from DIR" in message and all(name in message for name in omniglot.ZIPS)


def test_cli_prepare_offline_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: _OfflineBuilder())
    out = CliRunner().invoke(cli.main, ["data", "prepare", "omniglot", "--data-dir", str(tmp_path)])
    assert out.exit_code == 1, out.output
    lines = out.stderr.splitlines()  # what it tries, then the error: one line each
    assert out.stdout == "" and len(lines) == 2, out.stderr
    assert lines[0] == "omniglot: downloading through TFDS (offline: --from DIR)"
    assert lines[1].startswith("Error: Could not download Omniglot (ConnectionError)") and "--from DIR" in lines[1]


# ----------------------------------------------------------------------------- the authors' images
@pytest.mark.parametrize("size", [28, 14, 84, 105])
def test_nearest_rows_are_pils_resize_of_a_1bit_image(size):
    """What cbfinn/maml's resize_images.py does, `Image.resize(..., LANCZOS)` on a 1-bit PNG,
    is PIL's nearest-neighbour sampling at the rows and columns we take."""
    from PIL import Image

    pixels = np.random.default_rng(size).random((105, 105)) < 0.3
    theirs = np.asarray(Image.fromarray(pixels).convert("1").resize((size, size), resample=Image.LANCZOS))
    rows = omniglot.nearest_rows(105, size)
    np.testing.assert_array_equal(pixels[rows][:, rows], theirs)


def test_nearest_images_are_the_authors_binary_ones(fake, prepared):
    """`resize="nearest"`: for every character, the 20 drawings as the authors' pipeline
    makes them from the PNGs (PIL resize as resize_images.py, then 1 - x as
    data_generator.py), binary; cached apart from the antialiased array."""
    import zipfile
    from io import BytesIO

    from PIL import Image

    data_dir, antialiased = prepared
    images = omniglot.load_characters(data_dir, resize="nearest")
    assert images.shape == antialiased.shape and images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 255}
    assert len(np.unique(antialiased)) > 2  # the default has grey edges
    assert omniglot._cache_path(data_dir, 28, "nearest") != omniglot._cache_path(data_dir, 28)
    assert os.path.isfile(omniglot._cache_path(data_dir, 28, "nearest"))
    theirs = {}
    for name in ("images_background.zip", "images_evaluation.zip"):
        with zipfile.ZipFile(os.path.join(fake["source"], name)) as z:
            for member in (n for n in z.namelist() if n.endswith(".png")):
                image = Image.open(BytesIO(z.read(member))).resize((28, 28), resample=Image.LANCZOS)
                inverted = (1 - np.asarray(image, np.uint8)) * 255
                character = int(os.path.basename(member)[:4]) - 1
                theirs.setdefault(character, []).append(inverted[..., None].tobytes())
    for c in range(len(images)):
        assert sorted(d.tobytes() for d in images[c]) == sorted(theirs[c]), c


def test_an_unknown_resize_is_refused_before_any_decoding(tmp_path):
    with pytest.raises(ValueError, match="resize must be one of lanczos3, nearest, got 'bicubic'"):
        omniglot.load_characters(str(tmp_path), resize="bicubic")
