"""The ``train``, ``export`` and ``optimize`` sections of params.yaml (owned by the training package)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from edgeproof.profiles import VARIANTS, Variant
from edgeproof.schema import Section as _Section
from edgeproof.schema import TorchDevice

#: Where a fine-tuning ``.pt`` must live: the train stage depends on this folder (dvc.yaml), so replacing
#: the checkpoint reruns training; a file elsewhere would be read but never tracked as an input.
WEIGHTS_DIR = "weights"

#: How a variant takes its input. ``float_nchw``: the runtime converts the letterboxed pixels to float
#: NCHW in [0, 1] (the form ultralytics and TensorRT 8.2 read). ``uint8_nhwc``: the model takes the
#: letterboxed pixels as they are and the graph converts them, exactly (:mod:`edgeproof.training.graph`).
InputForm = Literal["float_nchw", "uint8_nhwc"]


class TrainParams(_Section):
    """ultralytics YOLO training. ``model`` is a model yaml (from scratch) or a local ``.pt`` file."""

    model: str = "yolov5n.yaml"
    epochs: int = Field(35, ge=1, le=10_000)
    imgsz: int = Field(256, ge=32, le=2048)
    batch: int = Field(16, ge=1, le=4096)
    seed: int = Field(0, ge=0, le=2**32 - 1)  # numpy's seed range (ultralytics seeds numpy)
    deterministic: bool = True
    device: TorchDevice = "cpu"
    workers: int = Field(2, ge=0, le=64)
    optimizer: Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"] = "auto"
    lr0: float = Field(0.01, gt=0.0, le=1.0)
    patience: int = Field(100, ge=0)
    close_mosaic: int = Field(10, ge=0)
    mosaic: float = Field(1.0, ge=0.0, le=1.0)
    cache: bool = False
    amp: bool = True

    @field_validator("imgsz")
    @classmethod
    def _stride_multiple(cls, value: int) -> int:
        if value % 32:
            raise ValueError(f"must be a multiple of 32 (the model stride), got {value}")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.endswith((".yaml", ".yml", ".pt")):
            raise ValueError(f"expected a model .yaml (train from scratch) or a local .pt file, got {value!r}")
        parts = PurePosixPath(value.replace("\\", "/")).parts
        if value.endswith(".pt") and (len(parts) < 2 or parts[0] != WEIGHTS_DIR or ".." in parts):
            raise ValueError(
                f"a .pt file must lie under {WEIGHTS_DIR}/ (relative to the repo root), got {value!r}: the train "
                f"stage depends on {WEIGHTS_DIR}/, so only there does replacing the file rerun training"
            )
        return value


class ExportParams(_Section):
    """ONNX export of the trained model (input size comes from ``train.imgsz``)."""

    opset: int = Field(17, ge=11, le=22)
    dynamic_batch: bool = True


class ParityParams(_Section):
    """Does each variant compute what the trained PyTorch model computes? (fixed sample of val images)"""

    images: int = Field(16, ge=1, le=10_000)  # the first N val images (ground-truth order)
    # raw outputs (box pixels and class probabilities), PyTorch vs ONNX fp32: a larger gap is a bug
    max_abs_diff: float = Field(0.05, gt=0.0, le=1000.0)
    mean_abs_diff: float = Field(0.001, gt=0.0, le=1000.0)
    match_iou: float = Field(0.9, gt=0.0, le=1.0)  # a detection is kept when same class and IoU >= this
    # fewer detections than this on both sides (PyTorch, variant): parity is not judged (passed: null, never
    # released); below 10 a single box moves the share by more than 1 - min_matched_share's default
    min_detections: int = Field(10, ge=1, le=1_000_000)
    # matched / the larger of the two detection counts (boxes lost and boxes added alike); below: the variant
    # breaks parity (not released); at least half: a variant that agrees on fewer than half of the boxes is not
    # the same model, and 0 let any variant keep "parity"
    min_matched_share: float = Field(0.9, ge=0.5, le=1.0)
    # the same share per class, for each class with at least min_class_detections boxes on either side: a rare
    # class lost (or invented) entirely breaks parity even when the pooled share passes. A coarser bound than
    # the pooled one: a class holds few boxes, so each box moves its share by 10 % or more
    min_class_detections: int = Field(3, ge=1, le=1_000_000)
    min_class_share: float = Field(0.5, ge=0.5, le=1.0)


class Int8Params(_Section):
    """Static QDQ INT8 quantization with ONNX Runtime, calibrated on a seeded sample of train images."""

    calibration_images: int = Field(32, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    per_channel: bool = True
    activation_type: Literal["uint8", "int8"] = "uint8"
    weight_type: Literal["int8", "uint8"] = "int8"
    # head_decode: the detection head's decode (DFL, sigmoid, box arithmetic, concat) stays FP32 and its
    # convolutions are quantized; head: the whole detection head stays FP32; none: quantize everything
    exclude_head: Literal["head_decode", "head", "none"] = "head_decode"
    exclude_nodes: list[str] = Field(default_factory=list)  # more node names kept in FP32


class Fp16Params(_Section):
    """FP16 weights/activations for the CUDA/TensorRT providers; inputs and outputs stay float32."""

    keep_io_types: bool = True


class OptimizeParams(_Section):
    """The release candidates built from the exported model, each checked for parity."""

    simplify: bool = True
    # "basic" only applies provider-independent rewrites, so the artifact stays valid for the
    # TensorRT/CUDA providers on a Jetson; "extended"/"all" bake in CPU-specific fused/NCHWc ops.
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "basic"
    variants: list[Variant] = Field(default_factory=lambda: list(VARIANTS))
    # one form for every variant, or a form per variant (the variants not named: float_nchw)
    input: InputForm | dict[Variant, InputForm] = "float_nchw"
    parity: ParityParams = Field(default_factory=ParityParams)
    int8: Int8Params = Field(default_factory=Int8Params)
    fp16: Fp16Params = Field(default_factory=Fp16Params)

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: list[str]) -> list[str]:
        if "fp32" not in value:
            raise ValueError("must include fp32 (the reference every other variant is measured against)")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a variant twice: {value}")
        return value

    @field_validator("input")
    @classmethod
    def _input_of_built_variants(cls, value: str | dict[str, str], info: ValidationInfo) -> str | dict[str, str]:
        unbuilt = sorted(set(value) - set(info.data.get("variants", VARIANTS))) if isinstance(value, dict) else []
        if unbuilt:
            raise ValueError(f"names {unbuilt}, which optimize.variants does not build")
        return value

    def input_form(self, variant: str) -> str:
        """The input form ``variant`` is built with."""
        return self.input if isinstance(self.input, str) else self.input.get(variant, "float_nchw")  # type: ignore[arg-type]
