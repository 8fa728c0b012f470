"""Training and export (the ``train`` extra: torch + ultralytics). Never imported by the edge core,
except ``training.params`` (the train/export/optimize params sections: pydantic only, no torch)."""

from __future__ import annotations
