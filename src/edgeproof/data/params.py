"""The ``data`` section of params.yaml (owned by the data package)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgeproof.schema import Section as _Section

SHAPES = ("circle", "square", "triangle", "diamond", "cross")


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


class DataParams(_Section):
    """Where the dataset comes from and how it is split."""

    source: Literal["synthetic"] = "synthetic"
    seed: int = Field(0, ge=0)
    synthetic: SyntheticParams = Field(default_factory=SyntheticParams)
