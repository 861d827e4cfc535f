"""MiniImagenet (Vinyals et al. 2016, Ravi & Larochelle 2017 splits) as a TFDS dataset.

Built offline from local files only: the images (in ``images/``, the Ravi & Larochelle
layout, or in class folders at any depth) with ``train.csv``/``val.csv``/``test.csv``, or
the ``mini-imagenet-cache-*.pkl`` pickles.
``prepare`` builds the TFDS dataset ``mini_imagenet`` once; ``load`` returns a split
as a uint8 array ``[classes, examples_per_class, 84, 84, 3]``, decoded once and then
memory-mapped from a ``.npy`` cache.
"""
import collections
import csv
import dataclasses
import json
import os
import pickle
import re
import shutil

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from maml_tf.core.arguments import one_of
from maml_tf.datasets import paths
from maml_tf.datasets.errors import DatasetNotFoundError

IMAGE_SIZE = 84
# TFDS split name -> file stem of its CSV and pickle.
SPLIT_STEMS = {"train": "train", "validation": "val", "test": "test"}
SPLIT_ALIASES = {"val": "validation"}
PICKLE_NAME = "mini-imagenet-cache-{}.pkl"
SPLITS_SOURCE = "miniimagenet_splits"

_HOW_TO = """\
MiniImagenet is built from a folder DIR holding either
  (a) the images the split CSVs name (e.g. n0153282900000005.jpg; resized to 84x84 if
      needed), either in DIR/images/ (the Ravi & Larochelle layout; subfolders are fine)
      or in class folders at any depth below DIR (e.g. DIR/train/n01532829/...), and
      DIR/train.csv, DIR/val.csv, DIR/test.csv (header filename,label){splits_note}, or
  (b) the three cache pickles DIR/mini-imagenet-cache-train.pkl, DIR/mini-imagenet-cache-val.pkl
      and DIR/mini-imagenet-cache-test.pkl.
Prepare it (offline, nothing is downloaded) with
  {env}maml data prepare mini_imagenet --from DIR
or in Python
  maml_tf.datasets.mini_imagenet.prepare(DIR{data_dir_arg})"""


def _how_to_prepare(data_dir=None, splits_dir=None):
    """What to put where and the command that prepares it (for error messages)."""
    custom = data_dir is not None and data_dir != paths.data_dir()
    splits_note = f";\n      if DIR has no CSVs, all three are taken from {splits_dir}"
    return _HOW_TO.format(
        splits_note=splits_note if splits_dir else "",
        env=f"TFDS_DATA_DIR={data_dir} " if custom else "",
        data_dir_arg=f", data_dir={data_dir!r}" if custom else "")


