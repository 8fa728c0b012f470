"""The strict base of every params section: unknown keys, wrong types and out-of-range values fail.

One rule for every section, so that no value can switch a release rule off: floats must be finite
(``.inf`` would disable ``gate.max_latency_p95_ms``; NaN compares false to everything) and ints must
fit in 64 bits (what numpy, torch and ONNX Runtime take), at any depth (lists, mappings). The device
side's dataclass settings (:mod:`edgeproof.settings`) apply the same rule without pydantic.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def out_of_range(value: Any) -> str | None:
    """Why ``value`` (or a number inside it) is not a usable setting: non-finite or beyond 64 bits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return f"integer out of range (64-bit), got {value!r}"
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else ()
    for item in items:
        if (why := out_of_range(item)) is not None:
            return why
    return None


class Section(BaseModel):
    """A params.yaml section: strict types, no unknown keys, finite and 64-bit numbers, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite_and_bounded(cls, value: Any) -> Any:
        if (why := out_of_range(value)) is not None:
            raise ValueError(why)
        return value
