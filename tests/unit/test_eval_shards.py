"""Sharded pycocotools scoring gives exactly the arrays of a one-shot ``COCOeval``."""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import numpy as np
import pytest

from edgeproof.evaluation.coco import run_cocoeval, score_coco
from edgeproof.evaluation.shards import ShardedCocoEval, accumulate_shards, evaluate_shard

pytest.importorskip("pycocotools")

CATEGORIES = [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}, {"id": 90, "name": "c"}]


def _det(image_id: int, category_id: int, box: np.ndarray, score: float) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": [float(v) for v in box], "score": score}


def _dataset(seed: int = 0, n_images: int = 23) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth with crowd boxes, empty images and all three area ranges; noisy detections,
    more than 100 per (image, category) on one image, none on others."""
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for i in range(n_images):
        img_id = 1000 - 7 * i  # ids not in file order: merging must sort them as pycocotools does
        images.append({"id": img_id, "file_name": f"{i}.jpg", "width": 640, "height": 480})
        for _ in range(int(rng.integers(0, 5)) if i % 5 else 0):
            side = float(rng.choice([12.0, 60.0, 200.0]))  # small, medium, large
            x, y = float(rng.uniform(0, 400)), float(rng.uniform(0, 260))
            cat = int(rng.choice([3, 7, 90]))
            crowd = int(rng.random() < 0.1)
            box = [x, y, side, side * 0.8]
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": crowd})  # fmt: skip
            for _ in range(int(rng.integers(0, 4))):
                jitter = rng.normal(0, side * 0.15, 4)
                label = cat if rng.random() < 0.8 else 7
                dets.append(_det(img_id, label, np.array(box) + jitter, float(rng.random())))
        if i == 3:
            for _ in range(130):  # beyond maxDets=100: pycocotools drops the lowest per (image, category)
                dets.append(_det(img_id, 3, rng.uniform(0, 300, 4), float(rng.random())))
    return {"images": images, "annotations": anns, "categories": CATEGORIES}, dets


def _sharded(gt: dict[str, Any], dets: list[dict[str, Any]], workers: int, shard: int, seed: int) -> Any:
    by_image: dict[int, list[dict[str, Any]]] = {}
    for d in dets:
        by_image.setdefault(d["image_id"], []).append(d)
    ids = [im["id"] for im in gt["images"]]
    random.Random(seed).shuffle(ids)  # batches may finish in any order
    with ShardedCocoEval(gt, workers=workers, shard_images=shard) as scorer:
        for start in range(0, len(ids), 4):
            batch = ids[start : start + 4]
            scorer.add(batch, [d for i in batch for d in by_image.get(i, [])])
        return scorer.finish()


def _assert_same(a: Any, b: Any) -> None:
    for key in ("precision", "recall", "scores"):
        np.testing.assert_array_equal(a.eval[key], b.eval[key], err_msg=key)
    np.testing.assert_array_equal(a.stats, b.stats)


def _shards(gt: dict[str, Any], dets: list[dict[str, Any]], size: int, seed: int) -> list[Any]:
    """``evaluate_shard`` on shuffled, disjoint shards of ``size`` images."""
    ids = [im["id"] for im in gt["images"]]
    random.Random(seed).shuffle(ids)
    out = []
    for start in range(0, len(ids), size):
        keep = set(ids[start : start + size])
        shard_gt = dict(gt, images=[im for im in gt["images"] if im["id"] in keep])
        shard_gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
        out.append(evaluate_shard(shard_gt, [d for d in dets if d["image_id"] in keep]))
    return out


@pytest.mark.parametrize(("size", "seed"), [(1, 0), (5, 1), (64, 2)])
def test_shards_equal_one_shot(size: int, seed: int) -> None:
    gt, dets = _dataset(seed)
    expected = run_cocoeval(gt, dets)
    assert expected.stats[0] > 0  # a meaningful case, not all zeros
    _assert_same(expected, accumulate_shards(gt, _shards(gt, dets, size, seed)))


def test_without_workers_it_is_plain_pycocotools() -> None:
    gt, dets = _dataset(8)
    _assert_same(run_cocoeval(gt, dets), _sharded(gt, dets, workers=0, shard=4, seed=8))
    with ShardedCocoEval(gt, workers=0) as scorer, pytest.raises(ValueError, match="were added but the ground"):
        scorer.add([gt["images"][0]["id"]], [])
        scorer.finish()


def test_worker_processes_give_the_same_metrics() -> None:
    gt, dets = _dataset(3)
    sharded = _sharded(gt, dets, workers=2, shard=4, seed=3)
    _assert_same(run_cocoeval(gt, dets), sharded)
    assert score_coco(gt, dets, sharded).metrics == score_coco(gt, dets).metrics


def test_no_detections_at_all() -> None:
    gt, _ = _dataset(4)
    _assert_same(run_cocoeval(gt, []), accumulate_shards(gt, _shards(gt, [], 3, 4)))


def test_images_missing_or_scored_twice_are_errors() -> None:
    gt, dets = _dataset(5, n_images=6)
    halves = [dict(gt, images=gt["images"][:3]), dict(gt, images=gt["images"][3:])]
    first = evaluate_shard(halves[0], [d for d in dets if d["image_id"] in {im["id"] for im in halves[0]["images"]}])
    with pytest.raises(ValueError, match="shards cover 3 images but the ground truth lists 6"):
        accumulate_shards(gt, [first])
    with pytest.raises(ValueError, match="more than one shard"):
        accumulate_shards(gt, [first, first])


def test_a_dead_worker_falls_back_to_scoring_here(caplog: pytest.LogCaptureFixture) -> None:
    gt, dets = _dataset(6, n_images=12)
    first, second = [im["id"] for im in gt["images"][:4]], [im["id"] for im in gt["images"][4:]]
    with ShardedCocoEval(gt, workers=1, shard_images=4) as scorer:
        scorer.add(first, [d for d in dets if d["image_id"] in first])  # one shard is in the worker now
        pool = scorer._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # the pool breaks as when a worker dies
            process.kill()
        with caplog.at_level(logging.WARNING, logger="edgeproof.evaluation.shards"):
            scorer.add(second, [d for d in dets if d["image_id"] in second])  # submitting to a dead pool
            other = scorer.call(len, dets)
            result = scorer.finish()
            assert other() == len(dets)
    _assert_same(run_cocoeval(gt, dets), result)
    assert "scoring in this process instead" in caplog.text


def test_other_scorers_run_in_the_pool_or_here() -> None:
    gt, _ = _dataset(9, n_images=3)
    for workers, here in ((0, True), (1, False)):
        with ShardedCocoEval(gt, workers=workers) as scorer:
            assert (scorer.call(os.getpid)() == os.getpid()) is here


def test_bad_settings_are_rejected() -> None:
    gt, _ = _dataset(7, n_images=2)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        ShardedCocoEval(gt, workers=-1)
    with pytest.raises(ValueError, match="shard_images >= 1"):
        ShardedCocoEval(gt, shard_images=0)
