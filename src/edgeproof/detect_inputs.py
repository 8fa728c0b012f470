"""What ``edgeproof detect`` runs on: the released model (its sha256 checked against the release's) and
the image files its sources name (files, folders, globs), each refused with a message naming it."""

from __future__ import annotations

import glob
import json
from collections.abc import Sequence
from pathlib import Path

from edgeproof.data.image_formats import IMAGE_SUFFIXES  # what `yolo predict` reads in a folder
from edgeproof.io import require_sha256

# video files `yolo predict` takes as a source (less .gif, which opens as an image): here they need --video
VIDEO_SOURCE_SUFFIXES = frozenset(
    {".asf", ".avi", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".ts", ".webm", ".wmv"}
)


def release_model(release: Path, profile: str | None = None) -> Path:
    """The model file ``release`` (reports/release.json) releases for ``profile`` (default: its
    build profile); paths in it are relative to the project root, the folder above ``reports/``.

    The file must still be the one released: its sha256 is the entry's ``sha256``, else
    :class:`~edgeproof.io.Sha256Mismatch` (a re-export or another commit's ``dvc checkout`` left other
    bytes at that path; the gate refuses them too). A model named explicitly is not checked."""
    if not release.is_file():
        raise FileNotFoundError(
            f"{release}: not found (from {Path.cwd()}), so there is no released model to default to; run "
            "from the project root, run the pipeline "
            "(bash ci/repro.sh or dvc repro) or name a model: edgeproof detect MODEL.onnx IMAGES"
        )
    report = json.loads(release.read_text(encoding="utf-8"))
    name = profile or report.get("build_profile")
    entry = report.get("profiles", {}).get(name)
    if not isinstance(entry, dict) or not entry.get("path") or not entry.get("sha256"):
        raise ValueError(f"{release}: no released model (path and sha256) for profile {name!r}")
    path = Path(entry["path"])
    path = path if path.is_absolute() else release.resolve().parent.parent / path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found, the model {release} releases for {name}; {_REMEDY}")
    require_sha256(path, str(entry["sha256"]), f"{release} for {name}", _REMEDY)
    return path


# what to do when the released file is gone or changed (both are what the pipeline left, or a model by name)
_REMEDY = "rerun `dvc repro` to rebuild the release, or pass --model PATH to run that file as it is"


def expand_sources(sources: Sequence[str]) -> list[Path]:
    """Image files from files, folders (their images, sorted) and globs (``**`` recurses).

    A source that names nothing is an error naming it: a typo never runs on zero images. So is an image
    that is a link whose target is gone, as any unreadable image is: never skipped silently."""
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if any(ch in source for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(source, recursive=True))]  # noqa: PTH207 (any pattern, absolute or relative)
            images = [m for m in matches if _is_image(m)]
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if _is_image(p))
        elif path.is_file() and path.suffix.lower() in VIDEO_SOURCE_SUFFIXES:
            raise ValueError(f"{source}: a video, not an image; run it with --video {source}")
        elif path.is_file():
            images = [path]
        else:
            raise FileNotFoundError(f"{source}: no such file or folder{_link_gone(path)}")
        if not images:
            raise FileNotFoundError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}){_folder_hint(path)}")
        found.extend(images)
    return found


def _is_image(path: Path) -> bool:
    """A file with an image suffix; such a name that is a link to nothing is an unreadable image (an error)."""
    if path.suffix.lower() in IMAGE_SUFFIXES and _link_gone(path):
        raise FileNotFoundError(f"{path}: unreadable image{_link_gone(path)}")
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _link_gone(path: Path) -> str:
    """Why, in brackets, when ``path`` is a link whose target is gone (or that loops); else empty."""
    return f" (a symlink to {path.readlink()}, which does not exist)" if path.is_symlink() and not path.exists() else ""


def _folder_hint(path: Path) -> str:
    """For a folder without images of its own: folders are not searched recursively, so say how to."""
    if not path.is_dir():
        return ""
    subfolders = sum(1 for p in path.iterdir() if p.is_dir())
    if not subfolders:
        return ""
    pattern = (path / "**" / "*.jpg").as_posix()
    return f" directly in it; it has {subfolders} subfolder(s), not searched: quote a glob like '{pattern}'"
