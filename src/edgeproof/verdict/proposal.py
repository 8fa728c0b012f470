"""The base branch's rules judge; a pull request's proposed rules are shown, not applied.

``edgeproof device-gate --rules-params base.yaml`` judges with the profiles of the base branch's
``params.yaml`` (validated exactly as the pipeline validates it). What the pull request proposes (its
bundle's ``profiles.json``, or ``--proposed-params pr.yaml``) is compared key by key, and each change
is listed in the report as ``min_fps 30 → 5: judged at 30; takes effect after merge``. A proposal the
base's parser cannot read (a key the base does not know yet) is a note, never the verdict; base rules
that cannot be read are :class:`BaseUnusable` (inconclusive: not the model's fault).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgeproof.io import read_json
from edgeproof.markdown import inline
from edgeproof.profiles import Profile, parse_profiles
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


class BaseUnusable(Exception):
    """The base branch's rules (``--rules-params``) cannot be used: nothing can be said about the model."""


def bundle_profiles(bundle: Path) -> Dict[str, Profile]:
    """The bundle's own ``profiles.json``, strictly parsed (errors name the file and key)."""
    where = str(bundle / "profiles.json")
    return parse_profiles(read_json(bundle / "profiles.json"), where=where)


def read_base(read: Any, rules_params: Path) -> Any:
    """``read(rules_params)``; an unreadable base params file is :class:`BaseUnusable` (inconclusive), not the
    pull request's failure."""
    try:
        return read(rules_params)
    except (OSError, ValueError) as exc:  # ParamsError: the file and key named
        raise BaseUnusable("the base's rules {} cannot be used: {}".format(rules_params, exc)) from None


def _proposed(bundle: Path, proposed_params: Optional[Path], notes: List[str]) -> Optional[Dict]:
    """What the pull request proposes: its params.yaml, else its bundle's profiles.json (``None``: neither
    can be read by the base's parser, e.g. a key the base does not know yet; a note says why)."""
    if proposed_params is not None:
        try:
            return load_profiles(proposed_params)
        except ValueError as exc:  # ParamsError: the file and key named
            notes.append("the pull request's params.yaml is not shown as a proposal: {}".format(exc))
    try:
        return bundle_profiles(bundle)
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # SettingsError, bad JSON: file and key named
        notes.append("the bundle's profiles.json is not shown as a proposal: {}".format(exc))
        return None


def profiles(
    bundle: Path, rules_params: Optional[Path], proposed_params: Optional[Path], notes: List[str]
) -> Tuple[Dict, Optional[Dict]]:
    """(judging profiles, proposed profiles): the base's when given, else the bundle's own.

    The proposal is only shown: one that cannot be read is a note, never the verdict's business.
    """
    if rules_params is None:
        own = bundle_profiles(bundle)
        return own, own
    return read_base(load_profiles, rules_params), _proposed(bundle, proposed_params, notes)


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
