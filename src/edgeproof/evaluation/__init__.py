"""Scoring the deployed ONNX artifact against COCO ground truth. Imports no torch, no ultralytics.

``evaluate`` (:mod:`.run`): :mod:`.predict` runs the runtime's :class:`~edgeproof.runtime.detector.Detector`
over the val split and decodes every output twice with the runtime's one post-processing (the mAP set,
and the ``deploy`` operating point); :mod:`.coco`/:mod:`.shards` score with pycocotools,
:mod:`.operating` judges the operating point; :mod:`.external` runs faster-coco-eval and ultralytics'
validator and :mod:`.crosscheck` compares their finished results (:mod:`.agreement`: detection-level).
``plots`` (:mod:`.draw`): charts and mosaic from what evaluate wrote (:mod:`.plots`), no inference.
Settings: :mod:`.params` (sections ``evaluate`` and ``plots``).
"""

from __future__ import annotations
