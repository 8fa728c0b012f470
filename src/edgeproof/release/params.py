"""The ``release`` section of params.yaml (owned by the release package)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgeproof.schema import Section as _Section


class ReleaseParams(_Section):
    """How the release variant is chosen per profile (budgets and gates live in ``profiles``)."""

    build_profile: str = Field("cpu-ci", min_length=1)  # the profile of this machine; its choice is gated here
    # profiles whose providers are not available here (TensorRT/CUDA) and whose variant is auto get this
    # one: fp32, because TensorRT builds its own FP16 engine from the fp32 file (trt_fp16_enable)
    unmeasured_variant: Literal["fp32", "fp16", "int8", "int8_trt"] = "fp32"
    # benchmark rounds, variants interleaved: the median round is each variant's figures of record,
    # the best round decides which is faster
    bench_rounds: int = Field(5, ge=1, le=50)