class MiniImagenet(tfds.core.GeneratorBasedBuilder):
    """MiniImagenet: 100 ImageNet classes x 600 images at 84x84, split 64/16/20 by class.

    Args:
        splits_dir: where ``train.csv``/``val.csv``/``test.csv`` are when the manual dir
            has images but no CSVs; default: the Ravi & Larochelle CSVs shipped in the package.
        **kwargs: passed to ``tfds.core.GeneratorBasedBuilder``.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ravi & Larochelle splits; 84x84 RGB stored as PNG."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _how_to_prepare(
        splits_dir="the splits_dir (default: the Ravi & Larochelle CSVs shipped in maml_tf)")

    def __init__(self, *, splits_dir=None, **kwargs):
        self._splits_dir = splits_dir
        super().__init__(**kwargs)
        self._original_state["splits_dir"] = splits_dir  # kept when the builder is pickled

    def _info(self):
        return self.dataset_info_from_configs(
            description="MiniImagenet (Vinyals et al. 2016) with the Ravi & Larochelle (2017) "
                        "class splits, built from local files.",
            features=tfds.features.FeaturesDict({
                # PNG is lossless: the stored pixels are exactly those decoded (and resized)
                # from the source JPEGs or read from the pickles, so both sources give the
                # same arrays; JPEG would compress a second time, lossily. Cost: disk space
                # (an estimated 1-1.3 GB for the 60,000 images, against ~250 MB of JPEGs).
                "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), encoding_format="png"),
                # The names (the source's wnids, sorted) are set when the dataset is built,
                # so that generated stand-ins with made-up wnids build as well.
                "label": tfds.features.ClassLabel(),
                "filename": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/twitter/meta-learning-lstm",
            metadata=tfds.core.MetadataDict(),
            citation="""@inproceedings{ravi2017optimization,
  title={Optimization as a Model for Few-Shot Learning},
  author={Ravi, Sachin and Larochelle, Hugo},
  booktitle={International Conference on Learning Representations},
  year={2017}}""",
        )

    def _split_generators(self, dl_manager):
        source = _inspect_source(dl_manager.manual_dir, self._splits_dir)
        self.info.features["label"].names = source.class_names()
        self.info.metadata["source"] = source.description()
        return {split: self._generate_examples(source, split) for split in SPLIT_STEMS}

    def _generate_examples(self, source, split):
        """``(filename, {"image", "label", "filename"})`` for one split."""
        return source.examples(split)


def prepare(source_dir, data_dir=None, splits_dir=None, echo=None):
    """Build the TFDS dataset ``mini_imagenet`` from local files; returns the data dir.

    ``source_dir`` holds the images (``images/``, or class folders at any depth) and the
    three split CSVs (which may instead be in ``splits_dir``; they decide the split, not
    the folders), or the three ``mini-imagenet-cache`` pickles. It is checked first: a
    listed image that is missing, repeated or in another class's folder raises an error
    naming it; ``echo`` (e.g. ``print``) hears of image files no CSV lists, which are
    left out. Nothing is downloaded. A dataset already prepared from the same source is
    reused; one prepared from another source is rebuilt (with its array cache).
    """
    data_dir = paths.data_dir(data_dir)
    source = _inspect_source(source_dir, splits_dir)
    if source.extra and echo is not None:
        echo(f"mini_imagenet: {len(source.extra)} image files under {source.root} are in no split CSV "
             f"and are left out, e.g. {', '.join(source.extra[:3])}")
    builder = MiniImagenet(data_dir=data_dir, splits_dir=splits_dir)
    if builder.is_prepared():
        if builder.info.metadata.get("source") == source.description():
            return data_dir
        shutil.rmtree(builder.data_dir)
        builder = MiniImagenet(data_dir=data_dir, splits_dir=splits_dir)
    shutil.rmtree(_cache_dir(data_dir, builder.version), ignore_errors=True)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=source.root, try_download_gcs=False))
    return data_dir


def load(split, data_dir=None):
    """One split as ``(images, class_names)``.

    ``images`` is a read-only uint8 array ``[classes, examples_per_class, 84, 84, 3]``
    (classes in sorted wnid order, the examples of a class sorted by file name) and
    ``class_names`` the wnids. The first call decodes the split into a ``.npy`` beside
    the prepared dataset; later calls memory-map it. ``split``: ``train``,
    ``validation`` (or ``val``) or ``test``.
    """
    split = _split_name(split)
    data_dir = paths.data_dir(data_dir)
    builder = MiniImagenet(data_dir=data_dir)
    if not builder.is_prepared():
        raise DatasetNotFoundError(
            f"MiniImagenet is not prepared in the TFDS data dir {data_dir}.\n"
            + _how_to_prepare(data_dir, paths.bundled(SPLITS_SOURCE)))
    array_path = os.path.join(_cache_dir(data_dir, builder.version), f"{split}.npy")
    names_path = array_path[:-len(".npy")] + ".classes.json"
    if not _cache_matches(array_path, names_path, builder.info.splits[split].num_examples):
        _decode_split(builder, split, array_path, names_path)
    with open(names_path) as f:
        class_names = json.load(f)
    return np.load(array_path, mmap_mode="r"), class_names


def identical_images(data_dir=None):
    """Groups of pixel-identical images across all three splits, each a list of ``(split,
    wnid, index)`` (index: the image's place in its class, sorted by file name as ``load``
    orders them). The standard split has eight such pairs, six across train and
    validation (docs/datasets.md); they are kept, as everyone's results use that split."""
    import hashlib
    seen = collections.defaultdict(list)
    for split in SPLIT_STEMS:
        images, class_names = load(split, data_dir)
        for c, wnid in enumerate(class_names):
            for i, image in enumerate(images[c]):
                seen[hashlib.sha1(image.tobytes()).digest()].append((split, wnid, i))
    return [group for group in seen.values() if len(group) > 1]


def _split_name(split):
    one_of("split", split, (*SPLIT_STEMS, *SPLIT_ALIASES), " for MiniImagenet")
    return SPLIT_ALIASES.get(split, split)


def _cache_dir(data_dir, version):
    return paths.array_cache_dir(data_dir, "mini_imagenet", version)


def _cache_matches(array_path, names_path, num_examples):
    if not (os.path.isfile(array_path) and os.path.isfile(names_path)):
        return False
    shape = np.load(array_path, mmap_mode="r").shape
    return shape[0] * shape[1] == num_examples


