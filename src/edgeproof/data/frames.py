"""Source boxes -> canonical boxes in the displayed frame of the prepared image, and which pixel frame
the boxes of an EXIF-rotated image were drawn on.

Pixel boxes refer to the displayed (EXIF-applied) image, as COCO tools expect, or to the stored
pixels. The size the annotations declare tells which when the two frames differ in size
(orientations 5-8 on a non-square image). When they do not (orientations 2-4, a square image, no
declared size), the image's frame is *ambiguous*: its boxes wait until the whole dataset is placed,
then follow what the dataset's own telling images show (all annotated on the stored frame: stored;
else displayed), and each such image is an ``orientation_ambiguous`` problem saying which was used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from edgeproof.data.canonical import Annotation, ImageRecord
from edgeproof.data.images import ImageInfo, to_displayed
from edgeproof.data.report import Problems
from edgeproof.data.source import SourceBox, SourceImage

CLIP_TOLERANCE = 1.0  # px a box may overhang its image before the clipping counts as a problem
STORED, DISPLAYED = "stored", "displayed"


@dataclass(frozen=True)
class RowBox(SourceBox):
    """A source box that names the annotation row it came from (a YOLO label file and line, as
    ``labels/train/x.txt:3``): a box clipped to its image, or outside it, is reported there, the place to
    fix it, rather than at the image in pixels. Not compared: two equal boxes on two rows are equal."""

    row: str = field(default="", compare=False)


@dataclass(frozen=True)
class Frame:
    """How to read one image's boxes: ``orientation`` to apply (1: as drawn on the displayed image);
    ``evidence``: the frame its declared size proves (``STORED``/``DISPLAYED``), if any;
    ``ambiguous``: an EXIF-rotated image with pixel boxes whose frame its declared size cannot tell."""

    orientation: int = 1
    evidence: str | None = None
    ambiguous: bool = False


def box_frame(image: SourceImage, info: ImageInfo, where: str, problems: Problems) -> Frame:
    """The frame of ``image``'s boxes, from its declared size (``size_mismatch`` when it fits neither)."""
    shown, stored = (info.width, info.height), (info.stored_width, info.stored_height)
    declared = None if image.width is None or image.height is None else (image.width, image.height)
    pixel_boxes = any(not b.normalized for b in image.boxes)
    if info.orientation != 1 and pixel_boxes and (declared is None or declared == shown == stored):
        return Frame(ambiguous=True)
    if declared is None or declared == shown:
        return Frame(evidence=DISPLAYED if shown != stored else None)
    if declared == stored:
        problems.add(
            "size_mismatch",
            f"{where}: annotated as {declared[0]}x{declared[1]}, the stored frame of an image shown "
            f"{info.width}x{info.height} (EXIF orientation {info.orientation}); boxes rotated with the image",
        )
        return Frame(orientation=info.orientation, evidence=STORED)
    problems.add("size_mismatch", _mismatch(where, declared, shown))
    return Frame()


def _mismatch(where: str, declared: tuple[int, int], shown: tuple[int, int]) -> str:
    """The ``size_mismatch`` example for a declared size that fits neither frame. The boxes are kept in
    the image's pixels as annotated: which size they were drawn on cannot be told from the sizes alone (a
    tool writing a wrong size is as common as a photo resized after annotation), so nothing is guessed;
    the example says so, with the scale when it is uniform, and ``data.strict`` fails on it."""
    text = f"{where}: annotated as {declared[0]}x{declared[1]}, image is {shown[0]}x{shown[1]}; boxes kept as annotated"
    sx, sy = declared[0] / shown[0], declared[1] / shown[1]
    if abs(sx - sy) <= 0.01 * max(sx, sy):  # the same scale both ways: most likely a resized image
        text += f" (if the image was resized after annotation they are {sx:.3g}x its size: fix the annotations)"
    return text


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
            problems.add("box_degenerate", _located(b, [x, y, w, h], info, where, sized=False))
            continue
        x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + w, W), min(y + h, H)
        if x1 <= x0 or y1 <= y0:
            problems.add("box_outside", _located(b, [round(v, 2) for v in (x, y, w, h)], info, where))
            continue
        if max(-x, -y, x + w - W, y + h - H) > CLIP_TOLERANCE:
            problems.add("box_clipped", _located(b, [round(v, 2) for v in (x, y, w, h)], info, where))
        kept = (x1 - x0) * (y1 - y0)
        area = b.area if b.area is None or kept >= w * h else b.area * kept / (w * h)  # the part inside
        out.append(Annotation(b.category_id, (x0, y0, x1 - x0, y1 - y0), b.iscrowd, area))
    return out


def _located(box: SourceBox, pixels: list[float], info: ImageInfo, where: str, sized: bool = True) -> str:
    """A box problem's example: the row it came from when the source names one (then the image), else the
    image; ``pixels`` is the box in the displayed image (and ``sized``: with the image's size)."""
    size = f" in {info.width}x{info.height}" if sized else ""
    if isinstance(box, RowBox) and box.row:
        return f"{box.row}: {pixels} px{size} (image {where})"
    return f"{where}: {pixels}{size}"


@dataclass(frozen=True)
class Pending:
    """An image placed with its boxes held back until the dataset's frame is known."""

    record: ImageRecord
    image: SourceImage
    info: ImageInfo
    where: str


@dataclass
class Frames:
    """What the whole dataset shows about its boxes' frame, and the ambiguous images waiting for it."""

    evidence: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)

    def add(self, frame: Frame, where: str, pending: Pending | None) -> None:
        """Count one placed image's evidence; keep it for :meth:`settle` when ambiguous."""
        if frame.evidence is not None:
            self.evidence[frame.evidence] += 1
            self.examples.setdefault(frame.evidence, where)
        if pending is not None:
            self.pending.append(pending)

    def decision(self) -> tuple[bool, str]:
        """Whether the ambiguous images' boxes were drawn on the stored pixels, and why."""
        stored, displayed = self.evidence[STORED], self.evidence[DISPLAYED]
        if stored and not displayed:
            return True, (
                f"boxes taken as drawn on the stored pixels and turned with the image, as the {stored} "
                f"image(s) of this dataset whose declared size tells were (e.g. {self.examples[STORED]})"
            )
        if displayed and not stored:
            return False, (
                f"boxes taken as drawn on the displayed image, as the {displayed} image(s) of this dataset "
                f"whose declared size tells were (e.g. {self.examples[DISPLAYED]})"
            )
        why = f"{stored} image(s) tell stored, {displayed} displayed" if stored else "no image tells"
        return False, f"boxes taken as drawn on the displayed image (COCO tools' convention; {why}): check them"

    def settle(self, problems: Problems) -> None:
        """Resolve the held-back boxes of every ambiguous image; each one is an ``orientation_ambiguous``."""
        if not self.pending:
            return
        use_stored, why = self.decision()
        for p in self.pending:
            image, info = p.image, p.info
            size = "no declared size" if image.width is None else f"declared {image.width}x{image.height} fits both"
            problems.add("orientation_ambiguous", f"{p.where}: EXIF orientation {info.orientation}, {size}; {why}")
            orientation = info.orientation if use_stored else 1
            p.record.annotations = resolve_boxes(image.boxes, info, orientation, p.where, problems)
        self.pending.clear()
