"""A recorded pipeline run, replayed through the real ``gate`` stage into MLflow, without training.

The repo's committed pipeline state (params.yaml, dvc.yaml, dvc.lock, metrics/, reports/, plots/
text files: the outputs of the last full ``dvc repro``) is copied into a fresh git repo. The ONNX
release candidate (DVC-cached, not in git) is replaced by a tiny fixed-output ONNX model, and the
recorded sha256 by its sha256, so the sha256 chain the gate checks holds; the replay repo has no
``.dvc/`` (no DVC cache to check outputs against), so the model is committed in git with the rest, as
provenance then requires of every file the gate judges. Stage outputs get
modification times in stage order (the data stage's 8 minutes before the gate, as a real run's
training takes), then the gate stage runs exactly as ``dvc.yaml`` spells its command.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from edgeproof.io import sha256_file
from tests.conftest import make_fixed_detector
from tests.services.servers import REPO

GIT = ["git", "-c", "user.name=edgeproof-test", "-c", "user.email=test@edgeproof.invalid"]


@dataclass
class Recorded:
    """The replayed repo, its model's sha256, and the gate stage's command line from dvc.yaml."""

    path: Path
    sha: str
    gate_cmd: list[str]

    def git(self, *args: str) -> None:
        """Run git in the repo."""
        subprocess.run([*GIT, *args], cwd=self.path, check=True, capture_output=True)

    def run_gate(self, env: dict[str, str] | None = None, repro_s: float = 0.0) -> subprocess.CompletedProcess:
        """Run the gate stage (and so its MLflow record) as DVC would, in the repo: as the child of a
        process whose command line reads ``dvc repro`` (a shell standing in for DVC), started
        ``repro_s`` seconds before the stage (the stages before it)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_", "DVC_EXP"))}
        full = {**base, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", **(env or {})}
        cmd = [sys.executable if part == "python" else part for part in self.gate_cmd]
        shell = ["sh", "-c", f'shift; sleep {repro_s}; "$@"', "dvc", "repro", *cmd]  # $0 dvc, $1 repro
        return subprocess.run(shell, cwd=self.path, env=full, capture_output=True, text=True, timeout=300, check=False)


def _committed(prefixes: tuple[str, ...]) -> list[str]:
    out = subprocess.run(["git", "ls-files", *prefixes], cwd=REPO, capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if (REPO / line).is_file()]


def recorded_repo(dst: Path) -> Recorded:
    """Build the replay repo in ``dst`` (committed on branch ``main``, clean)."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    gate_cmd = shlex.split(dvc["stages"]["gate"]["cmd"])
    old_sha = json.loads((REPO / "reports" / "gate.json").read_text())["model_sha256"]
    files = [f for f in ("params.yaml", "dvc.yaml", "dvc.lock") if (REPO / f).is_file()]
    files += _committed(("metrics", "reports", "plots"))
    for name in files:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, dst / name)
    release = json.loads((REPO / "reports" / "release.json").read_text())
    gated = release["profiles"][release["build_profile"]]["path"]
    models = sorted({gated, *(part for part in gate_cmd if part.endswith(".onnx"))})  # and the fp32 reference
    old_shas = {old_sha, *(release["variants"][v]["sha256"] for v in release["variants"] if v != "fp16")}
    for model in models:
        (dst / model).parent.mkdir(parents=True, exist_ok=True)
        make_fixed_detector(dst / model, _FIXED, IMGSZ, dict(enumerate(NAMES)))
    sha = sha256_file(dst / gated)  # every fixed detector is the same bytes
    for name in files:
        if name.endswith((".json", ".md")):
            path = dst / name
            text = path.read_text()
            for old in old_shas:
                text = text.replace(old, sha)
            path.write_text(text)
    files += _rescorable(dst, release)
    _stage_times(dst, dvc, [*files, *models])
    (dst / ".gitignore").write_text("mlflow.db\nmlartifacts/\n.edgeproof/\n")
    subprocess.run([*GIT, "init", "-q", "-b", "main"], cwd=dst, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dst, check=True)
    subprocess.run([*GIT, "commit", "-qm", "recorded pipeline state"], cwd=dst, check=True)
    return Recorded(dst, sha, gate_cmd)


# The gate scores the file it judges on val itself (rules rescored, val_identity, release_choice), so the
# replay's val is one the fixed detector finds perfectly: each class's box where the model puts it, and the
# released variant's evaluation is that scoring (the recorded speed figures stay as measured)
IMGSZ, NAMES, N_VAL = 32, ("circle", "square", "triangle"), 12
_BOXES = ((4.0, 4.0, 10.0, 10.0), (18.0, 4.0, 10.0, 10.0), (10.0, 18.0, 12.0, 12.0))  # x, y, w, h in pixels
_FIXED = np.array(  # (4 + classes, anchors): anchor k is class k's box, score 0.9
    [[x + w / 2, y + h / 2, w, h, *(0.9 * (c == k) for c in range(3))] for k, (x, y, w, h) in enumerate(_BOXES)],
    np.float32,
).T


def _write_val(prepared: Path) -> None:
    """``data/prepared``'s val: N_VAL images of IMGSZ pixels, each with one box of each class (and its labels)."""
    from PIL import Image

    for sub in ("images/val", "labels/val", "annotations"):
        (prepared / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(N_VAL):
        name = f"val_{i:06d}.png"
        Image.fromarray(rng.integers(0, 255, (IMGSZ, IMGSZ, 3), dtype=np.uint8)).save(prepared / "images/val" / name)
        images.append({"id": i + 1, "file_name": name, "width": IMGSZ, "height": IMGSZ})
        lines = []
        for k, (x, y, w, h) in enumerate(_BOXES):
            ann = {"image_id": i + 1, "category_id": k + 1, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            annotations.append({"id": len(annotations) + 1, **ann})
            lines.append(f"{k} {(x + w / 2) / IMGSZ:.6f} {(y + h / 2) / IMGSZ:.6f} {w / IMGSZ:.6f} {h / IMGSZ:.6f}")
        (prepared / "labels/val" / f"val_{i:06d}.txt").write_text("\n".join(lines) + "\n")
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(NAMES)]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    (prepared / "annotations/val.json").write_text(json.dumps(gt))
    counts = {"val": {"images": N_VAL, "boxes": 3 * N_VAL, "empty_images": 0}}
    meta = {"category_ids": [1, 2, 3], "names": list(NAMES), "source": "synthetic", "counts": counts}
    (prepared / "meta.json").write_text(json.dumps(meta))


def _rescorable(dst: Path, release: dict) -> list[str]:
    """Write the val the gate scores on, and make the recorded evaluation, data report and release record the
    fixed detector's on it, as the data, evaluate and release stages would: the files written."""
    from edgeproof.config import load_params
    from edgeproof.data.identity import split_digests
    from edgeproof.evaluation.run import evaluate_onnx
    from edgeproof.verdict.eval_size import size_record

    prepared = dst / "data/prepared"
    _write_val(prepared)
    params = load_params(dst / "params.yaml")
    variant = release["release_variant"]
    record = json.loads((dst / "reports/release.json").read_text())
    written = ["metrics/data.json", "reports/release.json", "metrics/eval.json"]
    for name in ("fp32", variant):
        v = record["variants"][name]
        doc = evaluate_onnx(dst / v["path"], prepared, params.evaluate, params.deploy).metrics
        doc["model_path"] = v["path"]
        (dst / v["eval_json"]).write_text(json.dumps(doc, indent=2))
        if name == "fp32":
            (dst / "metrics/eval.json").write_text(json.dumps(doc, indent=2))
        v.update(map50=doc["map50"], map50_95=doc["map50_95"], map_drop=0.0, **size_record(doc))
        written.append(v["eval_json"])
    (dst / "reports/release.json").write_text(json.dumps(record, indent=2))
    report = json.loads((dst / "metrics/data.json").read_text())
    val = {"images": N_VAL, "boxes": 3 * N_VAL, "crowd_boxes": 0, "empty_images": 0}
    report["splits"]["val"] = {**val, "classes": dict.fromkeys(NAMES, N_VAL), **split_digests(prepared, "val")}
    (dst / "metrics/data.json").write_text(json.dumps(report, indent=2))
    return sorted(set(written))


def _stage_times(dst: Path, dvc: dict, files: list[str]) -> None:
    """Outputs of the data stage 8 minutes ago, every later stage's a minute ago (training between)."""
    now = time.time()
    data_outs = {next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics")
                 for o in dvc["stages"].get("data", {}).get(key, [])}  # fmt: skip
    for name in files:
        stamp = now - 480 if name in data_outs else now - 60
        os.utime(dst / name, (stamp, stamp))