def _decode_split(builder, split, array_path, names_path):
    """Decode ``split`` into ``array_path`` (grouped by class, sorted by file name) and
    its class names into ``names_path``; both written under temporary names, then renamed."""
    label = builder.info.features["label"]
    index = builder.as_dataset(split=split, shuffle_files=False, decoders=tfds.decode.PartialDecoding(
        {"label": True, "filename": True}))
    by_class = collections.defaultdict(list)
    for example in tfds.as_numpy(index):
        by_class[int(example["label"])].append(example["filename"].decode())
    counts = {label.int2str(c): len(names) for c, names in sorted(by_class.items())}
    if len(set(counts.values())) > 1:
        usual = collections.Counter(counts.values()).most_common(1)[0][0]
        raise ValueError(
            f"MiniImagenet {split}: classes have different numbers of images, so they do not "
            f"form one [classes, examples_per_class, ...] array: {len(counts)} classes, {usual} "
            f"images each except {({c: n for c, n in counts.items() if n != usual})}.")
    slots = {}
    for i, c in enumerate(sorted(by_class)):
        slots.update((name, (i, j)) for j, name in enumerate(sorted(by_class[c])))
    os.makedirs(os.path.dirname(array_path), exist_ok=True)
    partial = f"{array_path}.{os.getpid()}.incomplete"
    images = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.uint8,
        shape=(len(counts), next(iter(counts.values()), 0), IMAGE_SIZE, IMAGE_SIZE, 3))
    for example in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
        images[slots[example["filename"].decode()]] = example["image"]
    images.flush()
    del images
    partial_names = f"{names_path}.{os.getpid()}.incomplete"
    with open(partial_names, "w") as f:
        json.dump(list(counts), f)
    os.replace(partial_names, names_path)
    os.replace(partial, array_path)


@dataclasses.dataclass
class _Source:
    """A checked source folder: ``layout`` "ravi" (``images/``) or "folders" (image files
    anywhere below ``root``), with ``files``: split -> CSV, ``rows``: split -> [(filename,
    wnid)], ``images``: filename -> path; or "pickles" (``files``: split -> pickle)."""

    layout: str
    root: str
    files: dict
    rows: dict = None
    images: dict = None
    extra: list = dataclasses.field(default_factory=list)  # image files no split CSV lists

    def description(self):
        """What the dataset was built from (stored in its metadata)."""
        return {"layout": self.layout, "root": self.root, "files": [self.files[s] for s in SPLIT_STEMS]}

    def class_names(self):
        if self.layout != "pickles":
            wnids = {wnid for rows in self.rows.values() for _, wnid in rows}
        else:
            wnids = {wnid for path in self.files.values() for wnid in _read_pickle(path)["class_dict"]}
        return sorted(wnids)

    def examples(self, split):
        if self.layout != "pickles":
            for filename, wnid in self.rows[split]:
                yield filename, {"image": _read_image(self.images[filename]), "label": wnid,
                                 "filename": filename}
            return
        path = self.files[split]
        data = _read_pickle(path)
        for wnid, indices in data["class_dict"].items():
            for i in indices:
                # The pickles have no file names: name an image by pickle and row.
                filename = f"{os.path.basename(path)}#{int(i):06d}"
                yield filename, {"image": data["image_data"][i], "label": wnid, "filename": filename}


def _inspect_source(source_dir, splits_dir=None):
    """Check a source folder and return its ``_Source``; raises ``DatasetNotFoundError``
    naming whatever is missing."""
    splits_dir = splits_dir or paths.bundled(SPLITS_SOURCE)
    how_to = _how_to_prepare(splits_dir=splits_dir)
    root = os.path.abspath(os.path.expanduser(os.fspath(source_dir)))
    if not os.path.isdir(root):
        raise DatasetNotFoundError(f"The MiniImagenet source folder {root} does not exist.\n{how_to}")
    pickles = {split: os.path.join(root, PICKLE_NAME.format(stem)) for split, stem in SPLIT_STEMS.items()}
    missing_pickles = [os.path.basename(p) for p in pickles.values() if not os.path.isfile(p)]
    if not missing_pickles:
        return _Source("pickles", root, pickles)
    images_dir = os.path.join(root, "images")
    # Ravi & Larochelle's images/ folder, or class folders anywhere below root (e.g. a
    # snapshot's train/<wnid>/ and val/<wnid>/, whose split is not Ravi's: the CSVs decide).
    tree = images_dir if os.path.isdir(images_dir) else root
    files = _files_below(tree)
    if tree == root and not any(_is_image(name) for name in files):
        if len(missing_pickles) < len(pickles):
            found = f"{root} has no images/ folder and lacks {', '.join(missing_pickles)}."
        else:
            found = f"{root} has neither an images/ folder, image files, nor the mini-imagenet-cache-*.pkl files."
        raise DatasetNotFoundError(f"{found}\n{how_to}")
    csvs = _find_csvs(root, splits_dir, how_to)
    rows = {split: _read_csv(path) for split, path in csvs.items()}
    listed = {filename: wnid for split_rows in rows.values() for filename, wnid in split_rows}
    missing = [name for name in listed if name not in files]
    if missing:
        raise DatasetNotFoundError(
            f"{len(missing)} of the {len(listed)} images that the split CSVs list are missing "
            f"from {tree}, e.g. {', '.join(missing[:5])}.\n{how_to}")
    ambiguous = sorted(name for name in listed if len(files[name]) > 1)
    if ambiguous:
        raise ValueError(f"{len(ambiguous)} listed images occur more than once under {tree}, "
                         f"e.g. {', '.join(ambiguous[:5])}; keep one copy of each.")
    misfiled = sorted(name for name, wnid in listed.items()
                      if _WNID.fullmatch(_folder(files[name][0])) and _folder(files[name][0]) != wnid)
    if misfiled:
        raise ValueError(
            f"{len(misfiled)} images are in the folder of another class than the split CSVs give, e.g. "
            + ", ".join(f"{files[n][0]} (CSV: {listed[n]})" for n in misfiled[:3])
            + ": fix the folders or the CSVs.")
    extra = sorted(name for name in files if _is_image(name) and name not in listed)
    return _Source("ravi" if tree == images_dir else "folders", root, csvs, rows,
                   {name: files[name][0] for name in listed}, extra)


