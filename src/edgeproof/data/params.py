"""The ``data`` section of params.yaml (owned by the data package).

``source`` picks where the dataset comes from: the embedded ``synthetic`` default, or the user's own
``coco``, ``voc`` or ``yolo`` data under ``data/sources/``. Each source has its own sub-section; the
one ``source`` names must be filled in. Paths are relative to the repo root and must stay inside it
(DVC can only track what is in the repo).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from edgeproof.runtime.image import DEFAULT_MAX_PIXELS
from edgeproof.schema import Section as _Section

SHAPES = ("circle", "square", "triangle", "diamond", "cross")
SOURCES = ("synthetic", "coco", "voc", "yolo")


def _repo_relative(value: str) -> str:
    path = PurePosixPath(value.replace("\\", "/"))
    if not value.strip():
        raise ValueError("must not be empty")
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"must be a path inside the repo, relative to its root (e.g. data/sources/...), got {value!r}")
    return value


RepoPath = Annotated[str, AfterValidator(_repo_relative)]


class SyntheticParams(_Section):
    """The embedded default dataset: coloured shapes on noisy backgrounds, generated from a seed."""

    n_train: int = Field(200, ge=1, le=100_000)
    n_val: int = Field(50, ge=1, le=100_000)
    image_size: int = Field(256, ge=32, le=4096)
    classes: list[str] = Field(default_factory=lambda: ["circle", "square", "triangle"], min_length=1)
    max_objects: int = Field(4, ge=1, le=50)
    min_object_frac: float = Field(0.10, gt=0.0, le=1.0)
    max_object_frac: float = Field(0.35, gt=0.0, le=1.0)
    empty_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    jpeg_quality: int = Field(92, ge=50, le=100)

    @field_validator("classes")
    @classmethod
    def _known_shapes(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in SHAPES]
        if unknown:
            raise ValueError(f"unknown shape(s) {unknown}; choose from {list(SHAPES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate class names in {value}")
        return value

    @model_validator(mode="after")
    def _size_order(self) -> SyntheticParams:
        if self.min_object_frac > self.max_object_frac:
            raise ValueError("min_object_frac must be <= max_object_frac")
        return self


class SubsetParams(_Section):
    """What to keep from a user's dataset (shared by every user source)."""

    classes: list[str] | None = Field(None, min_length=1)  # class names to keep; default: all
    keep_negatives: bool = True  # train: keep images without any box of a kept class (background images)
    # val's background images, kept apart from train's: dropping them takes the false positives on them out
    # of the mAP (data.json selection.val_negatives_dropped counts them)
    val_keep_negatives: bool = True
    max_train_images: int | None = Field(None, ge=1)  # seeded cap per split; default: no cap
    max_val_images: int | None = Field(None, ge=1)  # keeps val's share of background images

    required: ClassVar[tuple[str, ...]] = ()

    @field_validator("classes")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"duplicate class names in {value}")
        return value


class CocoParams(SubsetParams):
    """A COCO dataset: an images folder and an ``instances_*.json`` (plus an optional val pair)."""

    images: RepoPath | None = None  # folder the train JSON's file_name entries are relative to
    annotations: RepoPath | None = None  # train instances JSON
    val_annotations: RepoPath | None = None  # optional; without it val is a seeded split of `annotations`
    val_images: RepoPath | None = None  # folder for the val JSON (default: `images`)

    required: ClassVar[tuple[str, ...]] = ("images", "annotations")


class VocParams(SubsetParams):
    """A Pascal VOC dataset: ``<root>/Annotations/*.xml``, ``JPEGImages/``, optional ``ImageSets/Main``."""

    root: RepoPath | None = None
    train_set: str = Field("train", min_length=1)  # ImageSets/Main/<train_set>.txt
    val_set: str = Field("val", min_length=1)  # ImageSets/Main/<val_set>.txt
    difficult: Literal["ignore", "train", "drop"] = "ignore"  # ignore: not trained on, COCO crowd regions in the mAP

    required: ClassVar[tuple[str, ...]] = ("root",)


class YoloParams(SubsetParams):
    """An ultralytics YOLO dataset described by its ``data.yaml``."""

    data_yaml: RepoPath | None = None

    required: ClassVar[tuple[str, ...]] = ("data_yaml",)


class DataParams(_Section):
    """Where the dataset comes from, how it is split and checked, and how images are placed."""

    source: Literal["synthetic", "coco", "voc", "yolo"] = "synthetic"
    seed: int = Field(0, ge=0)
    strict: bool = False  # true: any problem found in the data fails the stage
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # used when the source has no val split of its own
    link: Literal["auto", "hardlink", "copy"] = "auto"  # how unchanged images enter the prepared dataset
    # images whose header declares more pixels are dropped undecoded (image_too_large); only lowers the
    # runtime's fixed limit, so evaluation and the device decode every image the data stage accepts
    max_image_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=100)
    synthetic: SyntheticParams = Field(default_factory=SyntheticParams)
    coco: CocoParams = Field(default_factory=CocoParams)
    voc: VocParams = Field(default_factory=VocParams)
    yolo: YoloParams = Field(default_factory=YoloParams)

    @field_validator("max_image_pixels")
    @classmethod
    def _at_most_the_runtime_limit(cls, value: int) -> int:
        if value > DEFAULT_MAX_PIXELS:
            raise ValueError(
                f"at most {DEFAULT_MAX_PIXELS} (got {value}): evaluation and the device decode no more, so a "
                "larger limit could not be kept; downscale larger photos (and their pixel boxes) instead"
            )
        return value

    @model_validator(mode="after")
    def _source_section(self) -> DataParams:
        if self.source == "synthetic":
            return self
        section: SubsetParams = getattr(self, self.source)
        missing = [k for k in section.required if getattr(section, k) is None]
        if missing:
            keys = ", ".join(f"{self.source}.{k}" for k in missing)
            raise ValueError(f"source is {self.source!r}, so {keys} must be set")
        return self
