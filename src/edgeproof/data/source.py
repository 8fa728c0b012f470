"""What a user-data loader hands over, and the source-independent subset selection.

A loader (COCO, VOC, YOLO) reads annotations only — no image I/O — into :class:`SourceDataset`:
the kept categories, the candidate images and how many kept boxes each has. :func:`select` then
splits, drops negatives (train's and val's each by their own rule) and caps, all seeded and
order-independent: an image's split depends only on ``(seed, file)``, and growing a cap keeps the
images a smaller cap chose.
"""

from __future__ import annotations

import difflib
import logging
import posixpath
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof.data.canonical import SPLITS, Category
from edgeproof.data.caps import capped, capped_keeping_share, hash_order
from edgeproof.data.dvcconfig import in_dvc_cache, looks_like_dvc_object
from edgeproof.data.params import SubsetParams
from edgeproof.data.report import Problems

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceBox:
    """A box as the source gives it: ``[x, y, w, h]`` in pixels, or fractions when ``normalized``."""

    category_id: int
    bbox: tuple[float, float, float, float]
    iscrowd: int = 0
    area: float | None = None
    normalized: bool = False


@dataclass
class SourceImage:
    """One image entry: where its file is, what the annotations say about it, and its boxes."""

    id: int
    file: str  # posix path relative to ``root``, lexically normalised
    root: Path
    width: int | None = None  # declared by the annotations; None when the format has no size
    height: int | None = None
    split: str | None = None  # the source's own split, or None (seeded split)
    boxes: list[SourceBox] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """The image file."""
        return self.root / self.file


@dataclass(frozen=True)
class Origin:
    """One annotation file that names a class: what a class without a single box can be traced back to."""

    file: str  # the annotation file, as problems name it
    image: int  # index of its image in ``SourceDataset.images`` (its boxes of the class, if any, are there)
    held: str = ""  # why objects of the class there are no boxes to train on (VOC ``difficult``), or ""


@dataclass
class SourceDataset:
    """A loaded source before image I/O. ``fill`` materialises boxes of the chosen images (lazy loaders)."""

    source: str
    categories: list[Category]
    images: list[SourceImage]
    n_boxes: np.ndarray  # kept boxes per image, crowd/difficult included
    fill: Callable[[Sequence[int]], None] | None = None
    info: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the source was read, where it is not as written
    # the file (and key) that defines the classes, for problems; "" where each class is defined by the
    # annotation files naming it (VOC without data.voc.classes: the union of its <object> names)
    categories_from: str = ""
    origins: dict[int, list[Origin]] = field(default_factory=dict)  # category id -> the files naming it (VOC)


def existing(repo: Path, rel: str | None, key: str, want_dir: bool) -> Path:
    """``repo / rel``, which must exist as a folder (``want_dir``) or a file; errors name the params key."""
    if rel is None:
        raise ValueError(f"params.yaml: {key}: not set")
    path = repo / rel
    if not (path.is_dir() if want_dir else path.is_file()):
        kind = "folder" if want_dir else "file"
        raise FileNotFoundError(f"params.yaml: {key}: {rel} is not an existing {kind} (paths are relative to {repo})")
    return path


def display(path: Path, repo: Path) -> str:
    """``path`` relative to the repo when it is inside it (for messages and the report)."""
    try:
        return path.relative_to(repo).as_posix()
    except ValueError:
        return path.as_posix()


def escapes(path: Path, root: Path) -> Path | None:
    """Where ``path`` really is when symlinks take it outside ``root`` (both resolved), else None.

    The lexical check (:func:`safe_relative`) cannot see ``images/sub -> /elsewhere``: only the
    resolved path tells whether a file is inside the dataset. A symlinked ``root`` itself is the
    user's choice and is fine; links inside it must stay inside it, or lead into the repo's DVC cache
    (as DVC asks it: ``cache.dir``): ``dvc add`` with ``cache.type: symlink`` makes every file of the
    dataset such a link, which is the file itself.
    """
    target = path.resolve()
    return None if target.is_relative_to(root.resolve()) or in_dvc_cache(target, path) else target


def leads_outside(target: Path, root: Path, repo: Path) -> str:
    """The ``path_escape`` text for a symlink to ``target`` (from :func:`escapes`) outside ``root``,
    naming DVC when the target is a DVC cache object outside this repo's DVC cache."""
    text = f"a symlink leads outside {display(root, repo)}"
    if looks_like_dvc_object(target):
        text += (
            f", to {target}: a DVC cache object (DVC's cache.type symlink), but not in this repo's DVC cache; "
            "`dvc checkout` the dataset in this repo, or copy it with its links followed (cp -rL)"
        )
    return text


def safe_relative(name: str) -> str | None:
    """``name`` normalised to a posix path under its root, or None if it escapes (absolute, ``..``)."""
    text = name.replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return norm


def keep_categories(available: Sequence[Category], wanted: Sequence[str] | None, key: str) -> list[Category]:
    """The categories to keep, in ``available`` order; unknown names in ``wanted`` fail naming ``key``."""
    if wanted is None:
        return list(available)
    names = [c.name for c in available]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, names, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"params.yaml: {key}: not a class of this dataset: {', '.join(hints)}; it has {names}")
    wanted_set = set(wanted)
    return [c for c in available if c.name in wanted_set]


def folded(name: str) -> str:
    """``name`` as a person reads it: case folded, runs of whitespace one space, none at the ends."""
    return " ".join(name.split()).casefold()


