"""Scale check: select a subset from a COCO train2017-sized annotation file (no image I/O).

Generates an ``instances_train2017.json`` look-alike in a temp dir (118,287 images, 860,001
annotations with segmentation polygons and some crowd RLEs, COCO's 80 categories with their
non-contiguous ids, ~1% of images without annotations), then runs the data stage's COCO path
on it in a fresh process per scenario and reports wall time and peak RSS:

* ``subset``: 3 classes, train's negatives dropped, 5,000 train / 1,000 val images (seeded split);
* ``full``: every class and image, no cap (the worst case for memory);
* ``subset_canonical``: ``subset`` plus building the canonical labels and COCO ground truth
  (image sizes from the JSON, so still no image I/O).

Budget (the issue): <= 60 s and <= 4 GB peak. Usage::

    python benchmarks/coco_subset_scale.py            # full size; report in benchmarks/out/
    python benchmarks/coco_subset_scale.py --images 20000 --annotations 150000   # quicker
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
SCENARIOS = ("subset", "full", "subset_canonical")
BUDGET_S, BUDGET_GB = 60.0, 4.0

NAMES = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
]
MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
CATEGORY_IDS = [i for i in range(1, 91) if i not in MISSING_IDS]


def _categories() -> list[dict]:
    return [
        {"supercategory": "thing", "id": i, "name": n.replace("_", " ")}
        for i, n in zip(CATEGORY_IDS, NAMES, strict=True)
    ]


def _polygon_pool(rng: np.random.Generator, n: int = 4000) -> list[str]:
    pool = []
    for _ in range(n):
        pts = rng.uniform(0, 640, size=2 * int(rng.integers(5, 50))).round(2)  # ~450 MB in all, like train2017
        pool.append("[[" + ",".join(f"{v:.2f}" for v in pts) + "]]")
    return pool


def _rle_pool(rng: np.random.Generator, n: int = 200) -> list[str]:
    return [
        '{"counts":['
        + ",".join(str(v) for v in rng.integers(1, 500, size=int(rng.integers(50, 400))))
        + '],"size":[480,640]}'
        for _ in range(n)
    ]


def generate(path: Path, n_images: int, n_anns: int, seed: int = 0) -> dict[str, float]:
    """Stream a COCO-like instances file to ``path``; returns its size and generation time."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    ids = rng.choice(600_000, size=n_images, replace=False) + 1
    widths = rng.choice([640, 612, 500, 480, 427], size=n_images)
    heights = rng.choice([480, 640, 427, 375, 333], size=n_images)
    weights = np.ones(len(CATEGORY_IDS))
    weights[0] = 30  # person dominates COCO
    cats = rng.choice(CATEGORY_IDS, size=n_anns, p=weights / weights.sum())
    annotated = int(n_images * 0.991)  # ~1% of train2017 images have no annotation
    owners = rng.integers(0, annotated, size=n_anns)
    polys, rles = _polygon_pool(rng), _rle_pool(rng)
    with path.open("w") as fh:
        fh.write(
            '{"info":{"description":"synthetic COCO 2017 look-alike","year":2017},"licenses":[{"id":1,"name":"x"}],'
        )
        fh.write('"images":[')
        for start_i in range(0, n_images, 20_000):
            part = []
            for k in range(start_i, min(start_i + 20_000, n_images)):
                i, w, h = int(ids[k]), int(widths[k]), int(heights[k])
                part.append(
                    f'{{"license":1,"file_name":"{i:012d}.jpg","coco_url":"http://images.cocodataset.org/train2017/'
                    f'{i:012d}.jpg","height":{h},"width":{w},"date_captured":"2013-11-14 11:18:45","id":{i}}}'
                )
            fh.write(("," if start_i else "") + ",".join(part))
        fh.write('],"annotations":[')
        for start_a in range(0, n_anns, 50_000):
            stop = min(start_a + 50_000, n_anns)
            own = owners[start_a:stop]
            w, h = widths[own], heights[own]
            x, y = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
            bw, bh = rng.uniform(1, w - x), rng.uniform(1, h - y)
            crowd = rng.random(stop - start_a) < 0.01
            part = []
            for j in range(stop - start_a):
                seg = rles[j % len(rles)] if crowd[j] else polys[int(rng.integers(len(polys)))]
                part.append(
                    f'{{"segmentation":{seg},"area":{bw[j] * bh[j] * 0.6:.4f},"iscrowd":{int(crowd[j])},'
                    f'"image_id":{int(ids[own[j]])},"bbox":[{x[j]:.2f},{y[j]:.2f},{bw[j]:.2f},{bh[j]:.2f}],'
                    f'"category_id":{int(cats[start_a + j])},"id":{start_a + j + 1}}}'
                )
            fh.write(("," if start_a else "") + ",".join(part))
        fh.write('],"categories":' + json.dumps(_categories()) + "}")
    return {"file_mb": round(path.stat().st_size / 2**20, 1), "generate_s": round(time.perf_counter() - start, 1)}


