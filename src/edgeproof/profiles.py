"""Device profiles (``params.yaml`` section ``profiles``): a target machine and how to judge it.

A profile says how to recognise the machine, which execution providers (in order) and which model
variant run there, how to measure, and the release rules on that device. Parsed strictly without
pydantic (:mod:`edgeproof.settings`), because the device side reads it on the board itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Collection, Dict, List, Literal, Optional, Tuple, get_args

from edgeproof.runtime.trt_options import trt_option_problem
from edgeproof.settings import SettingsError, bounded, parse_dataclass

# The model variants the pipeline builds (optimize), measures (release, perf) and ships: the one list.
# int8_trt: symmetric S8S8 Q/DQ that TensorRT can build
Variant = Literal["fp32", "fp16", "int8", "int8_trt"]
VARIANTS: Tuple[str, ...] = get_args(Variant)
INT8_VARIANTS = ("int8", "int8_trt")
REFERENCE = "fp32"  # the variant every other is checked against; its raw outputs matched PyTorch's in optimize
# Jetsons whose GPU (Maxwell) has no INT8 throughput: an INT8 variant is never their release
NO_INT8_JETSONS = ("Jetson Nano", "Jetson TX1")
TENSORRT = "TensorrtExecutionProvider"
# ONNX Runtime's execution provider names (onnxruntime.get_all_providers() of 1.11 to 1.2x: a fixed list,
# not what this machine has installed), so that a typo fails when params.yaml is loaded, naming the key
ProviderName = Literal[
    "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "NvTensorRTRTXExecutionProvider",
    "MIGraphXExecutionProvider", "ROCMExecutionProvider", "OpenVINOExecutionProvider", "DnnlExecutionProvider",
    "VitisAIExecutionProvider", "QNNExecutionProvider", "SNPEExecutionProvider", "NnapiExecutionProvider",
    "VSINPUExecutionProvider", "JsExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider",
    "RknpuExecutionProvider", "WebNNExecutionProvider", "WebGpuExecutionProvider", "XnnpackExecutionProvider",
    "CANNExecutionProvider", "AzureExecutionProvider", "ArmNNExecutionProvider", "ACLExecutionProvider",
    "TvmExecutionProvider", "NupharExecutionProvider",
]  # fmt: skip
ORT_PROVIDERS: Tuple[str, ...] = get_args(ProviderName)
TRT_INT8_VARIANT = "int8_trt"  # the Q/DQ form TensorRT builds (symmetric signed int8)
# What a board's figures can physically be at most (the rule engine's BOUNDS, edgeproof.verdict.rules, take
# them from here): a measured figure above one is refused as impossible, so a cap above it could never fail
# and would switch its rule off without saying so (null is how a rule is switched off)
MAX_LATENCY_MS = 3_600_000.0  # an hour per frame: no detector is being judged beyond that
MAX_ENERGY_MJ_PER_FRAME = 1.0e6  # a kJ per frame
MAX_POWER_W = 10_000.0  # 10 kW: no edge board's rail
MAX_MEMORY_MB = 1.0e7  # 10 TB resident
# Not physical but stated: an energy rise cap above 1000 % (11x main's mJ/frame) judges nothing a rule
# should, and a load cap above 64 runnable tasks per CPU admits any machine that can still run the benchmark
MAX_ENERGY_INCREASE_PCT = 1000.0
MAX_LOAD_PER_CPU = 64.0
_L4T = r"[0-9]+(?:\.[0-9]+)*"
_L4T_HELP = "an L4T release as digits and dots (e.g. '32.6', without the R)"


@dataclass(frozen=True)
class MachineMatch:
    """How to recognise the machine; every given criterion must hold."""

    # platform.machine() values, e.g. [x86_64, AMD64] or [aarch64]; an empty list: any ("" matched no machine)
    arch: Tuple[str, ...] = bounded((), pattern=r".+", pattern_help="a platform.machine() value, not empty")
    # substring of /proc/device-tree/model; null: no Jetson required ("" is in every model: refused)
    jetson_model: Optional[str] = bounded(None, min_items=1)
    # lowest / highest L4T release (from /etc/nv_tegra_release), e.g. "32.6" / "32.7.99"; a bound that is not
    # digits and dots compared as () and so matched any board: refused
    l4t_min: Optional[str] = bounded(None, pattern=_L4T, pattern_help=_L4T_HELP)
    l4t_max: Optional[str] = bounded(None, pattern=_L4T, pattern_help=_L4T_HELP)

    def __post_init__(self) -> None:
        low, high = self.l4t_min, self.l4t_max
        if low is not None and high is not None and version_tuple(low) > version_tuple(high):
            raise ValueError(f"l4t_min {self.l4t_min!r} is above l4t_max {self.l4t_max!r}: no board would match")


@dataclass(frozen=True)
class Provider:
    """One ONNX Runtime execution provider and its options (passed to ORT as given; TensorRT's are checked
    against ORT's names and types, :mod:`edgeproof.runtime.trt_options`)."""

    name: str = bounded(min_items=1, choices=ORT_PROVIDERS)
    options: Dict[str, Any] = bounded({})


@dataclass(frozen=True)
class DeviceGate:
    """Release rules on the device (defaults from the field: FPS > 10, mAP50 >= 0.8, p95 <= 100 ms), and the
    val set an mAP must come from to be judged (10 images, 10 boxes of each class in the mean)."""

    min_fps: float = bounded(10.0, ge=0.0)
    min_map50: float = bounded(0.8, ge=0.0, le=1.0)
    min_map50_95: Optional[float] = bounded(None, ge=0.0, le=1.0)
    # the val set the accuracy rules need (edgeproof.verdict.eval_size): below either, an mAP (and its drop) is
    # inconclusive; 1 and 1 ask only that it says what it was measured over
    min_val_images: int = bounded(10, ge=1, le=10_000_000)
    min_val_boxes_per_class: int = bounded(10, ge=1, le=10_000_000)  # the fewest of any class in the mean
    # the frames the timing rules need (edgeproof.verdict.timed_frames): below it, fps and latency_p95 are
    # inconclusive. 20: a p95 needs a frame above it to be more than the slowest frame (1 asks only that
    # bench.json says how many it timed)
    min_timed_frames: int = bounded(20, ge=1, le=1_000_000)
    # at most MAX_LATENCY_MS (1e300 passed anything); the caps below likewise at their physical limits
    max_latency_p95_ms: float = bounded(100.0, gt=0.0, le=MAX_LATENCY_MS)
    # energy and memory on the device (null: not judged); an unmeasurable energy figure is inconclusive
    # gross mJ per end-to-end frame; mean input-rail power over the timed window; VmHWM of the measuring
    # process (+ no leak)
    max_energy_mj_per_frame: Optional[float] = bounded(None, gt=0.0, le=MAX_ENERGY_MJ_PER_FRAME)
    max_power_w: Optional[float] = bounded(None, gt=0.0, le=MAX_POWER_W)
    max_peak_memory_mb: Optional[float] = bounded(None, gt=0.0, le=MAX_MEMORY_MB)


@dataclass(frozen=True)
class Regression:
    """Optional rules against main's last device verdict for the same profile (null: off)."""

    max_fps_drop_pct: Optional[float] = bounded(None, ge=0.0, le=100.0)
    max_map_drop: Optional[float] = bounded(None, ge=0.0, le=1.0)
    # mJ/frame rise vs main's last verdict
    max_energy_increase_pct: Optional[float] = bounded(None, ge=0.0, le=MAX_ENERGY_INCREASE_PCT)


@dataclass(frozen=True)
class Profile:
    """A target device and how to judge a model on it."""

    description: str = ""
    match: MachineMatch = field(default_factory=MachineMatch)
    providers: Tuple[Provider, ...] = bounded((Provider("CPUExecutionProvider"),), min_items=1)
    variant: str = bounded("auto", choices=("auto", *VARIANTS))  # auto: reports/release.json's choice
    # variants the board also measures after the released one, never gated: its figures for the next choice
    candidates: Tuple[str, ...] = bounded((), choices=VARIANTS)
    batch: int = bounded(1, ge=1, le=256)
    batch_sweep: Tuple[int, ...] = bounded((1, 2, 4, 8), ge=1, le=256)
    warmup: int = bounded(10, ge=0, le=100_000)
    runs: int = bounded(100, ge=1, le=1_000_000)
    e2e_images: int = bounded(50, ge=1, le=100_000)  # end-to-end runs: image files, or frames of the clip
    e2e_input: str = bounded("images", choices=("images", "clip"))  # clip: the bundle's recorded video (OpenCV)
    evaluate_on_device: bool = True
    max_map_drop: float = bounded(0.015, ge=0.0, le=1.0)  # accuracy budget vs the build machine's fp32 mAP50-95
    max_temp_c: float = bounded(85.0, gt=0.0, le=150.0)  # hotter during the run: inconclusive
    # clocks below their maximum under load -> inconclusive (true on a Jetson after `jetson_clocks`;
    # false where the OS scales clocks by design, e.g. a laptop or a cloud VM)
    require_max_clocks: bool = False
    # `nvpmodel -q` mode the board must be in (e.g. MAXN); null: any ("" would fail every run: refused)
    power_mode: Optional[str] = bounded(None, min_items=1)
    # 1-minute load average per online CPU before the run above this: other work competed -> inconclusive
    max_load_per_cpu: Optional[float] = bounded(None, gt=0.0, le=MAX_LOAD_PER_CPU)
    gate: DeviceGate = field(default_factory=DeviceGate)
    regression: Regression = field(default_factory=Regression)

    def for_variant(self, variant: str) -> Profile:
        """This profile as it runs ``variant``. TensorRT builds a Q/DQ model's INT8 kernels only in INT8 mode,
        so ``int8_trt`` on TensorRT gets ``trt_int8_enable`` (FP16, when enabled, stays for the layers left in
        float); the variant decides the precision, not a setting that could disagree with it. Anything else:
        this profile unchanged. Raises :class:`SettingsError` for a calibration table next to ``int8_trt``."""
        if variant != TRT_INT8_VARIANT or TENSORRT not in self.provider_names:
            return self
        table = [p for p in self.providers if p.name == TENSORRT and p.options.get("trt_int8_calibration_table_name")]
        if table:
            raise SettingsError(
                f"trt_int8_calibration_table_name with variant {TRT_INT8_VARIANT}: TensorRT refuses a calibration "
                "table for a model with Q/DQ nodes; remove it from the profile's TensorRT options"
            )
        providers = tuple(
            replace(p, options={**p.options, "trt_int8_enable": True}) if p.name == TENSORRT else p
            for p in self.providers
        )
        return replace(self, providers=providers)

    @property
    def provider_names(self) -> Tuple[str, ...]:
        """The execution providers in priority order."""
        return tuple(p.name for p in self.providers)

    @property
    def int8_capable(self) -> bool:
        """False for a Jetson whose GPU has no INT8 throughput (Maxwell: Nano, TX1), from ``match.jetson_model``."""
        model = self.match.jetson_model or ""
        return not any(board in model for board in NO_INT8_JETSONS)


def match_machine(match: MachineMatch, facts: Dict[str, Any]) -> Dict[str, Any]:
    """Check ``facts`` (from :func:`edgeproof.device.sysinfo.machine_facts`) against a profile's ``match``.

    Returns ``{"matched": bool, "checks": [{"name", "expected", "found", "ok"}]}``.
    """
    jetson = facts.get("jetson") or {}
    checks = []
    if match.arch:
        checks.append(("arch", list(match.arch), facts.get("arch"), facts.get("arch") in match.arch))
    if match.jetson_model is not None:
        model = jetson.get("model")
        checks.append(("jetson_model", match.jetson_model, model, bool(model) and match.jetson_model in model))
    l4t = jetson.get("l4t")
    for name, bound, ok_fn in (
        ("l4t_min", match.l4t_min, lambda have, want: have >= want),
        ("l4t_max", match.l4t_max, lambda have, want: have <= want),
    ):
        if bound is not None:
            ok = l4t is not None and ok_fn(version_tuple(l4t), version_tuple(bound))
            checks.append((name, bound, l4t, ok))
    rows = [{"name": n, "expected": e, "found": f, "ok": bool(ok)} for n, e, f, ok in checks]
    return {"matched": all(r["ok"] for r in rows), "checks": rows}


def mismatches(match: Dict[str, Any]) -> List[str]:
    """The failed checks of a :func:`match_machine` result, as ``name: expected X, found Y``."""
    return [
        "{}: expected {!r}, found {!r}".format(c["name"], c["expected"], c["found"])
        for c in match["checks"]
        if not c["ok"]
    ]


def version_tuple(text: str) -> Tuple[int, ...]:
    """``"32.7.1"`` -> ``(32, 7, 1)`` for comparisons (non-numeric parts stop the tuple)."""
    out = []
    for part in text.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def parse_profiles(raw: Any, where: str = "profiles") -> Dict[str, Profile]:
    """Strictly parse the ``profiles`` mapping (name -> profile); errors name ``profiles.<name>.<key>``."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: expected a mapping of profile names, got {type(raw).__name__}")
    out = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise SettingsError(f"{where}: profile names are letters, digits, '-' and '_', got {name!r}")
        out[name] = profile = parse_dataclass(Profile, body, f"{where}.{name}")
        if len(set(profile.candidates)) != len(profile.candidates):
            raise SettingsError(f"{where}.{name}.candidates: lists a variant twice: {list(profile.candidates)}")
        for key, variant in [("variant", profile.variant), *(("candidates", c) for c in profile.candidates)]:
            check_variant(profile, variant, f"{where}.{name}.{key}")
        for i, provider in enumerate(profile.providers):
            key, why = trt_option_problem(provider.options) if provider.name == TENSORRT else ("", "")
            if key:
                raise SettingsError(f"{where}.{name}.providers[{i}].options.{key}: {why}")
        trt = [p for p in profile.providers if p.name == TENSORRT]
        if profile.variant == TRT_INT8_VARIANT and trt and trt[0].options.get("trt_int8_calibration_table_name"):
            raise SettingsError(
                f"{where}.{name}.providers: trt_int8_calibration_table_name with variant {TRT_INT8_VARIANT}: "
                "TensorRT refuses a calibration table for a model with Q/DQ nodes; remove it"
            )
    return out


def profiles_from_params(raw: Any, where: str) -> Dict[str, Profile]:
    """The ``profiles`` section of a parsed params file (``where``: the file), validated; raises
    :class:`SettingsError` naming the file and key. Each reader keeps its own YAML parser (ruamel as DVC
    on the build side, PyYAML on the board) and this one check."""
    if not isinstance(raw, dict) or not isinstance(raw.get("profiles"), dict):
        raise SettingsError(f"{where}: no profiles section (the rules to measure and judge with)")
    return dict(parse_profiles(raw["profiles"], where=f"{where}: profiles"))


def check_build_profile(build_profile: str, profiles: Collection[str]) -> None:
    """``release.build_profile`` must name one of ``profiles``: one check for params validation, the
    build gate and the release choice; the error names the key and the profiles there are."""
    if build_profile not in profiles:
        available = ", ".join(sorted(profiles))
        raise ValueError(f"release.build_profile: {build_profile!r} is not in profiles (available: {available})")


def check_profile_names(profiles: Collection[str], aliases: Collection[str]) -> None:
    """No profile may be named like one of the pipeline's registry ``aliases`` (``track.champion_alias``,
    ``track.candidate_alias``): a device profile's passing verdict moves the alias named after it, which
    would then be the release's own. The tracking params are not known here, so the caller passes them."""
    clash = sorted(set(profiles) & set(aliases))
    if clash:
        raise ValueError(
            f"profiles.{clash[0]}: named like a registry alias of track (champion_alias/candidate_alias): a passing "
            "device verdict would move that alias; rename the profile"
        )


