"""The base branch's rules judge; a pull request's proposed rules are shown, not applied.

``edgeproof device-gate --rules-params base.yaml`` judges with the profiles of the base branch's
``params.yaml`` (validated exactly as the pipeline validates it). What the pull request proposes (its
bundle's ``profiles.json``, or ``--proposed-params pr.yaml``) is compared key by key, and each change
is listed in the report as ``min_fps 30 → 5: judged at 30; takes effect after merge``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgeproof.markdown import inline
from edgeproof.profiles import Profile
from edgeproof.settings import as_dict, changed_settings

MISSING = "(absent)"


def load_profiles(path: Path) -> Dict[str, Profile]:
    """The ``profiles`` section of a params file, read as DVC reads it and validated by the same parser as
    the pipeline's (errors name file and key)."""
    from edgeproof.params_file import ParamsError, read_params_yaml
    from edgeproof.profiles import profiles_from_params
    from edgeproof.settings import SettingsError

    try:
        return profiles_from_params(read_params_yaml(path), str(path))
    except SettingsError as exc:
        raise ParamsError(str(exc)) from None


def load_operating_point(path: Path) -> Dict[str, Any]:
    """The base's deployment and mAP-scoring settings (params.yaml ``deploy`` and ``evaluate``'s conf, iou,
    max_det, multi_label) as the bundle's ``deploy.json`` spells them (``deploy``, ``map``): what the
    pull request's model is judged at, like the thresholds (errors name file and key)."""
    import dataclasses

    from edgeproof.params_file import ParamsError, read_params_yaml
    from edgeproof.runtime.deploy import DeploySettings
    from edgeproof.runtime.scoring import ScoringSettings
    from edgeproof.settings import SettingsError

    raw = read_params_yaml(path)
    raw = raw if isinstance(raw, dict) else {}
    evaluate = raw.get("evaluate") if isinstance(raw.get("evaluate"), dict) else {}
    scoring = {f.name: evaluate[f.name] for f in dataclasses.fields(ScoringSettings) if f.name in evaluate}
    try:
        deploy = DeploySettings.parse(raw.get("deploy", {}), where="{}: deploy".format(path))
        return {"deploy": as_dict(deploy), "map": as_dict(ScoringSettings.parse(scoring, "{}: evaluate".format(path)))}
    except SettingsError as exc:
        raise ParamsError(str(exc)) from None


def changes(profile: str, base: Optional[Profile], proposed: Optional[Profile]) -> List[Dict[str, Any]]:
    """Every key of profile ``profile`` that differs between base and proposal, as ``{key, base, proposed}``
    (:func:`~edgeproof.settings.changed_settings`: strictly, so ``1`` to ``true`` is a change)."""
    old = as_dict(base) if base is not None else None
    new = as_dict(proposed) if proposed is not None else None
    return [
        {"key": key, "base": was, "proposed": now}
        for key, was, now in changed_settings(old, new, "profiles.{}".format(profile), MISSING)
    ]


def _shown(value: Any) -> Any:
    """A number as it is; anything else (text, lists, mappings: the PR's) as one inline code span."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return inline(value if isinstance(value, str) else json.dumps(value, default=str))


def describe(change: Dict[str, Any]) -> str:
    """``profiles.x.gate.min_fps 30 → 5: judged at 30; takes effect after merge``."""
    base = _shown(change["base"])
    return "{} {} → {}: judged at {}; takes effect after merge".format(
        change["key"],
        base,
        _shown(change["proposed"]),
        base,  # keys are the parser's own, values the PR's
    )