def shared_names(
    categories: Sequence[Category], where: str, problems: Problems, dropped: Mapping[str, int] | None = None
) -> None:
    """A name several categories share is a ``duplicate_category_name`` (both kept, told apart by id),
    and so are names that differ only in case or spacing (``Object``, ``object``, ``object ``): almost
    always one class typed two ways, which would otherwise be trained and scored as separate classes.

    ``dropped``: names found in the source but not kept (``data.<source>.classes`` left them out, see
    :func:`left_out`), with their box counts; one that matches another name that way is reported as
    dropped, since its boxes are lost rather than merged or kept apart.
    """
    dropped = dropped or {}
    counts = Counter(c.name for c in categories)
    for name in (n for n, k in counts.items() if k > 1):
        ids = [c.id for c in categories if c.name == name]
        lost = f"; not in classes: dropped with their {dropped[name]} box(es)" if name in dropped else ""
        problems.add("duplicate_category_name", f"{where}: {name!r} names categories {ids}{lost}")
    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys([*counts, *dropped]):
        groups.setdefault(folded(name), []).append(name)
    for names in (g for g in groups.values() if len(g) > 1):
        text = f"{where}: {', '.join(map(repr, names))} differ only in case or spacing: "
        lost = [f"the {dropped[n]} box(es) named {n!r}" for n in names if n in dropped]
        kept = [n for n in names if n not in dropped]
        text += f"{' and '.join(lost)} dropped (not in classes)" if lost else "kept as separate classes"
        if lost and len(kept) > 1:
            text += f"; {', '.join(map(repr, kept))} kept as separate classes"
        problems.add("duplicate_category_name", text)


def left_out(
    categories: Sequence[Category], kept: Sequence[Category], box_categories: Sequence[np.ndarray]
) -> dict[str, int]:
    """The names of ``categories`` not in ``kept``, each with the number of boxes it loses (``box_categories``:
    each box's category id, in one or more arrays): the ``dropped`` of :func:`shared_names`. A left-out name
    without boxes counts 0; with every category kept the boxes are not looked at."""
    kept_ids = {c.id for c in kept}
    out = {c.name: 0 for c in categories if c.id not in kept_ids}
    if out:
        name = {c.id: c.name for c in categories if c.id not in kept_ids}
        for chunk in box_categories:
            ids, n = np.unique(np.asarray(chunk, dtype=np.int64), return_counts=True)
            for cid, count in zip(ids.tolist(), n.tolist(), strict=True):
                if cid in name:
                    out[name[cid]] += count
    return out


def _assign_splits(images: Sequence[SourceImage], seed: int, val_fraction: float) -> list[str]:
    splits = [im.split or "" for im in images]
    unsplit = [i for i, s in enumerate(splits) if not s]
    if unsplit:
        order = hash_order([images[i].file for i in unsplit], seed, "split")
        n_val = round(len(unsplit) * val_fraction) if len(unsplit) > 1 else 0
        n_val = min(max(n_val, 1 if len(unsplit) > 1 else 0), len(unsplit) - 1)
        for rank, j in enumerate(order):
            splits[unsplit[j]] = "val" if rank < n_val else "train"
    return splits


def _cap(ds: SourceDataset, idx: list[int], cap: int, seed: int, split: str) -> list[int]:
    """The seeded ``cap`` of the images ``idx`` of ``split`` (sorted); larger caps keep smaller caps' images.

    Val keeps its share of background images (:func:`~edgeproof.data.caps.capped_keeping_share`): the
    luck of the draw then never changes the share the mAP is measured on.
    """
    files = [ds.images[i].file for i in idx]
    if split != "val":
        return [idx[j] for j in capped(files, cap, seed, f"cap-{split}")]
    labelled = [ds.n_boxes[i] > 0 for i in idx]
    return [idx[j] for j in capped_keeping_share(files, labelled, cap, seed, f"cap-{split}")]


def select(ds: SourceDataset, subset: SubsetParams, seed: int, val_fraction: float) -> dict[str, list[int]]:
    """Indices of ``ds.images`` per split after the seeded split, the negatives rules and the caps.

    Splitting comes first, over every candidate, so changing ``classes`` or a cap never moves an
    image from train to val. ``keep_negatives`` is train's rule and ``val_keep_negatives`` val's: the
    background images of val stay in the evaluation unless dropped on purpose. Records what was left
    out in ``ds.info`` (``<split>_negatives_dropped``, ``<split>_capped_out``).
    """
    splits = _assign_splits(ds.images, seed, val_fraction)
    caps = {"train": subset.max_train_images, "val": subset.max_val_images}
    keep = {"train": subset.keep_negatives, "val": subset.val_keep_negatives}
    chosen: dict[str, list[int]] = {}
    for split in SPLITS:
        idx = [i for i, s in enumerate(splits) if s == split]
        kept = idx if keep[split] else [i for i in idx if ds.n_boxes[i] > 0]
        ds.info[f"{split}_negatives_dropped"] = ds.info.get(f"{split}_negatives_dropped", 0) + len(idx) - len(kept)
        idx = kept
        cap = caps[split]
        if cap is not None and len(idx) > cap:
            ds.info[f"{split}_capped_out"] = ds.info.get(f"{split}_capped_out", 0) + len(idx) - cap
            idx = _cap(ds, idx, cap, seed, split)
        chosen[split] = idx
    if ds.info.get("val_negatives_dropped"):
        log.warning(
            "data.%s.val_keep_negatives is false: %d background image(s) left out of val, so the mAP does not "
            "count the false positives on them",
            ds.source,
            ds.info["val_negatives_dropped"],
        )
    if ds.fill is not None:
        ds.fill([i for split in SPLITS for i in chosen[split]])
    return chosen
