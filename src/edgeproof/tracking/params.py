"""The ``track`` section of params.yaml (owned by the tracking package)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from edgeproof.schema import Section as _Section

_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,255}")
_RESERVED_ALIAS = re.compile(r"latest|v\d+")  # MLflow reserves these


class TrackParams(_Section):
    """MLflow projection of the pipeline's files. The URI comes from ``MLFLOW_TRACKING_URI``."""

    enabled: bool = True
    experiment: str = Field("edgeproof", min_length=1)
    log_model: bool = True
    register_model: bool = True
    model_name: str = Field("edgeproof-detector", min_length=1)
    candidate_alias: str = "candidate"
    """Alias moved to a passing model built off a release branch (a pull request, a DVC experiment)."""
    champion_alias: str = "champion"
    """Alias moved to a passing model built from a clean checkout of a release branch: the released one."""
    release_branches: list[str] = Field(default_factory=lambda: ["main"])
    """Branches whose clean, non-experiment runs release (move ``champion_alias``)."""

    @field_validator("candidate_alias", "champion_alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        if not _ALIAS.fullmatch(value) or _RESERVED_ALIAS.fullmatch(value):
            raise ValueError(f"{value!r} is not a usable MLflow alias (letters, digits, _ and -; not latest or v<n>)")
        return value

    @model_validator(mode="after")
    def _aliases_differ(self) -> TrackParams:
        """One alias for both would let a pull request or an experiment move the released model's alias."""
        if self.candidate_alias == self.champion_alias:
            raise ValueError(
                f"track.candidate_alias, track.champion_alias: both are {self.champion_alias!r}; a passing pull "
                "request or experiment would then move the released model's alias: give them different names"
            )
        return self
