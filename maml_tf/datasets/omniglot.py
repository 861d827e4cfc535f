"""Omniglot through the TFDS ``omniglot`` builder: downloaded, or prepared offline from local zips.

``prepare()`` lets TFDS download the four upstream zips, as ``tfds.load`` does.
``prepare(DIR)`` feeds the zips in a local folder to TFDS as its manual directory,
without network. TFDS checks every file against the sha256 it registers; some copies
of the two large zips are rebuilt from the same PNGs (pixel-identical) and so have
other checksums. Rather than switching the check off, we accept a file only if its
sha256 is one we know (upstream or rebuilt, listed below) and hand TFDS exactly that
checksum.

``load`` turns the prepared dataset into the MAML protocol's arrays (Section 5.2 and
the authors' code): 28x28, inverted (strokes 1, background 0), grouped by character,
split 1100 / 100 / 423 characters. ``resize`` chooses how 105x105 becomes 28x28:
"lanczos3", antialiased (grey edges), or "nearest", the authors' actual images (below).
"""
import contextlib
import hashlib
import os

import numpy as np

from maml_tf.core.arguments import one_of
from maml_tf.datasets import paths
from maml_tf.datasets.errors import DatasetNotFoundError

ZIPS = ("images_background.zip", "images_evaluation.zip",
        "images_background_small1.zip", "images_background_small2.zip")
# sha256 of each zip we accept: the upstream file (what TFDS registers) and, for the
# two large zips, a known rebuild (same PNGs in another zip container).
KNOWN_SHA256 = {
    "images_background.zip": {
        "ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640": "upstream",
        "7a4cae547f16207901bd3acaabd866c1dbbef4d559dff26d797dbc6423a64a1e": "rebuilt",
    },
    "images_evaluation.zip": {
        "1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee": "upstream",
        "d84af890b3ea334eca90f1cb04c6111603a1b620d66b82f86414b8707fbd0e8d": "rebuilt",
    },
    "images_background_small1.zip": {
        "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4": "upstream"},
    "images_background_small2.zip": {
        "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f": "upstream"},
}
NUM_CHARACTERS = 1623
DRAWINGS_PER_CHARACTER = 20
# The authors' split sizes (cbfinn/maml: 1200 meta-training characters of which 100
# validate); the remaining 423 are the meta-test characters.
SPLIT_SIZES = {"train": 1100, "validation": 100, "test": 423}
SPLIT_SEED = 1
CACHE_VERSION = 1
# "lanczos3": the filter the authors' resize_images.py asks PIL for. "nearest": what it
# got. Every upstream PNG is 1-bit, and PIL resizes 1-bit images with NEAREST whatever
# the filter asked (cbfinn/maml pull request 23), so the authors' 28x28 images are binary.
RESIZE_METHODS = ("lanczos3", "nearest")
PREPARE_COMMAND = "maml data prepare omniglot --from DIR"
DOWNLOAD_COMMAND = "maml data prepare omniglot"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_source(source_dir):
    """Check that ``source_dir`` holds the four zips with known checksums.

    Returns ``{file name: sha256}``; raises ``DatasetNotFoundError`` naming what is
    missing or unknown.
    """
    if source_dir is None or not os.path.isdir(source_dir):
        raise DatasetNotFoundError(
            f"No Omniglot source folder{'' if source_dir is None else ' at ' + repr(source_dir)}. "
            f"Put the four zips {', '.join(ZIPS)} (github.com/brendenlake/omniglot, python/ "
            f"folder) in a folder DIR and run `{PREPARE_COMMAND}`.")
    missing = [name for name in ZIPS if not os.path.isfile(os.path.join(source_dir, name))]
    if missing:
        raise DatasetNotFoundError(
            f"{source_dir} lacks {', '.join(missing)}. Omniglot needs all four zips "
            f"{', '.join(ZIPS)} in one folder; then run `{PREPARE_COMMAND}`.")
    checksums = {}
    for name in ZIPS:
        sha = _sha256(os.path.join(source_dir, name))
        if sha not in KNOWN_SHA256[name]:
            raise DatasetNotFoundError(
                f"{os.path.join(source_dir, name)} has sha256 {sha}, which is neither the "
                f"upstream file nor a known rebuild ({', '.join(KNOWN_SHA256[name])}). "
                "Replace it with the file from github.com/brendenlake/omniglot (python/), then "
                f"run `{PREPARE_COMMAND}`.")
        checksums[name] = sha
    return checksums


@contextlib.contextmanager
def _local_checksums(builder_cls, source_dir):
    """Register the local files' (verified) checksums for the builder's URLs while it
    prepares, without touching the installed package."""
    import tensorflow_datasets as tfds

    url_info = tfds.core.download.checksums.compute_url_info
    infos = {url: url_info(os.path.join(source_dir, os.path.basename(url)))
             for url in builder_cls.url_infos}
    previous = builder_cls.__dict__.get("url_infos")
    builder_cls.url_infos = infos
    try:
        yield
    finally:
        if previous is None:
            del builder_cls.url_infos
        else:
            builder_cls.url_infos = previous


def prepare(source_dir=None, data_dir=None):
    """Build the TFDS ``omniglot`` dataset: offline from the four zips in ``source_dir``,
    or, without it, downloaded by TFDS from upstream. Returns the TFDS data directory."""
    import tensorflow_datasets as tfds

    data_dir = paths.data_dir(data_dir)
    if source_dir is None:
        return _download(data_dir)
    verify_source(source_dir)
    builder_cls = tfds.builder_cls("omniglot")
    with _local_checksums(builder_cls, source_dir):
        builder = builder_cls(data_dir=data_dir)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=source_dir, try_download_gcs=False))
    return data_dir


