"""edgeproof: prove an object detector is fit for an edge device before it ships.

The top-level package is import-light on purpose: nothing here imports torch, ultralytics or
ONNX Runtime, and importing it has no side effects.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
