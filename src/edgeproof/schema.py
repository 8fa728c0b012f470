"""The strict base of every params section: unknown keys, wrong types and out-of-range values fail.

One rule for every section: floats must be finite (``.inf`` would disable ``gate.max_latency_p95_ms``;
NaN compares false to everything) and ints must fit in 64 bits (what numpy, torch and ONNX Runtime
take), at any depth (lists, mappings, the providers' free-form options). The device side's dataclass
settings (:mod:`edgeproof.settings`, where :func:`out_of_range` lives) apply the same rule without
pydantic. A finite value can still make a rule lenient on purpose (``min_fps: 0``); fields whose rule a
large finite value would switch off without saying so carry a physical upper bound where they are defined.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from edgeproof.settings import INT_MAX, INT_MIN, out_of_range

__all__ = ["INT_MAX", "INT_MIN", "Section", "out_of_range"]


class Section(BaseModel):
    """A params.yaml section: strict types, no unknown keys, finite and 64-bit numbers, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite_and_bounded(cls, value: Any) -> Any:
        if (why := out_of_range(value)) is not None:
            raise ValueError(why)
        return value
