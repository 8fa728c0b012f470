"""The project's own ONNX Runtime detector: files or arrays in, boxes in original pixels out."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof.runtime.postprocess import Detections, postprocess
from edgeproof.runtime.preprocess import Letterbox, boxes_to_original, letterbox, load_image, to_input
from edgeproof.runtime.session import create_session


@dataclass(frozen=True)
class DetectorConfig:
    """Runtime settings: providers, thresholds and NMS mode."""

    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    graph_optimization: str = "all"
    intra_op_threads: int = 0
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    multi_label: bool = False


def _model_metadata(session: Any) -> dict[str, Any]:
    props = dict(session.get_modelmeta().custom_metadata_map)
    meta: dict[str, Any] = {}
    for key in ("names", "imgsz", "stride"):
        if key in props:
            try:
                meta[key] = ast.literal_eval(props[key])
            except (ValueError, SyntaxError):
                meta[key] = props[key]
    return meta


class Detector:
    """A YOLO detector over an ONNX file. Batch size and input size come from the model itself."""

    def __init__(self, model_path: Path | str, config: DetectorConfig | None = None) -> None:
        self.model_path = Path(model_path)
        self.config = config or DetectorConfig()
        self.session = create_session(
            self.model_path,
            list(self.config.providers),
            self.config.graph_optimization,
            self.config.intra_op_threads,
        )
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.metadata = _model_metadata(self.session)
        self.input_size = self._input_size(inp.shape)
        self.fixed_batch: int | None = inp.shape[0] if isinstance(inp.shape[0], int) else None
        names = self.metadata.get("names", {})
        self.names: dict[int, str] = {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}

    def _input_size(self, shape: Sequence[Any]) -> tuple[int, int]:
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int):
            return h, w
        imgsz = self.metadata.get("imgsz")
        if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2:
            return int(imgsz[0]), int(imgsz[1])
        raise ValueError(f"{self.model_path}: input has dynamic height/width and no 'imgsz' metadata")

    @property
    def providers(self) -> list[str]:
        """The providers the session actually runs on."""
        return list(self.session.get_providers())

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """Letterbox RGB arrays into one input batch, zero-padded up to a static-batch model's size
        (the caller keeps the first ``len(images)`` outputs)."""
        boxed = [letterbox(img, self.input_size) for img in images]
        batch = to_input([b[0] for b in boxed])
        if self.fixed_batch and len(images) < self.fixed_batch:
            pad = np.zeros((self.fixed_batch - len(images), *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, pad])
        return batch, [b[1] for b in boxed]

    def warmup(self, batch: int = 1) -> None:
        """One untimed inference at ``batch`` (ONNX Runtime allocates its buffers on the first run)."""
        h, w = self.input_size
        self.infer(np.zeros((self.fixed_batch or batch, 3, h, w), np.float32))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch; returns the raw ``(B, 4 + nc, anchors)`` output."""
        return self.session.run(None, {self.input_name: batch})[0]

    def postprocess(self, raw: np.ndarray, letterboxes: Sequence[Letterbox]) -> list[Detections]:
        """Decode + NMS each image and map the boxes back to its original pixels."""
        out = []
        cfg = self.config
        if len(raw) != len(letterboxes):
            raise ValueError(f"{len(raw)} model outputs for {len(letterboxes)} images")
        for pred, lb in zip(raw, letterboxes):  # noqa: B905 -- zip(strict=) is 3.10+, the device side runs on 3.8
            det = postprocess(pred, cfg.conf, cfg.iou, cfg.max_det, cfg.multi_label)
            out.append(Detections(boxes_to_original(det.boxes, lb), det.scores, det.classes))
        return out

    def __call__(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in RGB ``(H, W, 3)`` uint8 arrays (any sizes)."""
        results: list[Detections] = []
        step = self.fixed_batch or len(images) or 1
        for start in range(0, len(images), step):
            chunk = list(images[start : start + step])
            batch, lbs = self.preprocess(chunk)
            raw = self.infer(batch)[: len(chunk)]
            results.extend(self.postprocess(raw, lbs))
        return results

    def detect_files(self, paths: Sequence[Path | str]) -> list[Detections]:
        """Load image files (EXIF-aware) and detect."""
        return self([load_image(p) for p in paths])