def check_variant(profile: Profile, variant: str, key: str) -> None:
    """Refuse a variant the profile's device cannot run as intended (``key`` names the setting): the one rule
    for ``profiles.*.variant``, ``candidates`` and ``release.unmeasured_variant``."""
    if variant in INT8_VARIANTS and not profile.int8_capable:
        raise SettingsError(
            f"{key}: {variant} on a {profile.match.jetson_model} "
            "(Maxwell GPU: no INT8 throughput); use fp32 (TensorRT builds FP16) or auto"
        )
    if variant == "int8" and TENSORRT in profile.provider_names:
        raise SettingsError(
            f"{key}: int8 has uint8 activations, which TensorRT's explicit quantization "
            "does not take; use int8_trt (symmetric signed int8)"
        )


def parity_problem(name: str, entry: Dict[str, Any]) -> Optional[str]:
    """Why variant ``name``'s parity record (a ``release.json`` variant ``entry``) rules it out, else ``None``:
    the one rule for the release choice and for the candidates a bundle ships to a board.

    ``parity_passed`` null is a pass only where parity could not be measured on the build machine at all
    (``parity_measured: false``: fp16 without a GPU provider; a profile not measured here has the device
    evaluate it on arrival). Measured but not judged (too few detections), or no parity record: not
    releasable. :data:`REFERENCE` is the exception: its raw outputs matched PyTorch's or optimize failed.
    """
    passed = entry.get("parity_passed")
    if passed is False:
        return "breaks parity"
    if passed is None and entry.get("parity_measured") is not False and name != REFERENCE:
        return "parity not judged"
    return None
