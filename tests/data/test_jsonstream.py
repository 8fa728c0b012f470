"""The streaming JSON reader agrees with json.load at every chunk boundary and names bad files."""

from __future__ import annotations

import json

import pytest

from edgeproof.data.jsonstream import iter_members

DOC = {
    "info": {"year": 2017, "list": [1, 2.5, None]},
    "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(40)],
    "annotations": [
        {
            "id": i,
            "image_id": i % 40,
            "bbox": [i * 1.5, 2.0, 3e2, 4.25],
            "segmentation": [[0.5] * (i % 9)],
            "area": 10**12,
        }
        for i in range(120)
    ],
    "categories": [],
    "licenses": 12345,
    "text": 'a "quoted" \\ string, with ] and } inside',
}


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_matches_json_load(tmp_path, indent, chunk):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(DOC, indent=indent))
    got: dict[str, list] = {}
    for key, value in iter_members(path, {"images", "annotations", "categories"}, chunk=chunk):
        got.setdefault(key, []).append(value)
    assert got["images"] == DOC["images"]
    assert got["annotations"] == DOC["annotations"]
    assert "categories" not in got  # an empty array yields nothing
    assert got["info"] == [DOC["info"]] and got["licenses"] == [12345] and got["text"] == [DOC["text"]]


@pytest.mark.parametrize(
    "text", ['{"images": [1, 2', '{"images": [1 2]}', "[1]", '{"a": 1} x', '{"a": tru}', '{"a" 1}', ""]
)
def test_malformed_json_names_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        list(iter_members(path, {"images"}, chunk=3))
