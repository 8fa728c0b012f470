"""Put the selected images of one split into the prepared dataset and turn their boxes into canonical ones.

Each image is checked (decoded), linked or normalised (:mod:`edgeproof.data.images`), and its boxes
brought into the displayed pixel frame of the prepared file (:mod:`edgeproof.data.frames`).
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

from edgeproof.data.canonical import ImageRecord
from edgeproof.data.frames import Frame, Frames, Pending, box_frame, resolve_boxes
from edgeproof.data.images import MIN_SIDE, TooLarge, UnreadableImage, inspect, link_or_copy, write_normalized
from edgeproof.data.report import Problems
from edgeproof.data.source import SourceImage, display, escapes, leads_outside
from edgeproof.runtime.image import DEFAULT_MAX_PIXELS

log = logging.getLogger(__name__)

_SUFFIX = {"JPEG": ".jpg", "PNG": ".png"}


@dataclass
class Placed:
    """The outcome for one image: its record (None when dropped), how it was placed, its problems, the
    frame of its boxes and, when that frame is ambiguous, the image held back for :meth:`Frames.settle`."""

    record: ImageRecord | None
    how: str
    problems: Problems
    frame: Frame = field(default_factory=Frame)
    pending: Pending | None = None
    pixels: str = ""  # digest of its decoded pixels (:func:`edgeproof.data.images.pixel_digest`)


@dataclass
class Twins:
    """Images with the same decoded pixels, found as the splits are placed, val first: a train image that
    is a val image under other metadata (EXIF, a comment, another PNG encoding) is taken out of train
    (``split_overlap``), and a val image repeated in val is a ``duplicate_image`` (both kept and scored,
    so it weighs twice in the mAP). Byte-identical files are found earlier, without decoding
    (:func:`edgeproof.data.prepare.remove_split_leaks`)."""

    val: dict[str, str] = field(default_factory=dict)  # pixel digest -> the first val file with it

    def leaks(self, split: str) -> dict[str, str] | None:
        """The val digests a ``split`` image must not repeat (train's), else None."""
        return self.val if split == "train" else None

    def note(self, split: str, placed: Placed, problems: Problems) -> None:
        """Record a placed val image's digest; a repeat of an earlier val image is a ``duplicate_image``."""
        if split != "val" or placed.record is None or not placed.pixels:
            return
        where = placed.record.source_file or placed.record.file_name
        first = self.val.setdefault(placed.pixels, where)
        if first != where:
            problems.add("duplicate_image", f"{where}: the same pixels as val {first}; both scored")


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


@lru_cache(maxsize=64)
def _names_by_nfc(folder: Path, mtime_ns: int) -> dict[str, str]:
    """The entries of ``folder`` keyed by their NFC form (``mtime_ns``: redone when the folder changes)."""
    return {unicodedata.normalize("NFC", p.name): p.name for p in folder.iterdir()}


def _normalisation_hint(image: SourceImage, repo: Path) -> str:
    """For a missing file, ``"; <the file> is ..."`` when a file of the same name in another Unicode
    normalisation exists (an NFC ``file_name`` and an NFD file, as zips made on macOS store names:
    identical on screen, different bytes), else ""."""
    found = image.root
    for part in image.file.split("/"):
        if not (found / part).exists():
            try:
                names = _names_by_nfc(found, found.stat().st_mtime_ns)
            except OSError:  # not a folder
                return ""
            part = names.get(unicodedata.normalize("NFC", part), "")
            if not part:
                return ""
        found = found / part
    if not found.is_file():
        return ""
    form = "NFD" if unicodedata.is_normalized("NFD", found.name) else "NFC"
    return (
        f": not found, but {display(found, repo)} is the same name in another Unicode normalisation "
        f"(on disk {form}: {found.name!a}; listed: {image.path.name!a}); rename the file or the entry"
    )


def place_image(
    image: SourceImage,
    stem: str,
    out_dir: Path,
    hardlink: bool,
    repo: Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    leaks: Mapping[str, str] | None = None,
) -> Placed:
    """Check ``image``, write it to ``out_dir`` as ``stem.<ext>`` and resolve its boxes.

    ``max_pixels`` (``data.max_image_pixels``): a larger image is dropped from its header, undecoded.
    ``leaks`` (:meth:`Twins.leaks`): pixel digests of val images; an image with one of them is taken out
    (``split_overlap``), marked ``excluded`` like a byte-identical copy.
    """
    problems = Problems()
    where = display(image.path, repo)
    target = escapes(image.path, image.root)
    if target is not None:
        problems.add("path_escape", f"{where}: {leads_outside(target, image.root, repo)}")
        return Placed(None, "dropped", problems)
    if not image.path.is_file():
        problems.add("missing_file", where + _normalisation_hint(image, repo))
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
    twin = leaks.get(info.pixels) if leaks and info.pixels else None
    if twin is not None:
        image.split = "excluded"
        problems.add("split_overlap", f"{where}: the same pixels as val {twin}")
        return Placed(None, "dropped", problems)
    if info.repaired:
        problems.add("corrupt_image_restored", where)
    if info.reason is not None:
        name, how = f"{stem}.png", "normalized"
        write_normalized(image.path, out_dir / name, max_pixels)
    else:
        name = stem + _SUFFIX[info.format]
        how = link_or_copy(image.path, out_dir / name, hardlink)
    frame = box_frame(image, info, where, problems)
    record = ImageRecord(image.id, name, info.width, info.height, source_file=where)
    if frame.ambiguous:  # its boxes wait for the whole dataset's evidence
        return Placed(record, how, problems, frame, Pending(record, image, info, where), info.pixels)
    record.annotations = resolve_boxes(image.boxes, info, frame.orientation, where, problems)
    return Placed(record, how, problems, frame, pixels=info.pixels)


def place_split(
    images: Sequence[SourceImage],
    out_dir: Path,
    hardlink: bool,
    repo: Path,
    problems: Problems,
    frames: Frames,
    split: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    twins: Twins | None = None,
) -> tuple[list[ImageRecord], Counter[str]]:
    """Place every image of a split (decoding in a few threads); return the kept records in order.

    Ambiguous EXIF-rotated images are kept in ``frames`` with their boxes held back: call
    :meth:`Frames.settle` once every split is placed. ``twins``: place val first, then train with the
    same :class:`Twins`, to find images with the same pixels."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = unique_stems(images)
    workers = max(1, min(4, os.cpu_count() or 1))
    records: list[ImageRecord] = []
    placed: Counter[str] = Counter()
    leaks = twins.leaks(split) if twins is not None else None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = pool.map(
            lambda im, stem: place_image(im, stem, out_dir, hardlink, repo, max_pixels, leaks), images, stems
        )
        for result in tqdm(jobs, total=len(images), desc=f"images {split}", unit="img", leave=False):
            problems.merge(result.problems)
            if twins is not None:
                twins.note(split, result, problems)
            placed[result.how] += 1
            if result.record is not None:
                records.append(result.record)
                frames.add(result.frame, result.record.source_file or "", result.pending)
    log.info("%s: %d images placed (%s)", split, len(records), dict(placed))
    return records, placed
