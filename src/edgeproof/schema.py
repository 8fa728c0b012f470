"""The strict base of every params section: unknown keys, wrong types and out-of-range values fail.

One rule for every section: floats must be finite (``.inf`` would disable ``gate.max_latency_p95_ms``;
NaN compares false to everything) and ints must fit in 64 bits (what numpy, torch and ONNX Runtime
take), at any depth (lists, mappings, the providers' free-form options). The device side's dataclass
settings (:mod:`edgeproof.settings`, where :func:`out_of_range` lives) apply the same rule without
pydantic. A finite value can still make a rule lenient on purpose (``min_fps: 0``); fields whose rule a
large finite value would switch off without saying so carry a physical upper bound where they are defined.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator

from edgeproof.settings import INT_MAX, INT_MIN, out_of_range

__all__ = ["INT_MAX", "INT_MIN", "Section", "TorchDevice", "out_of_range"]

_TORCH_DEVICE = re.compile(r"^(cpu|mps|\d+(,\d+)*)$")


def _device_from_int(value: Any) -> Any:
    # YAML and `dvc exp run -S train.device=0` give an int for a single GPU index
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _torch_device(value: str) -> str:
    if not _TORCH_DEVICE.match(value):
        raise ValueError(f"expected 'cpu', 'mps', a GPU index '0' or a list '0,1', got {value!r}")
    return value


# A torch/ultralytics device setting (train.device, evaluate.cross_check.ultralytics_device): one check
TorchDevice = Annotated[str, BeforeValidator(_device_from_int), AfterValidator(_torch_device)]


class Section(BaseModel):
    """A params.yaml section: strict types, no unknown keys, finite and 64-bit numbers, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite_and_bounded(cls, value: Any) -> Any:
        if (why := out_of_range(value)) is not None:
            raise ValueError(why)
        return value