def _download(data_dir):
    """TFDS downloads and prepares ``omniglot`` as ``tfds.load`` would; a machine without
    network gets one line saying how to prepare it from local zips instead."""
    import tensorflow_datasets as tfds

    try:
        tfds.builder("omniglot", data_dir=data_dir).download_and_prepare()
    except OSError as error:  # requests' ConnectionError, DNS and socket errors are OSErrors
        raise DatasetNotFoundError(
            f"Could not download Omniglot ({type(error).__name__}): pass --from DIR, DIR a folder "
            f"holding the four zips {', '.join(ZIPS)} (github.com/brendenlake/omniglot, python/), "
            f"i.e. `{PREPARE_COMMAND}` (Python: omniglot.prepare(DIR)).") from None
    return data_dir


def _is_prepared(data_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder("omniglot", data_dir=data_dir)
    return builder.is_prepared() if hasattr(builder, "is_prepared") else os.path.isdir(builder.data_dir)


def _cache_path(data_dir, size, resize="lanczos3"):
    suffix = "" if resize == "lanczos3" else f"-{resize}"
    return os.path.join(paths.array_cache_dir(data_dir, "omniglot", CACHE_VERSION), f"{size}x{size}{suffix}.npz")


def check_resize(resize):
    return one_of("resize", resize, RESIZE_METHODS)


def load_characters(data_dir=None, size=28, resize="lanczos3"):
    """All 1623 characters as uint8 ``[1623, 20, size, size, 1]``, strokes 255 on 0,
    indexed by the dataset's character number (0-1622, upstream order).

    Decodes the prepared TFDS dataset once per ``size`` and ``resize`` (RESIZE_METHODS)
    and caches the array beside it.
    """
    check_resize(resize)
    data_dir = paths.data_dir(data_dir)
    cache = _cache_path(data_dir, size, resize)
    if os.path.exists(cache):
        with np.load(cache) as stored:
            return stored["images"]
    if not _is_prepared(data_dir):
        raise DatasetNotFoundError(
            f"Omniglot is not prepared in {data_dir}. Run `{DOWNLOAD_COMMAND}` (downloads it), "
            f"or offline `{PREPARE_COMMAND}` with DIR the folder holding {', '.join(ZIPS)}; "
            "in Python maml_tf.datasets.omniglot.prepare() or prepare(DIR).")
    images = _decode(data_dir, size, resize)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.savez(cache + ".tmp.npz", images=images)
    os.replace(cache + ".tmp.npz", cache)
    return images


def nearest_rows(source, size):
    """The source rows (or columns) PIL's NEAREST resize samples: each output pixel takes
    the source pixel under its centre, floor((i + 0.5) * source / size)."""
    return ((np.arange(size) + 0.5) * source / size).astype(np.int64)


def _decode(data_dir, size, resize="lanczos3"):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    def process(example):
        image = tf.image.convert_image_dtype(example["image"][..., :1], tf.float32)
        if resize == "nearest":
            rows = nearest_rows(image.shape[0], size)
            image = tf.gather(tf.gather(image, rows, axis=0), nearest_rows(image.shape[1], size), axis=1)
        else:  # PIL's LANCZOS filter, which the authors asked for; lanczos3 is its TF twin
            image = tf.image.resize(image, [size, size], method="lanczos3", antialias=True)
        image = tf.clip_by_value(1.0 - image, 0.0, 1.0)  # inverted: strokes are 1
        return tf.cast(tf.round(image * 255.0), tf.uint8), example["label"]

    data = tfds.load("omniglot", split="train+test", data_dir=data_dir, download=False)
    data = data.map(process, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
    grouped = {}
    for images, labels in data.as_numpy_iterator():
        for image, label in zip(images, labels):
            grouped.setdefault(int(label), []).append(image)
    counts = {len(g) for g in grouped.values()}
    if len(grouped) != NUM_CHARACTERS or counts != {DRAWINGS_PER_CHARACTER}:
        raise DatasetNotFoundError(
            f"The prepared Omniglot in {data_dir} is incomplete ({len(grouped)} characters, "
            f"drawings per character {sorted(counts)}; expected {NUM_CHARACTERS} x "
            f"{DRAWINGS_PER_CHARACTER}). Delete its omniglot/ folder and run "
            f"`{PREPARE_COMMAND}` again.")
    # TFDS stores records in hashed-key order; sort each character's drawings by
    # content so that the order (and so every sampled task) is the same everywhere.
    return np.stack([np.stack(sorted(grouped[label], key=lambda a: hashlib.sha1(a.tobytes()).digest()))
                     for label in sorted(grouped)])


def split_characters(split, seed=SPLIT_SEED):
    """Character numbers of a MAML split: ``train`` (1100), ``validation`` (100), ``test`` (423).

    The authors shuffled an unsorted directory listing with Python's ``random.seed(1)``,
    which differs between machines. Ours is reproducible everywhere: the characters in
    upstream order (0-1622: background alphabets then evaluation alphabets, each sorted),
    permuted by ``numpy.random.RandomState(1)``; the first 1100 train, the next 100
    validate, the rest test.
    """
    one_of("split", split, SPLIT_SIZES, " for Omniglot")
    order = np.random.RandomState(seed).permutation(NUM_CHARACTERS)
    start = 0
    for name, count in SPLIT_SIZES.items():
        if name == split:
            return np.sort(order[start:start + count])
        start += count


def load(split, data_dir=None, size=28, resize="lanczos3"):
    """One split's images, uint8 ``[characters, 20, size, size, 1]`` (strokes 255)."""
    characters = split_characters(split)  # an unknown split fails before any decoding
    return load_characters(data_dir, size, resize)[characters]
