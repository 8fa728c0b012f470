"""Put the selected images of one split into the prepared dataset and turn their boxes into canonical ones.

Each image is checked (decoded), linked or normalised (:mod:`edgeproof.data.images`), and its boxes
brought into the displayed pixel frame of the prepared file: fractions scaled (YOLO), boxes drawn on
the stored frame of an EXIF-rotated image rotated with it, then clipped to the image.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from edgeproof.data.canonical import Annotation, ImageRecord
from edgeproof.data.images import (
    MIN_SIDE,
    ImageInfo,
    TooLarge,
    UnreadableImage,
    inspect,
    link_or_copy,
    to_displayed,
    write_normalized,
)
from edgeproof.data.report import Problems
from edgeproof.data.source import SourceBox, SourceImage, display, escapes
from edgeproof.runtime.image import DEFAULT_MAX_PIXELS

log = logging.getLogger(__name__)

CLIP_TOLERANCE = 1.0  # px a box may overhang its image before the clipping counts as a problem
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png"}


@dataclass
class Placed:
    """The outcome for one image: its record (None when dropped), how it was placed, its problems."""

    record: ImageRecord | None
    how: str
    problems: Problems


def _common_folder(files: Sequence[str]) -> int:
    """How many leading folder names every path in ``files`` shares."""
    folders = [f.split("/")[:-1] for f in files]
    n = min((len(f) for f in folders), default=0)
    for i in range(n):
        if any(f[i] != folders[0][i] for f in folders):
            return i
    return n


def unique_stems(images: Sequence[SourceImage]) -> list[str]:
    """Flat file stems, unique within the split: ``a/b.jpg`` -> ``a__b``; clashes get ``-<image id>``.

    The folders all files share are left out (``images/train/x.jpg`` -> ``x``). Stems must be
    unique because ultralytics finds an image's label file by its stem.
    """
    skip = _common_folder([im.file for im in images])
    used: set[str] = set()
    stems = []
    for im in images:
        flat = "__".join(im.file.split("/")[skip:])
        stem = flat.rsplit(".", 1)[0] if "." in flat.lstrip(".") else flat
        stem = f"_{stem}" if stem.startswith(".") else stem  # ultralytics' glob skips dot files
        candidate, n = stem, 0
        while candidate.lower() in used:
            n += 1
            candidate = f"{stem}-{im.id}" if n == 1 else f"{stem}-{im.id}-{n}"
        used.add(candidate.lower())
        stems.append(candidate)
    return stems


def _box_frame(image: SourceImage, info: ImageInfo, where: str, problems: Problems) -> int:
    """The orientation to apply to the boxes: 1 unless they were drawn on the stored pixel frame."""
    if image.width is None or image.height is None:
        return 1
    declared = (image.width, image.height)
    if declared == (info.width, info.height):
        return 1
    if declared == (info.stored_width, info.stored_height):
        problems.add(
            "size_mismatch",
            f"{where}: annotated as {declared[0]}x{declared[1]}, the stored frame of an image shown "
            f"{info.width}x{info.height} (EXIF orientation {info.orientation}); boxes rotated with the image",
        )
        return info.orientation
    problems.add(
        "size_mismatch", f"{where}: annotated as {declared[0]}x{declared[1]}, image is {info.width}x{info.height}"
    )
    return 1


def resolve_boxes(
    boxes: Sequence[SourceBox], info: ImageInfo, orientation: int, where: str, problems: Problems
) -> list[Annotation]:
    """Source boxes -> canonical annotations in the displayed frame of ``info``, clipped to the image."""
    out = []
    W, H = info.width, info.height
    for b in boxes:
        x, y, w, h = b.bbox
        if b.normalized:
            x, y, w, h = x * W, y * H, w * W, h * H
        elif orientation != 1:
            x, y, w, h = to_displayed(b.bbox, orientation, info.stored_width, info.stored_height)
        if not (w > 0 and h > 0):
            problems.add("box_degenerate", f"{where}: {[x, y, w, h]}")
            continue
        x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            problems.add("box_outside", f"{where}: {[round(v, 2) for v in (x, y, w, h)]} in {W}x{H}")
            continue
        if max(-x, -y, x + w - W, y + h - H) > CLIP_TOLERANCE:
            problems.add("box_clipped", f"{where}: {[round(v, 2) for v in (x, y, w, h)]} in {W}x{H}")
        out.append(Annotation(b.category_id, (x0, y0, x1 - x0, y1 - y0), b.iscrowd, b.area))
    return out


def place_image(
    image: SourceImage, stem: str, out_dir: Path, hardlink: bool, repo: Path, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Placed:
    """Check ``image``, write it to ``out_dir`` as ``stem.<ext>`` and resolve its boxes.

    ``max_pixels`` (``data.max_image_pixels``): a larger image is dropped from its header, undecoded.
    """
    problems = Problems()
    where = display(image.path, repo)
    if escapes(image.path, image.root) is not None:
        problems.add("path_escape", f"{where}: a symlink leads outside {display(image.root, repo)}")
        return Placed(None, "dropped", problems)
    if not image.path.is_file():
        problems.add("missing_file", where)
        return Placed(None, "dropped", problems)
    try:
        info = inspect(image.path, max_pixels)
    except TooLarge as exc:
        problems.add("image_too_large", f"{where}: {exc}")
        return Placed(None, "dropped", problems)
    except UnreadableImage as exc:
        problems.add("unreadable_image", f"{where}: {exc}")
        return Placed(None, "dropped", problems)
    if min(info.width, info.height) < MIN_SIDE:
        problems.add("image_too_small", f"{where}: {info.width}x{info.height}")
        return Placed(None, "dropped", problems)
    if info.repaired:
        problems.add("corrupt_image_restored", where)
    if info.reason is not None:
        name, how = f"{stem}.png", "normalized"
        write_normalized(image.path, out_dir / name, max_pixels)
    else:
        name = stem + _SUFFIX[info.format]
        how = link_or_copy(image.path, out_dir / name, hardlink)
    orientation = _box_frame(image, info, where, problems)
    annotations = resolve_boxes(image.boxes, info, orientation, where, problems)
    record = ImageRecord(image.id, name, info.width, info.height, annotations, source_file=where)
    return Placed(record, how, problems)


def place_split(
    images: Sequence[SourceImage],
    out_dir: Path,
    hardlink: bool,
    repo: Path,
    problems: Problems,
    split: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[ImageRecord], Counter[str]]:
    """Place every image of a split (decoding in a few threads); return the kept records in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = unique_stems(images)
    workers = max(1, min(4, os.cpu_count() or 1))
    records: list[ImageRecord] = []
    placed: Counter[str] = Counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = pool.map(lambda im, stem: place_image(im, stem, out_dir, hardlink, repo, max_pixels), images, stems)
        for result in tqdm(jobs, total=len(images), desc=f"images {split}", unit="img", leave=False):
            problems.merge(result.problems)
            placed[result.how] += 1
            if result.record is not None:
                records.append(result.record)
    log.info("%s: %d images placed (%s)", split, len(records), dict(placed))
    return records, placed
