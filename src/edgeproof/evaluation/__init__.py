"""Scoring the deployed ONNX artifact against COCO ground truth. Imports no torch, no ultralytics."""

from __future__ import annotations
