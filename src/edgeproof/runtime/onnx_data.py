"""Which tensors of an ONNX file keep their data outside it, read from the protobuf wire format alone.

A tensor with ``data_location: EXTERNAL`` names a file (``location``) that ONNX Runtime opens next to
the model, or wherever an absolute or ``../`` path points: a file that is not in the bundle, so not
covered by its manifest's sha256, and possibly any file on the board. ORT 1.32 refuses both of those
paths, from a file or from bytes; the JetPack wheels (1.11, 1.18, 1.20) are not verified to. So the
bundle refuses a model with any external tensor before ORT sees it, and so does every
:class:`~edgeproof.runtime.detector.Detector` when it reads a model: the sha256 it reports is of the
``.onnx`` bytes only, and a session built from those bytes looks for the data file in the current folder.

The device side has no ``onnx`` package (numpy, PyYAML, onnxruntime only; Python 3.8): the walk reads
the fields of ``onnx.proto`` that can hold a tensor, at any depth (subgraphs, functions).
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

# message -> {field number: message type of that (length-delimited) field}, from onnx.proto
_SCHEMA: Dict[str, Dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto: initialization, algorithm
    "function": {7: "node", 11: "attribute"},  # attribute_proto: the function's default attribute values
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1


class WireError(ValueError):
    """Bytes that are not a well-formed protobuf message."""


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
    """``(field number, wire type, value)``: an int for varints, bytes for length-delimited fields."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError("length-delimited field runs past the end")
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise WireError(f"wire type {wire} (field {number}) is not used by onnx.proto")
    if pos != len(data):
        raise WireError("fixed-size field runs past the end")


def _location(entry: bytes) -> Optional[str]:
    """The value of an ``external_data`` entry (``StringStringEntryProto``) whose key is ``location``."""
    fields = {number: value for number, wire, value in _fields(entry) if wire == 2}
    if fields.get(1) != b"location":
        return None
    return bytes(fields.get(2, b"")).decode("utf-8", "replace")  # type: ignore[arg-type]


def _external(data: bytes, kind: str, depth: int) -> Iterator[Tuple[str, str]]:
    if depth > 64:
        raise WireError("nested deeper than 64 messages")
    name, external, location = "", False, "?"
    for number, wire, value in _fields(data):
        if kind == "tensor" and wire == 2 and number == _TENSOR_NAME:
            name = bytes(value).decode("utf-8", "replace")  # type: ignore[arg-type]
        elif kind == "tensor" and ((number, value) == (_DATA_LOCATION, _EXTERNAL) or number == _EXTERNAL_DATA):
            external = True
            if wire == 2 and number == _EXTERNAL_DATA:
                location = _location(value) or location  # type: ignore[arg-type]
        elif wire == 2 and number in _SCHEMA[kind]:
            yield from _external(value, _SCHEMA[kind][number], depth + 1)  # type: ignore[arg-type]
    if external:
        yield name or "<unnamed tensor>", location


def external_tensors(model: bytes) -> List[str]:
    """The names of the tensors whose data lives outside the ONNX file ``model`` (empty: none).

    Raises :class:`WireError` for bytes that are not a protobuf message.
    """
    return [name for name, _ in _external(model, "model", 0)]


def external_data_problem(where: object, model: bytes) -> Optional[str]:
    """Why the ONNX file ``where`` (its bytes ``model``) is refused for keeping tensor data in other files,
    naming the tensors and the files they point to; None when it keeps none. The one wording of the refusal.

    Raises :class:`WireError` for bytes that are not a protobuf message.
    """
    outside = list(_external(model, "model", 0))
    if not outside:
        return None
    files = sorted({location for _, location in outside})
    names = [name for name, _ in outside[:5]] + (["…"] if len(outside) > 5 else [])
    return (
        f"{where}: {len(outside)} tensor(s) keep their data outside the file (external data, in {files}, "
        f"which its sha256 does not cover): {names}"
    )
