"""Pick the release variant per device profile from measured evidence.

Measured here (the profile's providers run on this machine): the fastest variant by end-to-end FPS
(its best benchmark round: other load on a shared machine only slows rounds down) among those that
were evaluated with an agreeing cross-check, kept parity with the PyTorch model (judged, not merely
unjudged: :func:`edgeproof.profiles.parity_problem`), stay within the profile's accuracy budget
(mAP50-95 drop against fp32) and pass the profile's gate. Not measurable here (TensorRT/CUDA
profiles on a CPU build machine): the profile's explicit ``variant``, else
``release.unmeasured_variant`` (fp32: TensorRT builds FP16 itself from the fp32 file with
``trt_fp16_enable``), unless that variant broke parity or was measured and not judged.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from edgeproof.evaluation.params import CrossCheckParams
from edgeproof.gate import check_gate, cross_check_problems
from edgeproof.profiles import INT8_VARIANTS, REFERENCE, DeviceGate, Profile, check_build_profile, parity_problem
from edgeproof.release.params import ReleaseParams
from edgeproof.verdict.rules import INCONCLUSIVE

_SHARE = "parity_matched_share"
_GATE_FAILS = "fails the profile gate: "
_GATE_UNSURE = "is inconclusive at the profile gate: "


def map_drop(reference: float, variant: float) -> float:
    """The mAP50-95 drop the budget ``max_map_drop`` judges: to the 6 decimals the mAPs have (fewer let a drop
    just over the budget round onto it), where the release stage records it and the gate re-takes it."""
    return round(reference - variant, 6)


def _rejection(
    name: str,
    v: Mapping[str, Any],
    profile: Profile,
    gate: DeviceGate,
    cross_check: CrossCheckParams | None = None,
    profile_name: str | None = None,
) -> str | None:
    """Why variant ``v`` cannot be released on ``profile`` (``None``: it can); ``cross_check``: params'
    ``evaluate.cross_check``, the tolerances the build gate judges the evaluation by."""
    if not v.get("evaluated"):
        return v.get("reason") or "not evaluated here"
    problems = cross_check_problems(v["eval"], cross_check)  # by params' tolerances, as the gate judges it
    if problems:
        return f"its evaluation is not trustworthy: {'; '.join(problems)}"
    budget = _budget_problem(name, v, profile)
    if budget is not None:
        return budget
    verdict = check_gate(gate, v["eval"], v["bench"], v["sha256"], cross_check=cross_check, profile=profile_name)
    if verdict["passed"]:
        return None
    unsure = verdict.get("verdict") == INCONCLUSIVE  # e.g. no second scorer ran: no threshold was missed
    return f"{_GATE_UNSURE if unsure else _GATE_FAILS}{', '.join(verdict['failed'])}"


def _budget_problem(name: str, v: Mapping[str, Any], profile: Profile) -> str | None:
    """Why variant ``v`` (its parity record and ``map_drop``) is outside what ``profile`` may release."""
    parity = parity_problem(name, dict(v))
    if parity is not None:
        return f"{parity}: {v.get('parity_reason') or f'matched_share {v.get(_SHARE)}'}"
    drop = v.get("map_drop")
    if drop is None or drop > profile.max_map_drop:
        return f"mAP50-95 drop {drop} exceeds the budget max_map_drop {profile.max_map_drop}"
    return None


def release_problem(name: str, v: Mapping[str, Any], profile: Profile, profile_name: str) -> str | None:
    """Why :func:`choose_measured` could not have released variant ``name`` on ``profile`` given ``v`` (its
    parity record and ``map_drop``), else ``None``: what the build gate re-checks from the primary files, so an
    edited ``release.json`` choice ships nothing the release stage turned down. A fixed ``variant`` must be
    that variant and keep parity; under ``auto`` a variant keeps parity and the mAP budget, except
    :data:`REFERENCE`, which the release stage sends to the gate when no variant does."""
    if profile.variant != "auto":
        if name != profile.variant:
            return f"profiles.{profile_name}.variant fixes {profile.variant}, not {name}"
        unusable = parity_problem(name, dict(v))
        return None if unusable is None else f"{unusable}: {v.get('parity_reason') or 'no reason recorded'}"
    return None if name == REFERENCE else _budget_problem(name, v, profile)


def _speed(v: Mapping[str, Any]) -> float:
    """End-to-end FPS of the variant's least disturbed benchmark round (its median round without rounds)."""
    return float(v.get("fps_e2e_best_round") or v["fps_e2e"])


def _unusable(name: str, variants: Mapping[str, Any]) -> str | None:
    """Why variant ``name`` can never be released whatever a profile says (``None``: it can)."""
    if name not in variants:
        return "not built"
    return parity_problem(name, variants[name])


def _entry(name: str, variants: Mapping[str, Any], measured: bool, reason: str, rejected: list[Any]) -> dict[str, Any]:
    v = variants[name]
    return {
        "variant": name,
        "path": v["path"],
        "sha256": v["sha256"],
        "measured_here": measured,
        "reason": reason,
        "rejected": rejected,
    }