def _canonical(ds, chosen, out: Path) -> int:
    """Labels and COCO ground truth for the chosen images, sizes taken from the JSON (no image I/O)."""
    from edgeproof.data.canonical import ImageRecord, write_labels_and_annotations
    from edgeproof.data.images import ImageInfo
    from edgeproof.data.place import resolve_boxes
    from edgeproof.data.report import Problems

    problems, splits = Problems(), {}
    for split, idx in chosen.items():
        records = []
        for i in idx:
            im = ds.images[i]
            info = ImageInfo(im.width, im.height, im.width, im.height, 1, "JPEG", None)
            anns = resolve_boxes(im.boxes, info, 1, im.file, problems)
            records.append(ImageRecord(im.id, im.file, im.width, im.height, anns))
        splits[split] = records
    write_labels_and_annotations(out, splits, ds.categories, "coco")
    return problems.total


def run_scenario(name: str, repo: Path) -> dict:
    """One scenario in this (fresh) process: load, check, select; peak RSS is this process's."""
    from edgeproof.config import parse_params
    from edgeproof.data.coco import load_coco
    from edgeproof.data.report import Problems
    from edgeproof.data.source import select

    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    coco = {"images": "train2017", "annotations": "annotations/instances_train2017.json"}
    if name.startswith("subset"):
        coco.update(classes=["person", "car", "dog"], keep_negatives=False, max_train_images=5000, max_val_images=1000)
    params = parse_params({"data": {"source": "coco", "coco": coco}}).data
    start = time.perf_counter()
    problems = Problems()
    ds = load_coco(params.coco, repo, problems)
    loaded = time.perf_counter()
    chosen = select(ds, params.coco, params.seed, params.val_fraction)
    selected = time.perf_counter()
    result = {
        "scenario": name,
        "load_and_check_s": round(loaded - start, 2),
        "select_s": round(selected - loaded, 2),
        "images": {s: len(v) for s, v in chosen.items()},
        "boxes": {s: sum(len(ds.images[i].boxes) for i in v) for s, v in chosen.items()},
        "problems": problems.total,
        "info": ds.info,
    }
    if name == "subset_canonical":
        with tempfile.TemporaryDirectory() as tmp:
            _canonical(ds, chosen, Path(tmp))
        result["canonical_s"] = round(time.perf_counter() - selected, 2)
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["baseline_rss_mb"] = round(baseline_mb, 1)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=118_287)
    p.add_argument("--annotations", type=int, default=860_001)
    p.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)  # internal: child process
    p.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.repo)))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coco-scale-") as tmp:
        repo = Path(tmp)
        (repo / "train2017").mkdir()
        (repo / "annotations").mkdir()
        gen = generate(repo / "annotations/instances_train2017.json", args.images, args.annotations)
        print(f"generated {args.images} images / {args.annotations} annotations: {gen}", flush=True)
        results = []
        for name in SCENARIOS:
            cmd = [sys.executable, __file__, "--scenario", name, "--repo", str(repo)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(
                f"{name:17s} wall {r['wall_s']:6.2f} s   peak RSS {r['peak_rss_mb']:7.1f} MB   images {r['images']}",
                flush=True,
            )
    ok = all(r["wall_s"] <= BUDGET_S and r["peak_rss_mb"] <= BUDGET_GB * 1024 for r in results)
    report = {
        "images": args.images,
        "annotations": args.annotations,
        "generated": gen,
        "budget": {"wall_s": BUDGET_S, "peak_gb": BUDGET_GB},
        "within_budget": ok,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "results": results,
    }
    (OUT / "coco_subset_scale.json").write_text(json.dumps(report, indent=2) + "\n")
    verdict = "within" if ok else "OVER"
    print(f"{verdict} budget ({BUDGET_S:.0f} s, {BUDGET_GB:.0f} GB); report: {OUT / 'coco_subset_scale.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
