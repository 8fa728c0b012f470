"""Read a large JSON object member by member, array element by array element.

A COCO ``instances_train2017.json`` is ~450 MB, most of it segmentation polygons the detector never
uses; ``json.load`` would hold every one of them as Python objects at once. :func:`iter_members`
reads the file in chunks and decodes one array element at a time (with the C decoder), so the
caller keeps only the fields it needs and memory stays proportional to what it keeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, TextIO

_CHUNK = 1 << 22  # characters read per refill
_MAX_PENDING = 1 << 26  # one value larger than this is treated as malformed input
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# what may follow the end of a buffer inside a number: the value may go on in the next chunk
_NUMBER_TAIL = re.compile(r"[0-9.eE+\-]*\Z")


class _Reader:
    """A refillable text buffer over a file with just enough JSON grammar to walk the top level."""

    def __init__(self, fh: TextIO, path: Path, chunk: int) -> None:
        self.fh, self.path, self.chunk = fh, path, chunk
        self.buf, self.pos, self.consumed, self.eof = "", 0, 0, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.fh.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.consumed += self.pos
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def error(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not valid JSON: {what} (near character {self.consumed + self.pos})")

    def peek(self) -> str:
        """The next non-blank character ("" at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {char!r}")
        self.pos += 1

    def value(self) -> Any:
        """Decode the next complete JSON value."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos <= _MAX_PENDING and self._fill():
                    continue
                raise self.error(exc.msg) from None
            if _NUMBER_TAIL.match(self.buf, end) and self._fill():  # "12" may be "12.5" once the next chunk is in
                continue
            self.pos = end
            return obj

    def elements(self) -> Iterator[Any]:
        """Decode the elements of the array that starts here, one at a time."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            char = self.peek()
            self.pos += 1
            if char == "]":
                return
            if char != ",":
                raise self.error("expected ',' or ']' in an array")


def iter_members(path: Path | str, arrays: Collection[str], chunk: int = _CHUNK) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` for each member of the top-level JSON object in ``path``.

    For a key in ``arrays`` whose value is an array, yield ``(key, element)`` once per element
    instead of the whole array. Raises ``ValueError`` naming the file for malformed JSON.
    """
    path = Path(path)
    with path.open(encoding="utf-8-sig") as fh:
        try:
            yield from _members(_Reader(fh, path, chunk), arrays)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _members(reader: _Reader, arrays: Collection[str]) -> Iterator[tuple[str, Any]]:
    reader.expect("{")
    if reader.peek() == "}":
        return
    while True:
        key = reader.value()
        if not isinstance(key, str):
            raise reader.error("expected a string key")
        reader.expect(":")
        if key in arrays and reader.peek() == "[":
            for element in reader.elements():
                yield key, element
        else:
            yield key, reader.value()
        char = reader.peek()
        reader.pos += 1
        if char == "}":
            break
        if char != ",":
            raise reader.error("expected ',' or '}' after a member")
    if reader.peek() != "":
        raise reader.error("data after the top-level object")
