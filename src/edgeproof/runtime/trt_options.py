"""ONNX Runtime's TensorRT execution provider options, checked when a profile is parsed.

ORT's Python wrapper passes each option as ``str(value)``, and its TensorRT EP takes only ``True``/``true``/
``False``/``false`` for a flag and throws on an unknown name; edgeproof reads some of the same options
itself (``trt_fp16_enable`` for the trtexec ceiling and the release reason, the cache flags for their
paths). A string ``"false"`` was FP32 to ORT and FP16 to edgeproof, and a typo failed only on the board
after the hand-off. So the options must be the types ORT parses them as: a flag a YAML bool, a size an
integer, a path or list a string; then edgeproof and ORT read the same value. Python 3.8 (the board).
"""

from __future__ import annotations

import difflib
from typing import Any, Dict, Mapping, Tuple

# The option names of ORT's TensorRT EP (OrtTensorRTProviderOptionsV2, ORT 1.11 to 1.2x, as documented at
# onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html): a fixed list, as ORT_PROVIDERS
# is, so that a typo fails when params.yaml is loaded. A newer ORT option is added here.
TRT_FLAGS: Tuple[str, ...] = (
    "has_user_compute_stream", "trt_fp16_enable", "trt_bf16_enable", "trt_int8_enable",
    "trt_int8_use_native_calibration_table", "trt_dla_enable", "trt_dump_subgraphs", "trt_engine_cache_enable",
    "trt_engine_decryption_enable", "trt_force_sequential_engine_build", "trt_context_memory_sharing_enable",
    "trt_layer_norm_fp32_fallback", "trt_timing_cache_enable", "trt_force_timing_cache", "trt_detailed_build_log",
    "trt_build_heuristics_enable", "trt_sparsity_enable", "trt_cuda_graph_enable", "trt_dump_ep_context_model",
    "trt_weight_stripped_engine_enable", "trt_engine_hw_compatible",
)  # fmt: skip
TRT_INTS: Tuple[str, ...] = (
    "device_id", "trt_max_partition_iterations", "trt_min_subgraph_size", "trt_max_workspace_size", "trt_dla_core",
    "trt_builder_optimization_level", "trt_auxiliary_streams", "trt_ep_context_embed_mode",
)  # fmt: skip
TRT_STRINGS: Tuple[str, ...] = (
    "user_compute_stream", "trt_int8_calibration_table_name", "trt_engine_cache_path",
    "trt_engine_decryption_lib_path", "trt_timing_cache_path", "trt_tactic_sources", "trt_extra_plugin_lib_paths",
    "trt_profile_min_shapes", "trt_profile_max_shapes", "trt_profile_opt_shapes", "trt_ep_context_file_path",
    "trt_onnx_model_folder_path", "trt_engine_cache_prefix", "trt_op_types_to_exclude",
)  # fmt: skip
TRT_OPTION_TYPES: Dict[str, str] = {
    **{k: "flag" for k in TRT_FLAGS},
    **{k: "int" for k in TRT_INTS},
    **{k: "str" for k in TRT_STRINGS},
}
_EXPECTED = {"flag": "true or false", "int": "an integer", "str": "a string"}


def _right_type(kind: str, value: Any) -> bool:
    if kind == "flag":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def trt_option_problem(options: Mapping[str, Any]) -> Tuple[str, str]:
    """The first TensorRT option that ORT would refuse or read otherwise than edgeproof, as ``(key, why)``;
    ``("", "")`` when all are known and of their type."""
    for key, value in options.items():
        kind = TRT_OPTION_TYPES.get(key)
        if kind is None:
            close = difflib.get_close_matches(str(key), list(TRT_OPTION_TYPES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return key, f"not a TensorRT execution provider option of ONNX Runtime{hint}"
        if not _right_type(kind, value):
            return key, f"expected {_EXPECTED[kind]} (ONNX Runtime parses it as one), got {value!r}"
    return "", ""
