"""Datasets: the canonical on-disk form every later stage reads, and the sources that produce it."""

from __future__ import annotations