def choose_measured(
    profile_name: str, profile: Profile, variants: Mapping[str, Any], cross_check: CrossCheckParams | None = None
) -> dict[str, Any]:
    """The fastest acceptable variant for a profile measured on this machine."""
    if profile.variant != "auto":
        unusable = _unusable(profile.variant, variants)
        if unusable is not None:  # an explicit choice is never swapped silently, nor shipped when unusable
            why = (variants.get(profile.variant) or {}).get("parity_reason")
            raise ValueError(
                f"profiles.{profile_name}.variant: fixed to {profile.variant}: {unusable}"
                f"{'' if why is None else f' ({why})'}; no release for this "
                "profile: set it to auto or to a built variant that keeps parity"
            )
        why = f"fixed by profiles.{profile_name}.variant"
        return _entry(profile.variant, variants, True, why, [])
    rejected, ok, gate_only = [], [], []
    for name, v in variants.items():
        why = _rejection(name, v, profile, profile.gate, cross_check, profile_name)
        if why is None:
            ok.append(name)
        else:
            rejected.append({"variant": name, "reason": why})
            if why.startswith((_GATE_FAILS, _GATE_UNSURE)):
                gate_only.append(name)
    if not ok and gate_only:
        # the candidate stays what would ship; the gate then says why it cannot (a threshold alone never
        # swaps the judged file, so a what-if experiment's failed verdict lands on the same model)
        best = max(gate_only, key=lambda n: _speed(variants[n]))
        reason = f"no variant passes the gate; the fastest otherwise acceptable one ({best}) goes to the gate"
        return _entry(best, variants, True, reason, rejected)
    if not ok:
        reason = f"no variant passes ({len(rejected)} rejected); the {REFERENCE} reference goes to the gate"
        return _entry(REFERENCE, variants, True, reason, rejected)
    best = max(ok, key=lambda n: _speed(variants[n]))
    for name in ok:
        if name != best:
            slower = f"slower: {_speed(variants[name])} FPS end to end vs {_speed(variants[best])} ({best})"
            rejected.append({"variant": name, "reason": slower})
    reason = f"fastest within the {profile.max_map_drop} mAP50-95 budget that keeps parity and passes the gate"
    return _entry(best, variants, True, reason, rejected)


def choose_unmeasured(
    profile_name: str, profile: Profile, variants: Mapping[str, Any], params: ReleaseParams, missing: list[str]
) -> dict[str, Any]:
    """The documented rule for a profile whose providers are not available on this machine."""
    here = f"providers {missing} are not available here, so nothing is measured for this profile"
    if profile.variant != "auto":
        name, why = profile.variant, f"fixed by profiles.{profile_name}.variant"
    else:
        name = params.unmeasured_variant
        trt = [p for p in profile.providers if p.name == "TensorrtExecutionProvider"]
        if name == REFERENCE and trt and trt[0].options.get("trt_fp16_enable"):
            why = "TensorRT builds its FP16 engine itself from the fp32 file (trt_fp16_enable)"
        else:
            why = f"release.unmeasured_variant is {name}"
    rejected = []
    if name in INT8_VARIANTS and not profile.int8_capable:
        rejected.append({"variant": name, "reason": f"{profile.match.jetson_model}: no INT8 on its GPU"})
        name, why = REFERENCE, f"{why}; {name} is INT8, falling back to {REFERENCE}"
    elif (unusable := _unusable(name, variants)) is not None:
        rejected.append({"variant": name, "reason": unusable})
        name, why = REFERENCE, f"{why}; {name} unusable, falling back to {REFERENCE}"
    return _entry(name, variants, False, f"{why}; {here}; the device evaluates it on arrival", rejected)


def choose(
    profiles: Mapping[str, Profile],
    variants: Mapping[str, Any],
    params: ReleaseParams,
    available_providers: Collection[str],
    cross_check: CrossCheckParams | None = None,
) -> dict[str, Any]:
    """The ``profiles`` and ``release_variant`` parts of ``reports/release.json`` (``cross_check``: params'
    ``evaluate.cross_check``, as the build gate applies it)."""
    check_build_profile(params.build_profile, profiles)
    if REFERENCE not in variants:
        raise ValueError(f"the {REFERENCE} reference variant was not built")
    chosen = {}
    for name, profile in profiles.items():
        missing = [p for p in profile.provider_names if p not in available_providers]
        if missing:
            chosen[name] = choose_unmeasured(name, profile, variants, params, missing)
        else:
            chosen[name] = choose_measured(name, profile, variants, cross_check)
    if not chosen[params.build_profile]["measured_here"]:
        raise ValueError(f"release.build_profile {params.build_profile!r}: its providers are not available here")
    return {
        "build_profile": params.build_profile,
        "release_variant": chosen[params.build_profile]["variant"],
        "profiles": chosen,
    }
