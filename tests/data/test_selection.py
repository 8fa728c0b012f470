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
    no_neg = select(dataset(90, boxes), SubsetParams(keep_negatives=False, val_keep_negatives=False), 0, 0.3)
    assert set(no_neg["val"]) <= set(full["val"]) and set(no_neg["train"]) <= set(full["train"])
    assert all(boxes[i] > 0 for s in no_neg.values() for i in s)


def test_keep_negatives_is_trains_rule_and_val_keeps_its_backgrounds():
    """Dropping train's background images must not take val's out of the mAP (their false positives)."""
    boxes = [i % 3 for i in range(90)]
    full = select(dataset(90, boxes), SubsetParams(), 0, 0.3)
    ds = dataset(90, boxes)
    train_only = select(ds, SubsetParams(keep_negatives=False), 0, 0.3)
    assert train_only["val"] == full["val"] and any(boxes[i] == 0 for i in train_only["val"])
    assert all(boxes[i] > 0 for i in train_only["train"])
    dropped = sum(1 for i in full["train"] if boxes[i] == 0)
    assert ds.info["train_negatives_dropped"] == dropped > 0 and ds.info["val_negatives_dropped"] == 0
    ds = dataset(90, boxes)
    val_too = select(ds, SubsetParams(val_keep_negatives=False), 0, 0.3)
    assert val_too["train"] == full["train"] and all(boxes[i] > 0 for i in val_too["val"])
    assert ds.info["val_negatives_dropped"] == sum(1 for i in full["val"] if boxes[i] == 0) > 0


def test_the_val_cap_keeps_the_share_of_background_images():
    """A COCO subset for a rare class: val mostly background; the cap keeps that share, not the draw's luck."""
    boxes = [1 if i % 10 == 0 else 0 for i in range(2000)]  # 10 % labelled
    small = select(dataset_in_val(2000, boxes), SubsetParams(max_val_images=50), 0, 0.2)["val"]
    assert len(small) == 50 and sum(boxes[i] > 0 for i in small) == 5
    large = select(dataset_in_val(2000, boxes), SubsetParams(max_val_images=120), 0, 0.2)["val"]
    assert set(small) <= set(large) and sum(boxes[i] > 0 for i in large) == 12
    rare = [1 if i in (7, 1500) else 0 for i in range(2000)]  # 2 labelled: one kept even where 0.1 rounds to 0
    few = select(dataset_in_val(2000, rare), SubsetParams(max_val_images=100), 0, 0.2)["val"]
    assert len(few) == 100 and sum(rare[i] for i in few) == 1


def dataset_in_val(n: int, boxes) -> SourceDataset:
    ds = dataset(n, boxes)
    for im in ds.images:
        im.split = "val"
    return ds


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
