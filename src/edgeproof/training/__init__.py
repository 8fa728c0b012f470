"""Training and export (the ``train`` extra: torch + ultralytics). Never imported by the edge core."""

from __future__ import annotations
