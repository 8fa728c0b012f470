"""The params.yaml schema and its strict loader.

``params.yaml`` is the one source of settings. Each top-level section belongs to the DVC stage of
the same name (``deploy``, ``profiles`` and ``track`` are read by several). The home rule: **each
package owns its section** (``data/params.py``, ``training/params.py``, ``runtime/deploy.py``,
``evaluation/params.py`` (evaluate, plots), ``benchmark.py``, ``profiles.py`` (profiles, with every
release rule: the build gate judges ``profiles.<release.build_profile>.gate``, which must exist), ``bundle.py``,
``tracking/params.py``) and this module only assembles them and loads the file. Library code
imports its own section's type, never this module; only stages and the CLI import it.

Loading fails on an unknown key, a wrong type or an out-of-range value, and the message names the
file and the dotted key (``params.yaml: train.epochs: ...``), in the spirit of ultralytics' ``cfg``
checks.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, InstanceOf, ValidationError, model_validator

from edgeproof.benchmark import BenchmarkParams
from edgeproof.bundle import BundleParams
from edgeproof.data.params import SHAPES, DataParams, SyntheticParams
from edgeproof.device.profile_source import board_reading_differs
from edgeproof.evaluation.params import EvaluateParams, PlotsParams
from edgeproof.params_file import ParamsError, read_params_yaml
from edgeproof.profiles import Profile, check_build_profile, check_profile_names, check_variant, parse_profiles
from edgeproof.release.params import ReleaseParams
from edgeproof.runtime.deploy import DeploySettings
from edgeproof.schema import Section as _Section
from edgeproof.settings import SettingsError
from edgeproof.tracking.params import TrackParams
from edgeproof.training.params import ExportParams, OptimizeParams, TrainParams

__all__ = [
    "SHAPES",
    "BenchmarkParams",
    "BundleParams",
    "DataParams",
    "DeploySettings",
    "EvaluateParams",
    "ExportParams",
    "OptimizeParams",
    "Params",
    "ParamsError",
    "PlotsParams",
    "Profile",
    "ReleaseParams",
    "SyntheticParams",
    "TrackParams",
    "TrainParams",
    "load_params",
    "parse_params",
]


# The device side's sections are plain dataclasses with their own strict parser (no pydantic on a
# Jetson); here they are embedded as they are, so each has exactly one definition.
DeploySection = Annotated[InstanceOf[DeploySettings], BeforeValidator(DeploySettings.parse)]
ProfilesSection = Annotated[dict[str, InstanceOf[Profile]], BeforeValidator(parse_profiles)]


class Params(_Section):
    """All of params.yaml."""

    data: DataParams = Field(default_factory=DataParams)
    deploy: DeploySection = Field(default_factory=DeploySettings)
    # without a profiles section, one default profile under release.build_profile's default name
    profiles: ProfilesSection = Field(default_factory=lambda: {ReleaseParams().build_profile: Profile()})
    train: TrainParams = Field(default_factory=TrainParams)
    export: ExportParams = Field(default_factory=ExportParams)
    optimize: OptimizeParams = Field(default_factory=OptimizeParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    plots: PlotsParams = Field(default_factory=PlotsParams)
    benchmark: BenchmarkParams = Field(default_factory=BenchmarkParams)
    release: ReleaseParams = Field(default_factory=ReleaseParams)
    track: TrackParams = Field(default_factory=TrackParams)
    bundle: BundleParams = Field(default_factory=BundleParams)

    @model_validator(mode="after")
    def _sections_agree(self) -> Params:
        """Checks across sections, caught by ``edgeproof params`` rather than by a stage after training."""
        # always: an explicit ``profiles: {}`` (or a typo in build_profile) would only fail at the release
        check_build_profile(self.release.build_profile, self.profiles)
        check_profile_names(self.profiles, (self.track.champion_alias, self.track.candidate_alias))
        for name, profile in self.profiles.items():
            if profile.variant != "auto" and profile.variant not in self.optimize.variants:
                raise ValueError(
                    f"profiles.{name}.variant: {profile.variant} is not built (optimize.variants: "
                    f"{', '.join(self.optimize.variants)}); add it there or use auto"
                )
            if profile.variant == "auto" and profile.int8_capable:
                # an auto profile not measured here gets release.unmeasured_variant (release/choose.py); int8 on
                # TensorRT is refused as a fixed variant is. A GPU without INT8 falls back to fp32 there instead
                try:
                    check_variant(profile, self.release.unmeasured_variant, "release.unmeasured_variant")
                except SettingsError as exc:
                    raise SettingsError(f"{exc} (profiles.{name} is auto and would get it)") from None
            cap = self.bundle.max_val_images
            if profile.evaluate_on_device and cap is not None and cap < profile.gate.min_val_images:
                # the board scores the bundle's val: under the minimum every on-device accuracy rule is inconclusive,
                # found out only after the board ran
                raise ValueError(
                    f"bundle.max_val_images: {cap} is under profiles.{name}.gate.min_val_images "
                    f"{profile.gate.min_val_images}; the board would score too few val images to judge mAP"
                )
        if self.evaluate.conf > self.deploy.conf:
            # evaluate keeps the detections down to evaluate.conf and counts the operating point at
            # deploy.conf: above it, the operating-point figures would be computed at evaluate.conf
            raise ValueError(
                f"evaluate.conf: {self.evaluate.conf} is above deploy.conf {self.deploy.conf}; the operating "
                "point (judged at deploy.conf) would be computed on fewer detections: keep evaluate.conf <= deploy.conf"
            )
        return self


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


# pydantic names the branch of a union in the error location (``streams.constrained-int``): not a key
_UNION_BRANCH = re.compile(r"^(?:constrained-\w+|int|float|str|bool|none|.*\[.*\])$")
_KEY_FIRST = re.compile(r"^[\w-]+(?:\.[\w-]+)+: ")  # a message that starts with the dotted key it is about


# keys older params.yaml files have, and where they went: a team that upgrades gets the new home, not only
# "unknown key" (the same names under the new section unless said)
MOVED_KEYS = {
    "gate": "moved to profiles.<release.build_profile>.gate (the build profile's gate; same key names)",
    "evaluate.operating_point.conf": "moved to deploy.conf (the one operating point)",
    "evaluate.operating_point.iou": "moved to deploy.iou (the one operating point)",
    "benchmark.conf": "moved to deploy.conf (the one operating point)",
    "benchmark.iou": "moved to deploy.iou (the one operating point)",
    "evaluate.plots": "moved to the plots section (top level)",
}


def _unknown_key(loc: tuple[Any, ...]) -> str:
    """The message for a key no section has: where it moved, else the closest allowed key, and the allowed."""
    moved = MOVED_KEYS.get(".".join(str(p) for p in loc))
    if moved is not None:
        return f"unknown key: {moved}"
    close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (allowed: {', '.join(_known_keys(loc))})"


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _UNION_BRANCH.match(p)))
        key = ".".join(str(p) for p in loc) or "<root>"
        msg = err["msg"].removeprefix("Value error, ")
        named = msg.startswith((f"{key}.", f"{key}:")) or (not loc and _KEY_FIRST.match(msg))
        if named:  # a settings dataclass (or a check across sections) named the key itself
            key, msg = msg.split(": ", 1)
        if err["type"] == "extra_forbidden":
            msg = _unknown_key(loc)
        show_input = err["type"] not in ("extra_forbidden", "missing", "value_error")
        got = f" (got {err.get('input')!r})" if show_input else ""
        lines.append(f"{source}: {key}: {msg}{got}")
    return "\n".join(lines)


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping; raise ``ParamsError`` naming every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format_errors(source, exc)) from None


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read (as DVC does: :func:`read_params_yaml`) and validate ``params.yaml``; its ``profiles`` must
    also read the same with the board's reader (PyYAML: the Jetson job measures with this file's profiles)."""
    params = parse_params(read_params_yaml(path), source=str(Path(path)))
    differs = board_reading_differs(Path(path), params.profiles)
    if differs is not None:
        raise ParamsError(differs)
    return params
