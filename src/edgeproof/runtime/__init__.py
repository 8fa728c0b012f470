"""The edge runtime: preprocess -> ONNX Runtime -> decode/NMS. Imports no torch and no ultralytics."""

from __future__ import annotations
