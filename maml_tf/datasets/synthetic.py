"""Generated stand-ins for datasets whose images are not on this machine.

They have the real files' layout, so the whole pipeline (prepare, load, episodes,
training, the reproduce scripts) runs end to end on them; each class has its own
visual pattern, so a few-shot learner's accuracy rises well above chance.
"""
import csv
import os

import numpy as np
from PIL import Image

SPLIT_FILES = ("train.csv", "val.csv", "test.csv")


def write_mini_imagenet_like(root, classes=(64, 16, 20), images_per_class=20, image_size=84, seed=0):
    """Write a MiniImagenet-like folder in the Ravi & Larochelle layout; returns ``root``.

    ``root/images/<wnid><8-digit number>.jpg`` plus ``train.csv``, ``val.csv`` and
    ``test.csv`` (header ``filename,label``) with ``classes`` = (train, val, test)
    class counts. Class names are made-up wnids ``n9xxxxxxx`` (real ones start with
    ``n0`` or ``n1``). A class is a coloured grating (two class colours, class
    orientation and frequency) with a class-coloured blob; each image is a randomly
    shifted crop of it with random brightness and pixel noise. Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    wnids = [f"n9{v:07d}" for v in rng.choice(10**7, size=sum(classes), replace=False)]
    images_dir = os.path.join(root, "images")
    os.makedirs(images_dir, exist_ok=True)
    shift = max(1, image_size // 8)
    side = image_size + 2 * shift
    y, x = np.mgrid[0:side, 0:side] / image_size
    rows = []
    for wnid in wnids:
        template = _class_template(rng, y, x)
        for i in range(images_per_class):
            dy, dx = rng.integers(0, 2 * shift + 1, size=2)
            image = template[dy:dy + image_size, dx:dx + image_size] * rng.uniform(0.8, 1.2)
            image = image + rng.normal(0.0, 12.0, size=image.shape)
            filename = f"{wnid}{i + 1:08d}.jpg"
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                os.path.join(images_dir, filename), quality=90)
            rows.append((filename, wnid))
    start = 0
    for name, count in zip(SPLIT_FILES, classes):
        end = start + count * images_per_class
        with open(os.path.join(root, name), "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(("filename", "label"))
            writer.writerows(rows[start:end])
        start = end
    return root


def _class_template(rng, y, x):
    """One class's float RGB pattern on the grid ``(y, x)`` (in image widths)."""
    colours = rng.uniform(0, 255, size=(3, 3))
    angle = rng.uniform(0, np.pi)
    frequency = rng.uniform(1.5, 6.0)
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle))
                                 + rng.uniform(0, 2 * np.pi))
    cy, cx = rng.uniform(0.3, 0.9, size=2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * rng.uniform(0.08, 0.2) ** 2))
    image = colours[0] * (1 - grating[..., None]) + colours[1] * grating[..., None]
    return image * (1 - blob[..., None]) + colours[2] * blob[..., None]
