"""The int8 model's concatenations as plain copies (issue 22): what aligning their input scales saves.

    python benchmarks/concat_scales.py --model models/optimized/int8.onnx --rounds 16

ONNX Runtime runs an int8 ``Concat`` as ``QLinearConcat``, which requantizes every input whose scale
and zero point differ from the output's through a 256-entry table, byte by byte, and copies the
others (``memcpy``). A producer that feeds only the concatenation (a SiLU's ``Mul``, a residual
``Add``, a ``Conv``) can quantize straight to the concatenation's own scale and zero point: one
rounding instead of two, never less exact, and the concatenation becomes copies. This script edits
every such input of the QDQ model (its ``QuantizeLinear`` and ``DequantizeLinear`` then take the
concatenation's scale and zero point), and times both files model-only (batch 1, one seeded random
input, the default session) in interleaved rounds whose order alternates. Prints one JSON object:
how many inputs were aligned, the largest raw-output difference, each file's median ms and the
aligned file's ratio to the original round by round. The edited file is written to ``--out`` if given.
"""

from __future__ import annotations

from collections import defaultdict

import onnx
from concat_split import edit_and_compare  # benchmarks/ is the script's folder, so on sys.path

PRODUCERS = ("Mul", "Add", "Conv")  # ops that requantize their output (a Resize or MaxPool keeps its input's scale)


def _only(consumers: dict[str, list[onnx.NodeProto]], name: str, op: str) -> onnx.NodeProto | None:
    after = consumers[name]
    return after[0] if len(after) == 1 and after[0].op_type == op else None


def align_concat_scales(model: onnx.ModelProto) -> int:
    """Give each single-consumer ``Q -> DQ`` input of a quantized ``Concat`` the scale and zero point of
    the ``Concat``'s output quantizer, in place. Returns how many inputs were aligned."""
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    producer: dict[str, onnx.NodeProto] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
        for name in node.output:
            producer[name] = node
    aligned = 0
    for concat in [n for n in model.graph.node if n.op_type == "Concat"]:
        out_q = _only(consumers, concat.output[0], "QuantizeLinear")
        for name in concat.input if out_q is not None else ():
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or len(consumers[name]) != 1:
                continue
            q = producer.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear" or len(consumers[dq.input[0]]) != 1:
                continue
            source = producer.get(q.input[0])
            if source is None or source.op_type not in PRODUCERS or len(consumers[q.input[0]]) != 1:
                continue
            for node in (q, dq):
                node.input[1], node.input[2] = out_q.input[1], out_q.input[2]
            aligned += 1
    return aligned


def main() -> None:
    edit_and_compare(__doc__, "models/optimized/int8.onnx", align_concat_scales, "inputs_aligned", "aligned")


if __name__ == "__main__":
    main()
