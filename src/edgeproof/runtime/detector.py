"""The project's own ONNX Runtime detector: files or arrays in, boxes in original pixels out.

The model file is read once: its bytes are hashed (:attr:`Detector.sha256`) and the session is built
from those same bytes, so the digest reported next to a measurement is the digest of the model that
was measured, even if the file is replaced while the measurement runs.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from edgeproof.runtime.onnx_data import WireError, external_data_problem
from edgeproof.runtime.postprocess import Detections, Postprocess
from edgeproof.runtime.preprocess import PAD_VALUE, Letterbox, letterbox, load_image, to_input
from edgeproof.runtime.session import SessionSettings, create_session
from edgeproof.runtime.signature import (
    check_input,
    check_inputs,
    check_output,
    check_scores,
    check_task,
    class_names,
    layout_problem,
)


def _model_metadata(session: Any) -> Dict[str, Any]:
    return parse_metadata(dict(session.get_modelmeta().custom_metadata_map))


def parse_metadata(props: Dict[str, str]) -> Dict[str, Any]:
    """The ultralytics metadata of an ONNX model (``names``, ``imgsz``, ``stride``, ``task``), values parsed."""
    meta: Dict[str, Any] = {}
    for key in ("names", "imgsz", "stride", "task"):
        if key in props:
            try:
                meta[key] = ast.literal_eval(props[key])
            except (ValueError, SyntaxError):
                meta[key] = props[key]
    return meta


def takes_pixels(inp: Any) -> bool:
    """Whether an ONNX Runtime input (``NodeArg``) takes the letterboxed uint8 pixels, ``(N, H, W, 3)``
    (``optimize.input: uint8_nhwc``), rather than float ``(N, 3, H, W)``."""
    return bool(inp.type == "tensor(uint8)")


def spatial_dims(shape: Sequence[Any], nhwc: bool = False) -> List[Any]:
    """The height and width entries of a 4-d image input's shape (``int`` or a symbolic name) in its layout
    (NHWC for a uint8 pixel input, else NCHW); empty for another rank. The one place the layout is read."""
    dims = list(shape)
    if len(dims) != 4:
        return []
    return dims[1:3] if nhwc else dims[2:4]


def input_size(
    shape: Sequence[Any], metadata: Dict[str, Any], where: Union[Path, str], nhwc: bool = False
) -> Tuple[int, int]:
    """The model's input ``(height, width)``: its fixed input dims (:func:`spatial_dims`), else the ``imgsz``
    it was exported at (metadata). The one place the size is read; there is no default: an unknown size is
    an error."""
    dims = spatial_dims(shape, nhwc)
    if len(dims) == 2 and all(isinstance(d, int) and d > 0 for d in dims):
        return int(dims[0]), int(dims[1])
    imgsz = metadata.get("imgsz")
    if isinstance(imgsz, (list, tuple)) and len(imgsz) == 2:
        return int(imgsz[0]), int(imgsz[1])
    raise ValueError(f"{where}: input has dynamic height/width and no 'imgsz' metadata")


def read_input_size(path: Union[Path, str]) -> Tuple[int, int]:
    """:func:`input_size` of an ONNX file (a CPU session without graph optimisation, never run)."""
    session = create_session(read_model(path), ["CPUExecutionProvider"], "disable", name=str(path))
    inp = check_inputs(path, session.get_inputs())
    return input_size(inp.shape, _model_metadata(session), path, nhwc=takes_pixels(inp))


def read_model(path: Union[Path, str]) -> bytes:
    """The model file's bytes (one read: hash and session both come from them).

    A model whose tensors keep their data in another file is refused: the sha256 of these bytes would not
    cover the weights, and a session built from bytes looks for that file in the current folder, not the
    model's, so the same digest could be reported for different weights. (Unparseable bytes are left to
    onnxruntime, whose error names the file.)
    """
    path = Path(path)
    try:
        model = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: model file not found") from None
    try:
        problem = external_data_problem(path, model)
    except WireError:  # not a protobuf: onnxruntime refuses it, naming the file
        return model
    if problem:
        raise ValueError(f"{problem}; save the model as one file (onnx.save(..., save_as_external_data=False))")
    return model


def _stack(pixels: List[np.ndarray]) -> np.ndarray:
    """Letterboxed canvases as one NHWC batch; a single fresh canvas becomes the batch of one without a copy."""
    return pixels[0][None] if len(pixels) == 1 else np.stack(pixels)


class Detector:
    """A YOLO detector over an ONNX file. Batch size and input size come from the model itself.

    ``postprocess`` defaults to the default deployment operating point; ``session`` to the CPU provider.
    ``ort_session``: a session already built from ``model_path`` (the device builds its own, with its
    profile's provider options); then ``session`` is not used.
    """

    def __init__(
        self,
        model_path: Union[Path, str],
        postprocess: Optional[Postprocess] = None,
        session: Optional[SessionSettings] = None,
        ort_session: Any = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.postprocess_settings = postprocess or Postprocess()
        self.session_settings = session or SessionSettings()
        model = read_model(self.model_path)
        self.sha256: str = hashlib.sha256(model).hexdigest()
        s = self.session_settings
        if ort_session is None:
            ort_session = create_session(
                model, list(s.providers), s.graph_optimization, s.intra_op_threads, name=str(self.model_path)
            )
        self.session = ort_session
        inp = check_inputs(self.model_path, self.session.get_inputs())
        self.input_name: str = inp.name
        self.input_dtype = check_input(self.model_path, inp)
        self.nhwc_uint8 = takes_pixels(inp)  # the model takes the letterboxed pixels as they are
        self.metadata = _model_metadata(self.session)
        self.input_size = input_size(inp.shape, self.metadata, self.model_path, nhwc=self.nhwc_uint8)
        self.fixed_batch: Optional[int] = inp.shape[0] if isinstance(inp.shape[0], int) else None
        check_task(self.model_path, self.metadata)
        self.names: Dict[int, str] = class_names(self.model_path, self.metadata)
        self.output_rows = check_output(self.model_path, self.session.get_outputs()[0], len(self.names) or None)
        self._scores_checked = False  # the first run checks what the graph cannot state: scores in [0, 1]

    @property
    def providers(self) -> List[str]:
        """The providers the session actually runs on."""
        return list(self.session.get_providers())

    def preprocess(self, images: Sequence[np.ndarray]) -> Tuple[np.ndarray, List[Letterbox]]:
        """Letterbox RGB arrays into one input batch, zero-padded up to a static-batch model's size
        (the caller keeps the first ``len(images)`` outputs)."""
        boxed = [letterbox(img, self.input_size) for img in images]
        pixels = [b[0] for b in boxed]
        batch = _stack(pixels) if self.nhwc_uint8 else to_input(pixels)
        if self.fixed_batch and len(images) < self.fixed_batch:
            pad = np.zeros((self.fixed_batch - len(images), *batch.shape[1:]), batch.dtype)
            batch = np.concatenate([batch, pad])
        return batch, [b[1] for b in boxed]

    def warmup(self, batch: int = 1) -> None:
        """One untimed run of the whole path at ``batch``: letterbox, inference, decode + NMS, on a grey image
        of half the input size, so the letterbox resizes. Each step's one-off cost falls here, not on the
        first timed frame: ONNX Runtime allocates its buffers on the first run, and the first resize imports
        OpenCV (a one-off cost of tens of milliseconds or more)."""
        h, w = self.input_size
        image = np.full((max(h // 2, 1), max(w // 2, 1), 3), PAD_VALUE, np.uint8)
        self([image] * (self.fixed_batch or batch))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch; returns the raw ``(B, 4 + nc, anchors)`` output
        (checked: a model whose output has another layout is refused, naming the file)."""
        raw = self.session.run(None, {self.input_name: batch.astype(self.input_dtype, copy=False)})[0]
        rows = self.output_rows
        odd = raw.ndim != 3 or raw.shape[0] != len(batch) or (rows and raw.shape[1] != rows)
        problem = layout_problem(raw.shape[1], raw.shape[2], len(self.names) or None) if raw.ndim == 3 else None
        if odd or problem:
            raise ValueError(
                f"{self.model_path}: not a detector: output shape {raw.shape} for a batch of {len(batch)}, "
                f"expected (batch, {rows or '4 + classes'}, anchors)" + (f": {problem}" if problem else "")
            )
        if not self._scores_checked:
            check_scores(self.model_path, raw)
            self._scores_checked = True
        return raw

    def postprocess(self, raw: np.ndarray, letterboxes: Sequence[Letterbox]) -> List[Detections]:
        """Decode + NMS each image and map the boxes back to its original pixels."""
        if len(raw) != len(letterboxes):
            raise ValueError(f"{len(raw)} outputs for {len(letterboxes)} images")
        return [self.postprocess_settings(pred, lb) for pred, lb in zip(raw, letterboxes)]  # noqa: B905 (3.8)

    def __call__(self, images: Sequence[np.ndarray]) -> List[Detections]:
        """Detect objects in RGB ``(H, W, 3)`` uint8 arrays (any sizes)."""
        results: List[Detections] = []
        step = self.fixed_batch or len(images) or 1
        for start in range(0, len(images), step):
            chunk = list(images[start : start + step])
            batch, lbs = self.preprocess(chunk)
            raw = self.infer(batch)[: len(chunk)]
            results.extend(self.postprocess(raw, lbs))
        return results

    def detect_files(self, paths: Sequence[Union[Path, str]]) -> List[Detections]:
        """Load image files (EXIF-aware) and detect."""
        return self([load_image(p) for p in paths])
