"""MLflow as a faithful, replayable projection of the pipeline's files.

The files on disk (params.yaml, metrics/*.json, reports/gate.json, dvc.lock, the ONNX model) are
the source of truth. A pipeline run is first snapshotted into an outbox under the state directory,
then flushed to MLflow; if the tracking server is down the snapshot stays and
``edgeproof track replay`` sends it later. Each record carries a content id, so replaying never
creates duplicates.
"""

from __future__ import annotations
