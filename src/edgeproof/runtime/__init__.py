"""The edge runtime: preprocess -> ONNX Runtime -> decode/NMS. Imports no torch and no ultralytics.

This is the device-side surface (Python 3.8+, numpy, Pillow, onnxruntime; no pydantic):

* :mod:`.deploy` — :class:`DeploySettings`, the deployment operating point (params section ``deploy``);
* :mod:`.preprocess` — EXIF-aware loading and ultralytics' validation letterbox, with its inverse;
* :mod:`.postprocess` — :class:`Postprocess`, the one decode + NMS path (evaluation and device alike),
  and the one IoU function :func:`box_iou`;
* :mod:`.session` — ONNX Runtime sessions on exactly the requested providers (:class:`SessionSettings`);
* :mod:`.detector` — :class:`Detector`: model bytes read once (hashed, then loaded), files in, boxes out.
"""

from __future__ import annotations
