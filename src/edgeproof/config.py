"""The params.yaml schema and its strict loader.

``params.yaml`` is the one source of settings. Each top-level section belongs to the DVC stage of
the same name. Loading fails on an unknown key, a wrong type or an out-of-range value, and the
message names the file and the dotted key (``params.yaml: train.epochs: ...``), in the spirit of
ultralytics' ``cfg`` checks.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, Field, InstanceOf, ValidationError, field_validator

from edgeproof.data.params import SHAPES, DataParams, SyntheticParams
from edgeproof.device.profiles import Profile, parse_profiles
from edgeproof.evaluation.params import EvaluateParams
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.schema import Section as _Section

__all__ = [
    "SHAPES",
    "BenchmarkParams",
    "DataParams",
    "DeploySettings",
    "EvaluateParams",
    "ExportParams",
    "GateParams",
    "OptimizeParams",
    "Params",
    "ParamsError",
    "Profile",
    "SyntheticParams",
    "TrackParams",
    "TrainParams",
    "load_params",
    "parse_params",
]

ORT_LEVELS = ("disable", "basic", "extended", "all")


class _YamlLoader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where ``1e-3`` is a string; DVC (YAML 1.2) reads it as a float.
    Read params.yaml the way DVC does, so ``lr0: 1e-3`` means the same to both."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and key."""


_DEVICE_RE = re.compile(r"^(cpu|mps|\d+(,\d+)*)$")


class TrainParams(_Section):
    """ultralytics YOLO training. ``model`` is a model yaml (from scratch) or a local ``.pt`` file."""

    model: str = "yolov5n.yaml"
    epochs: int = Field(35, ge=1, le=10_000)
    imgsz: int = Field(256, ge=32, le=2048)
    batch: int = Field(16, ge=1, le=4096)
    seed: int = Field(0, ge=0)
    deterministic: bool = True
    device: str = "cpu"
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

    @field_validator("device", mode="before")
    @classmethod
    def _device_from_int(cls, value: Any) -> Any:
        # YAML and `dvc exp run -S train.device=0` give an int for a single GPU index
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE_RE.match(value):
            raise ValueError(f"expected 'cpu', 'mps', a GPU index '0' or a list '0,1', got {value!r}")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.endswith((".yaml", ".yml", ".pt")):
            raise ValueError(f"expected a model .yaml (train from scratch) or a local .pt file, got {value!r}")
        return value


class ExportParams(_Section):
    """ONNX export of the trained model (input size comes from ``train.imgsz``)."""

    opset: int = Field(17, ge=11, le=22)
    dynamic_batch: bool = True


class OptimizeParams(_Section):
    """onnxsim + ONNX Runtime offline graph optimization of the exported model."""

    simplify: bool = True
    # "basic" only applies provider-independent rewrites, so the artifact stays valid for the
    # TensorRT/CUDA providers on a Jetson; "extended"/"all" bake in CPU-specific fused/NCHWc ops.
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "basic"


class BenchmarkParams(_Section):
    """Latency/FPS measurement with ONNX Runtime on the machine the stage runs on."""

    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    intra_op_threads: int = Field(0, ge=0, le=1024)
    batch: int = Field(1, ge=1, le=256)
    warmup: int = Field(10, ge=0, le=10_000)
    runs: int = Field(100, ge=1, le=1_000_000)
    e2e_images: int = Field(50, ge=1, le=100_000)
    conf: float = Field(0.25, ge=0.0, lt=1.0)
    iou: float = Field(0.7, gt=0.0, le=1.0)


class GateParams(_Section):
    """Release rules. A model ships only if every rule holds for the exact artifact measured."""

    min_fps: float = Field(10.0, ge=0.0)
    min_map50: float = Field(0.8, ge=0.0, le=1.0)
    min_map50_95: float | None = Field(None, ge=0.0, le=1.0)
    max_latency_p95_ms: float = Field(100.0, gt=0.0)


class TrackParams(_Section):
    """MLflow projection of the pipeline's files. The URI comes from ``MLFLOW_TRACKING_URI``."""

    enabled: bool = True
    experiment: str = Field("edgeproof", min_length=1)
    log_model: bool = True
    register_model: bool = True
    model_name: str = Field("edgeproof-detector", min_length=1)


# The device side's sections are plain dataclasses with their own strict parser (no pydantic on a
# Jetson); here they are embedded as they are, so each has exactly one definition.
DeploySection = Annotated[InstanceOf[DeploySettings], BeforeValidator(DeploySettings.parse)]
ProfilesSection = Annotated[dict[str, InstanceOf[Profile]], BeforeValidator(parse_profiles)]


class Params(_Section):
    """All of params.yaml."""

    data: DataParams = Field(default_factory=DataParams)
    deploy: DeploySection = Field(default_factory=DeploySettings)
    profiles: ProfilesSection = Field(default_factory=dict)
    train: TrainParams = Field(default_factory=TrainParams)
    export: ExportParams = Field(default_factory=ExportParams)
    optimize: OptimizeParams = Field(default_factory=OptimizeParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    benchmark: BenchmarkParams = Field(default_factory=BenchmarkParams)
    gate: GateParams = Field(default_factory=GateParams)
    track: TrackParams = Field(default_factory=TrackParams)


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "<root>"
        msg = err["msg"].removeprefix("Value error, ")
        if msg.startswith(f"{key}.") or msg.startswith(f"{key}:"):  # a settings dataclass named the key itself
            key, msg = msg.split(": ", 1)
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"unknown key{hint} (allowed: {', '.join(_known_keys(loc))})"
        show_input = err["type"] not in ("extra_forbidden", "missing", "value_error")
        got = f" (got {err.get('input')!r})" if show_input else ""
        lines.append(f"{source}: {key}: {msg}{got}")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping; raise ``ParamsError`` naming every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format_errors(source, exc)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)  # a SafeLoader subclass
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
    return parse_params(raw, source=str(path))
