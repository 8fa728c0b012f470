"""Which files of a YOLO dataset are read, as ultralytics reads them: the images a folder or ``.txt`` list
gives, each image's label file, and the label files no listed image reads.

A label file no image maps to (``VAL_1.txt`` beside ``val_1.jpg``, copied from a case-insensitive disk;
the label of an image in a format ultralytics does not read) leaves its image a background, trained and
scored as holding no object: each one is an ``orphan_label`` problem naming it, with the likely reason.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgeproof.data.image_formats import IMAGE_SUFFIXES
from edgeproof.data.report import Problems
from edgeproof.data.source import display

_IMAGES, _LABELS = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"


def label_path(image: Path) -> Path:
    """ultralytics' label file for ``image`` (its ``img2label_paths``): last ``/images/`` -> ``/labels/``,
    suffix ``.txt``."""
    return Path(_LABELS.join(str(image).rsplit(_IMAGES, 1)).rsplit(".", 1)[0] + ".txt")


@dataclass
class Listing:
    """What the yaml's entries name besides the images: the folders searched (recursively), the ``.txt``
    image lists read, and the files in those folders skipped as no image format ultralytics reads."""

    folders: list[Path] = field(default_factory=list)
    lists: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def skipped_note(self, where: str) -> str | None:
        """The note saying which files the folders hold that are not read, by suffix; None when none."""
        if not self.skipped:
            return None
        by_suffix = Counter(p.suffix.lower() or "(no suffix)" for p in self.skipped)
        counts = ", ".join(f"{s} x{n}" for s, n in sorted(by_suffix.items()))
        return (
            f"{where}: {len(self.skipped)} file(s) in the image folders skipped, not an image format ultralytics "
            f"reads ({counts}); a label file of one is an orphan_label"
        )


def list_images(path: Path, entry: str, root: Path, where: str, listing: Listing, single: bool = False) -> list[Path]:
    """The images one yaml entry names: a folder's (recursively, by :data:`IMAGE_SUFFIXES`; a link whose
    target is gone is listed, to be reported missing) or a ``.txt`` list's lines, as ultralytics lists them."""
    if path.is_dir():
        listing.folders.append(path)
        images = []
        for p in sorted(path.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                if p.is_file() or (p.is_symlink() and not p.exists()):
                    images.append(p)
            elif p.suffix.lower() != ".txt" and p.is_file():  # .txt: labels beside their images, or lists
                listing.skipped.append(p)
        return images
    if path.is_file() and path.suffix == ".txt":
        listing.lists.append(path)
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                out.append(path.parent / line[2:] if line.startswith("./") else root / line)
        return out
    tried = f" (nor is {entry[3:]!r}, which ultralytics also tries)" if single and entry.startswith("../") else ""
    raise FileNotFoundError(f"{where}: {entry!r} is neither an image folder nor a .txt image list under {root}{tried}")


def _normal(path: Path) -> Path:
    return Path(os.path.normpath(path))


def _label_files(listing: Listing, mapped: dict[Path, Path]) -> set[Path]:
    """The ``.txt`` files in the label folders of the listed folders (recursively) and beside every listed
    image's label file."""
    found: set[Path] = set()
    for folder in {_normal(label_path(f / "_.jpg").parent) for f in listing.folders}:
        if folder.is_dir():
            found |= {_normal(p) for p in folder.rglob("*") if p.suffix.lower() == ".txt" and p.is_file()}
    for folder in {p.parent for p in mapped}:
        if folder.is_dir():
            found |= {_normal(p) for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file()}
    return found


def _reads_as_labels(path: Path) -> bool:
    """Whether ``path`` looks like a label file (empty, or its first row starts with a number), not a README,
    a class list or an image list that happens to lie in a label folder."""
    try:
        with path.open(encoding="utf-8-sig") as fh:
            first = next((line.split()[0] for line in fh if line.strip()), None)
    except (OSError, UnicodeDecodeError):
        return True  # unreadable: say so, as a label file nothing reads
    if first is None:
        return True
    try:
        float(first)
    except ValueError:
        return False
    return True


def _hint(label: Path, mapped: dict[str, tuple[Path, Path]], skipped: dict[str, Path], repo: Path) -> str:
    """Why no listed image reads ``label``: a name differing in case, the image's suffix kept in the label's
    name, an image in a format ultralytics does not read, or no such image listed. ``mapped``: case-folded
    label path -> (label path, image) of the listed images; ``skipped``: the same for the skipped files."""
    if (near := mapped.get(str(label).casefold())) is not None:
        return f"names are case-sensitive, as in ultralytics: {display(near[1], repo)} reads {display(near[0], repo)}"
    inner = label.with_name(Path(label.stem).stem + ".txt")  # x.jpg.txt: the image's whole name + .txt
    if Path(label.stem).suffix.lower() in IMAGE_SUFFIXES and (near := mapped.get(str(inner).casefold())):
        return f"{display(near[1], repo)} reads {display(near[0], repo)} (the image's name, its suffix replaced)"
    if (image := skipped.get(str(label).casefold())) is not None:
        formats = ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
        return f"its image {display(image, repo)} is not a format ultralytics reads ({formats})"
    stem = _IMAGES.join(str(label).rsplit(_LABELS, 1)).rsplit(".", 1)[0]
    return (
        f"no listed image is {display(Path(stem), repo)}.* (an image's label file is its path with the last "
        "images/ replaced by labels/ and the suffix by .txt)"
    )


def check_labels_found(
    unlabelled: dict[str, list[Path]], listed: dict[str, int], repo: Path, problems: Problems
) -> None:
    """A split none of whose images has a label file is a wrong folder or a name mismatch, not backgrounds:
    ``labels_not_found``. ``unlabelled``: each split's images without one; ``listed``: each split's image count."""
    for split, missing in unlabelled.items():
        if listed[split] and len(missing) == listed[split]:
            folders = sorted({display(label_path(p).parent, repo) for p in missing})
            shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
            problems.add(
                "labels_not_found",
                f"{split}: none of its {listed[split]} images has a label file (looked in {shown}, for "
                f"e.g. {label_path(missing[0]).name}: same name as the image, case included)",
            )


def orphan_labels(listing: Listing, mapped: dict[Path, Path], repo: Path, problems: Problems) -> None:
    """Each label file in the label folders that no listed image reads is an ``orphan_label`` naming it
    and why; ``mapped``: each listed image's label file (normalised) -> the image."""
    orphans = sorted(_label_files(listing, mapped) - set(mapped) - {_normal(p) for p in listing.lists})
    orphans = [label for label in orphans if _reads_as_labels(label)]
    if not orphans:
        return
    folded = {str(label).casefold(): (label, image) for label, image in mapped.items()}
    skipped = {str(_normal(label_path(p))).casefold(): p for p in listing.skipped}
    for label in orphans:
        why = _hint(label, folded, skipped, repo)
        problems.add("orphan_label", f"{display(label, repo)}: no listed image reads it; {why}")
