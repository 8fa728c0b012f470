"""MLflow as a faithful, replayable projection of the pipeline's files.

The files on disk (params.yaml, metrics/*.json, reports/gate.json, dvc.lock, the ONNX model) are
the source of truth. A pipeline run is first snapshotted into an outbox under the state directory,
then flushed to MLflow; if the tracking server is down the snapshot stays and
``edgeproof track replay`` sends it later. Each record carries a content id, so replaying never
creates duplicates; a record counts as sent only once its MLflow run is FINISHED (params, metrics,
artifacts and registration all in), and leaves the outbox only then. The record also stores the
experiment and registered model it was made for, so a later replay sends it there.
"""

from __future__ import annotations
