"""The ``track`` section of params.yaml (owned by the tracking package)."""

from __future__ import annotations

from pydantic import Field

from edgeproof.schema import Section as _Section


class TrackParams(_Section):
    """MLflow projection of the pipeline's files. The URI comes from ``MLFLOW_TRACKING_URI``."""

    enabled: bool = True
    experiment: str = Field("edgeproof", min_length=1)
    log_model: bool = True
    register_model: bool = True
    model_name: str = Field("edgeproof-detector", min_length=1)
