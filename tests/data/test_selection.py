"""Seeded split and caps: deterministic, stable when the dataset grows, independent of the subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.data.params import SubsetParams
from edgeproof.data.source import SourceDataset, SourceImage, safe_relative, select


def dataset(n: int, boxes=None) -> SourceDataset:
    images = [SourceImage(i + 1, f"img{i:04d}.jpg", Path("/x")) for i in range(n)]
    n_boxes = np.asarray(boxes if boxes is not None else [1] * n)
    return SourceDataset("coco", [], images, n_boxes)


def files(ds: SourceDataset, idx: list[int]) -> set[str]:
    return {ds.images[i].file for i in idx}


def test_split_fraction_and_determinism():
    a = select(dataset(100), SubsetParams(), seed=0, val_fraction=0.2)
    b = select(dataset(100), SubsetParams(), seed=0, val_fraction=0.2)
    c = select(dataset(100), SubsetParams(), seed=1, val_fraction=0.2)
    assert len(a["val"]) == 20 and len(a["train"]) == 80 and a == b and a != c
    assert not set(a["val"]) & set(a["train"])


def test_growing_the_dataset_keeps_most_splits():
    small, big = dataset(200), dataset(220)
    s = select(small, SubsetParams(), 0, 0.2)
    g = select(big, SubsetParams(), 0, 0.2)
    moved = files(small, s["val"]) - files(big, g["val"])
    assert len(moved) <= 6  # only images pushed out by the new ones' ranks, not a reshuffle


def test_subset_rules_never_move_images_between_splits():
    boxes = [i % 3 for i in range(90)]  # every third image is a negative
    full = select(dataset(90, boxes), SubsetParams(), 0, 0.3)
    no_neg = select(dataset(90, boxes), SubsetParams(keep_negatives=False), 0, 0.3)
    assert set(no_neg["val"]) <= set(full["val"]) and set(no_neg["train"]) <= set(full["train"])
    assert all(boxes[i] > 0 for s in no_neg.values() for i in s)


def test_caps_are_seeded_and_nested():
    ds = dataset(300)
    small = select(ds, SubsetParams(max_train_images=10, max_val_images=5), 0, 0.2)
    large = select(dataset(300), SubsetParams(max_train_images=40, max_val_images=5), 0, 0.2)
    assert len(small["train"]) == 10 and len(small["val"]) == 5
    assert set(small["train"]) <= set(large["train"])  # a larger cap keeps the smaller cap's images
    assert ds.info["train_capped_out"] == 240 - 10


def test_preset_splits_are_kept():
    ds = dataset(10)
    for i, im in enumerate(ds.images):
        im.split = "val" if i < 3 else "train"
    assert select(ds, SubsetParams(), 0, 0.5) == {"train": list(range(3, 10)), "val": [0, 1, 2]}


def test_safe_relative():
    assert safe_relative("a/./b/../c.jpg") == "a/c.jpg"
    assert safe_relative("sub\\x.jpg") == "sub/x.jpg"
    for bad in ("../x.jpg", "a/../../x.jpg", "/etc/passwd", "C:/x.jpg", "", ".", ".."):
        assert safe_relative(bad) is None, bad
