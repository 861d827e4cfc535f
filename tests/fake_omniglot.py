"""A tiny fake Omniglot source in the upstream layout, and the patches that make
``maml_tf.datasets.omniglot`` (and the TFDS ``omniglot`` builder) accept it.

Layout, as upstream: four zips, each with one top folder (``images_background/`` ...),
then ``<Alphabet>/characterNN/NNNN_MM.png``, 105x105 mode "1" PNGs (black strokes on
white), 20 drawings per character, NNNN numbering characters across the whole dataset.

Character ``c`` (0-based, i.e. file number ``c + 1``) is a filled square in cell ``c``
of a 5x5 grid; drawer ``m`` (0-19) adds a bar of width ``m + 1`` in the last cell, so
all 20 drawings of a character differ while their character stays recognisable after
the 28x28 resize (:func:`character_of`).
"""
import hashlib
import os
import zipfile

import numpy as np
from PIL import Image

from maml_tf.datasets import omniglot

SIZE = 105
GRID = 5
CELL = SIZE // GRID  # 21 source pixels
DRAWINGS = 20
MARK_CELL = GRID * GRID - 1  # the drawer mark lives in the bottom-right cell


def _cell_box(cell):
    r, k = divmod(cell, GRID)
    return r * CELL, k * CELL


def drawing(character, drawer):
    """bool [105, 105], True = stroke (black in the PNG)."""
    assert 0 <= character < MARK_CELL
    strokes = np.zeros((SIZE, SIZE), bool)
    top, left = _cell_box(character)
    strokes[top + 3:top + 18, left + 3:left + 18] = True
    top, left = _cell_box(MARK_CELL)
    strokes[top + 3:top + 7, left:left + drawer + 1] = True
    return strokes


def _png(strokes, path):
    # Mode "1": 1 = white background, 0 = black stroke, as the upstream PNGs.
    Image.fromarray(~strokes).convert("1").save(path)


def _cell_pixels(cell, size=28):
    """Pixel indices (rows or columns) of a ``size`` image whose centres lie well
    inside the filled square of a grid cell."""
    scale = SIZE / size
    top, left = _cell_box(cell)
    rows = [i for i in range(size) if top + 6 <= (i + 0.5) * scale <= top + 15]
    cols = [j for j in range(size) if left + 6 <= (j + 0.5) * scale <= left + 15]
    return rows, cols


def cell_means(image):
    """Mean intensity at the centre of each character cell of a [size, size(, 1)] image."""
    image = np.asarray(image, np.float64).reshape(image.shape[0], image.shape[1])
    means = []
    for cell in range(MARK_CELL):
        rows, cols = _cell_pixels(cell, image.shape[0])
        means.append(image[np.ix_(rows, cols)].mean())
    return np.array(means)


def character_of(image, threshold=128):
    """The character drawn in a decoded (inverted, strokes high) image; asserts that
    exactly one character cell is lit."""
    means = cell_means(image)
    lit = np.flatnonzero(means > threshold)
    assert len(lit) == 1, f"expected one lit cell, got cell means {np.round(means)}"
    return int(lit[0])


def write_source(root, background=(3, 3), evaluation=(2,)):
    """Write the four zips into ``root`` (created). ``background`` / ``evaluation``
    give the number of characters of each alphabet. Returns a dict with ``source``
    (the folder), ``num_characters``, ``alphabets`` and ``sha256`` ({zip: sha})."""
    os.makedirs(root, exist_ok=True)
    number = 0
    layout = {}  # zip stem -> [(alphabet, [character numbers 1-based])]
    for stem, sizes, prefix in (("images_background", background, "Background"),
                                ("images_evaluation", evaluation, "Evaluation")):
        layout[stem] = []
        for a, count in enumerate(sizes):
            layout[stem].append((f"{prefix}_Alphabet_{a}", list(range(number + 1, number + count + 1))))
            number += count
    total = number
    assert total <= MARK_CELL, "the grid has room for 24 characters"
    first, *rest = layout["images_background"]
    # The small sets are subsets of the background alphabets, as upstream.
    layout["images_background_small1"] = [first]
    layout["images_background_small2"] = [(name, numbers[:1]) for name, numbers in rest] or [first]

    pngs = os.path.join(root, ".png_cache")
    os.makedirs(pngs, exist_ok=True)
    for stem, alphabets in layout.items():
        with zipfile.ZipFile(os.path.join(root, f"{stem}.zip"), "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{stem}/", "")
            for alphabet, numbers in alphabets:
                z.writestr(f"{stem}/{alphabet}/", "")
                for index, n in enumerate(numbers):
                    folder = f"{stem}/{alphabet}/character{index + 1:02d}/"
                    z.writestr(folder, "")
                    for m in range(DRAWINGS):
                        name = f"{n:04d}_{m + 1:02d}.png"
                        png = os.path.join(pngs, name)
                        if not os.path.exists(png):
                            _png(drawing(n - 1, m), png)
                        z.write(png, folder + name)
    for name in os.listdir(pngs):
        os.remove(os.path.join(pngs, name))
    os.rmdir(pngs)
    sha = {}
    for name in omniglot.ZIPS:
        with open(os.path.join(root, name), "rb") as f:
            sha[name] = hashlib.sha256(f.read()).hexdigest()
    return {"source": str(root), "num_characters": total,
            "alphabets": sum(len(v) for k, v in layout.items() if not k.endswith(("small1", "small2"))),
            "sha256": sha}


def patch(monkeypatch, fake, split_sizes):
    """Make the omniglot module and the TFDS builder accept ``fake`` (from
    :func:`write_source`) with the given ``{"train": n, "validation": n, "test": n}``."""
    from tensorflow_datasets.image_classification import omniglot as tfds_omniglot

    assert sum(split_sizes.values()) == fake["num_characters"]
    known = {name: dict(shas) for name, shas in omniglot.KNOWN_SHA256.items()}
    for name, sha in fake["sha256"].items():
        known[name][sha] = "fake"
    monkeypatch.setattr(omniglot, "KNOWN_SHA256", known)
    monkeypatch.setattr(omniglot, "NUM_CHARACTERS", fake["num_characters"])
    monkeypatch.setattr(omniglot, "SPLIT_SIZES", dict(split_sizes))
    # The TFDS builder declares 1623 labels and 50 alphabets; the fake has fewer.
    monkeypatch.setattr(tfds_omniglot, "_NUM_CLASSES", fake["num_characters"])
    monkeypatch.setattr(tfds_omniglot, "_NUM_ALPHABETS", fake["alphabets"])