_WNID = re.compile(r"n\d{8}")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _files_below(folder):
    """file name -> its paths, at any depth below ``folder``."""
    found = collections.defaultdict(list)
    for parent, _, names in os.walk(folder):
        for name in names:
            found[name].append(os.path.join(parent, name))
    return found


def _is_image(name):
    return name.lower().endswith(_IMAGE_SUFFIXES)


def _folder(path):
    return os.path.basename(os.path.dirname(path))


def _find_csvs(root, splits_dir, how_to):
    """split -> CSV path, all three from ``root`` or, when it has none, from ``splits_dir``."""
    names = {split: f"{stem}.csv" for split, stem in SPLIT_STEMS.items()}
    in_root = any(os.path.isfile(os.path.join(root, name)) for name in names.values())
    folder = root if in_root or not splits_dir else splits_dir
    missing = [name for name in names.values() if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        where = folder if in_root or not splits_dir else f"{root} or {splits_dir}"
        raise DatasetNotFoundError(
            f"The split CSVs {', '.join(missing)} are missing: all three must be in {where} "
            f"(in one folder).\n{how_to}")
    return {split: os.path.join(folder, name) for split, name in names.items()}


def _read_csv(path):
    """[(filename, wnid)] from a ``filename,label`` CSV."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not {"filename", "label"}.issubset(reader.fieldnames or ()):
            raise ValueError(f"{path}: expected the header 'filename,label', got {reader.fieldnames}.")
        return [(row["filename"], row["label"]) for row in reader]


def _read_image(path):
    """An image file as uint8 RGB 84x84, resized with PIL's Lanczos filter if needed (as
    the MAML authors' ``proc_images.py`` made MiniImagenet)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (IMAGE_SIZE, IMAGE_SIZE):
            image = image.resize((IMAGE_SIZE, IMAGE_SIZE), resample=Image.Resampling.LANCZOS)
        return np.asarray(image)


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes, numbers and builtin containers, and nothing else:
    any other global a pickle names (``os.system``, ...) could run code while it loads."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),  # arrays in protocol-5 pickles
        ("_codecs", "encode"),  # bytes in protocol 0-2 pickles written by Python 3
    } | {("builtins", name) for name in (
        "dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float",
        "complex", "bool")}

    def find_class(self, module, name):
        if module.startswith("numpy.core."):  # written by numpy 1.x
            module = "numpy._core." + module[len("numpy.core."):]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: a MiniImagenet cache pickle holds "
                "only numpy arrays, dicts, lists and numbers. The file is corrupt or not what it "
                "claims to be (a pickle can run code when loaded).")
        return super().find_class(module, name)


def _read_pickle(path):
    """A checked ``mini-imagenet-cache-*.pkl``: {"image_data": uint8 [N, 84, 84, 3],
    "class_dict": {wnid: [row indices]}}."""
    with open(path, "rb") as f:
        try:
            # latin1: the original cache pickles may come from Python 2 (numpy's advice).
            data = _ArrayUnpickler(f, encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(f"{path}: {error}") from None
    if not (isinstance(data, dict) and isinstance(data.get("image_data"), np.ndarray)
            and isinstance(data.get("class_dict"), dict)):
        raise ValueError(f"{path}: expected a dict with 'image_data' (uint8 [N, 84, 84, 3]) and "
                         "'class_dict' ({wnid: [indices]}).")
    images = data["image_data"]
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"{path}: image_data is {images.dtype} {images.shape}, expected uint8 "
                         f"[N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3].")
    return data
