"""The embedded default dataset: deterministic coloured shapes on noisy backgrounds.

Every image is a pure function of ``(seed, split, index)``: growing ``n_train`` keeps the first
images identical, and the same params give byte-identical files on any machine with the same
Pillow. Image sizes vary in aspect so the letterbox and its inverse are exercised; some images
have no objects; objects may partly overlap (never more than half hidden) so labels stay fair.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from edgeproof.data.canonical import (
    SPLITS,
    Annotation,
    Category,
    DatasetMeta,
    ImageRecord,
    write_labels_and_annotations,
)
from edgeproof.data.params import SyntheticParams

log = logging.getLogger(__name__)

_SPLIT_KEY = {"train": 1, "val": 2}
_MAX_HIDDEN = 0.5  # largest fraction of an earlier box a later shape may cover


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_KEY[split], index]))


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.integers(30, 226, size=3).astype(np.float32)
    direction = rng.normal(size=3).astype(np.float32) * 25
    ramp = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :, None] * direction[None, None, :]
    noise = rng.normal(0.0, rng.uniform(4, 14), size=(h, w, 3)).astype(np.float32)
    return np.clip(base + ramp + noise, 0, 255).astype(np.uint8)


def _contrasting_colour(rng: np.random.Generator, bg: np.ndarray) -> tuple[int, int, int]:
    for _ in range(50):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour.astype(int) - bg.astype(int)).sum() > 180:
            break
    return int(colour[0]), int(colour[1]), int(colour[2])


def _covered_fraction(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Fraction of box ``a`` (x0, y0, x1, y1) covered by box ``b``."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return iw * ih / area if area > 0 else 0.0


def _draw(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], colour: tuple[int, ...]) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour)
    elif shape == "cross":
        tw, th = (x1 - x0) / 6, (y1 - y0) / 6
        draw.rectangle((x0, cy - th, x1, cy + th), fill=colour)
        draw.rectangle((cx - tw, y0, cx + tw, y1), fill=colour)
    else:  # pragma: no cover - guarded by params validation
        raise ValueError(f"unknown shape {shape!r}")


def render_image(
    params: SyntheticParams, seed: int, split: str, index: int
) -> tuple[Image.Image, list[tuple[int, tuple[int, int, int, int]]]]:
    """Render one image; return it with its objects as (class index, inclusive pixel box)."""
    rng = _rng(seed, split, index)
    size = params.image_size
    w, h = (int(size * rng.uniform(0.75, 1.0)) for _ in range(2))
    pixels = _background(rng, w, h)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    n = 0 if rng.random() < params.empty_fraction else int(rng.integers(1, params.max_objects + 1))
    objects: list[tuple[int, tuple[int, int, int, int]]] = []
    short = min(w, h)
    for _ in range(n):
        for _attempt in range(20):
            side = short * rng.uniform(params.min_object_frac, params.max_object_frac)
            bw, bh = max(4, int(side * rng.uniform(0.8, 1.25))), max(4, int(side * rng.uniform(0.8, 1.25)))
            bw, bh = min(bw, w - 1), min(bh, h - 1)
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            box = (x0, y0, x0 + bw, y0 + bh)
            if all(_covered_fraction(prev, box) <= _MAX_HIDDEN for _, prev in objects):
                cls = int(rng.integers(0, len(params.classes)))
                mean_bg = pixels[y0 : y0 + bh, x0 : x0 + bw].reshape(-1, 3).mean(axis=0)
                _draw(draw, params.classes[cls], box, _contrasting_colour(rng, mean_bg))
                objects.append((cls, box))
                break
    return image, objects


def generate(params: SyntheticParams, seed: int, root: Path) -> DatasetMeta:
    """Write the synthetic dataset in canonical form under ``root`` (which should be empty)."""
    categories = [Category(id=i + 1, name=name) for i, name in enumerate(params.classes)]
    splits: dict[str, list[ImageRecord]] = {}
    counts = {"train": params.n_train, "val": params.n_val}
    for split in SPLITS:
        out = root / "images" / split
        out.mkdir(parents=True, exist_ok=True)
        records = []
        for index in tqdm(range(counts[split]), desc=f"synthetic {split}", unit="img", leave=False):
            image, objects = render_image(params, seed, split, index)
            file_name = f"{split}_{index:06d}.jpg"
            image.save(out / file_name, quality=params.jpeg_quality)
            record = ImageRecord(id=index + 1, file_name=file_name, width=image.width, height=image.height)
            for cls, (x0, y0, x1, y1) in objects:
                # PIL draws inclusive end pixels, so the shape spans x1 - x0 + 1 pixels.
                bbox = (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))
                record.annotations.append(Annotation(category_id=categories[cls].id, bbox=bbox))
            records.append(record)
        splits[split] = records
    log.info("synthetic dataset: %s", {s: len(r) for s, r in splits.items()})
    return write_labels_and_annotations(root, splits, categories, source="synthetic")
