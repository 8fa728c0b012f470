"""Does ``edgeproof.data.jsonstream`` earn its place next to ``ijson``? Time and peak memory of reading
a COCO annotation file the way the COCO source does (keep a few fields of every image and annotation).

Generates a train2017 look-alike (``coco_subset_scale.generate``: polygons, crowd RLEs, COCO's
categories) in a temp dir, then reads it in a fresh process per reader:

* ``json_load``: ``json.load`` of the whole file (the baseline a streaming reader must beat on memory);
* ``jsonstream``: :func:`edgeproof.data.jsonstream.iter_members` (one pass, C decoder per element);
* ``ijson``: ``ijson.items`` (yajl2_c backend when installed) for ``images.item`` and
  ``annotations.item`` (two passes: ijson yields one prefix per pass).

Needs ``pip install ijson`` (not a project dependency). Usage::

    python benchmarks/jsonstream_vs_ijson.py                       # 20k images, 150k annotations
    python benchmarks/jsonstream_vs_ijson.py --images 118287 --annotations 860001   # train2017 size
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
READERS = ("json_load", "jsonstream", "ijson")


def _keep(image: dict, ann: dict) -> tuple:
    return (image.get("id"), image.get("file_name")), (ann.get("id"), ann.get("category_id"), ann.get("bbox"))


def read(reader: str, path: Path) -> tuple[int, int]:
    """Images and annotations read, keeping only the fields the COCO source keeps."""
    images, anns = [], []
    if reader == "json_load":
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
        images = [(im.get("id"), im.get("file_name")) for im in data["images"]]
        anns = [(a.get("id"), a.get("category_id"), a.get("bbox")) for a in data["annotations"]]
    elif reader == "jsonstream":
        from edgeproof.data.jsonstream import iter_members

        for key, value in iter_members(path, {"images", "annotations"}):
            if key == "images":
                images.append((value.get("id"), value.get("file_name")))
            elif key == "annotations":
                anns.append((value.get("id"), value.get("category_id"), value.get("bbox")))
    else:
        import ijson

        with path.open("rb") as fh:
            images = [(im.get("id"), im.get("file_name")) for im in ijson.items(fh, "images.item", use_float=True)]
        with path.open("rb") as fh:
            anns = [
                (a.get("id"), a.get("category_id"), a.get("bbox"))
                for a in ijson.items(fh, "annotations.item", use_float=True)
            ]
    return len(images), len(anns)


def _child(reader: str, path: Path) -> None:
    start = time.perf_counter()
    n_images, n_anns = read(reader, path)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb), "images": n_images, "anns": n_anns}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=20_000)
    p.add_argument("--annotations", type=int, default=150_000)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ijson
    from coco_subset_scale import generate

    results: dict = {"backend": {"ijson": f"{ijson.__version__} {ijson.backend}"}, "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "instances.json"
        generate(path, args.images, args.annotations)
        results["file_mb"] = round(path.stat().st_size / 2**20, 1)
        for reader in READERS:
            cmd = [sys.executable, __file__, "--child", reader, str(path)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[reader] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(reader, results[reader], flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "jsonstream_vs_ijson.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
