"""`dvc plots show` draws every declared plot with no network (issue 21, DVC plots offline).

DVC's default page loads Vega from a CDN, so offline every Vega plot was blank. ci/offline_plots.py
(run by ci/setup.sh) installs Vega locally and points `plots.html_template` at a template that
inlines it. This test renders the project's own plot declarations (dvc.yaml, its templates) on
small data with that template, opens the page in headless Chromium (no network needed) and
counts, per plot, the marks Vega drew into the page (the template selects Vega's SVG renderer).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.services.servers import ARTIFACTS, REPO, browse, chromium

pytestmark = pytest.mark.services

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif")


class _Marks(HTMLParser):
    """Per plot ``<div id>``: drawn data marks (SVG shapes/text under a Vega ``role-mark`` group)
    and images."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []  # (tag, class) of open elements
        self.marks: dict[str, int] = {}
        self.images: dict[str, list[str]] = {}
        self.plot: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "div" and "id" in a and not self.stack_has_plot():
            self.plot = a["id"]
            self.marks.setdefault(self.plot, 0)
        if self.plot and tag in ("path", "text", "rect", "circle", "line") and self.inside("role-mark"):
            self.marks[self.plot] += 1 if (a.get("d") or tag != "path") else 0
        if self.plot and tag == "img":
            self.images.setdefault(self.plot, []).append(a.get("src", ""))
        if tag not in ("img", "br", "meta", "link", "input", "path", "rect", "circle", "line"):
            self.stack.append((tag, a.get("class", "")))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def inside(self, cls: str) -> bool:
        return any(cls in c.split() for _, c in self.stack)

    def stack_has_plot(self) -> bool:
        return self.plot is not None and any(t == "div" for t, _ in self.stack)


def _declared_plots() -> tuple[dict[str, dict], list[str]]:
    """The Vega plots (title -> definition, incl. stage-level plot files) and image files of dvc.yaml."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    vega: dict[str, dict] = {}
    images: list[str] = []
    for entry in dvc.get("plots", []):
        if isinstance(entry, str):
            if entry.endswith(IMAGE_SUFFIXES):
                images.append(entry)
            else:
                vega[entry] = {"y": {entry: []}}
            continue
        ((title, spec),) = entry.items()
        vega[title] = spec or {}
    for stage in dvc["stages"].values():
        for out in stage.get("plots", []):
            name = out if isinstance(out, str) else next(iter(out))
            vega[name] = {"y": {name: []}}
    return vega, images


def _has_fields(path: Path, fields: set[str]) -> bool:
    """``path`` exists and has every field a plot reads (a file from before a column was added has not)."""
    if not path.is_file():
        return False
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
        return bool(rows) and fields <= set(rows[0])
    with path.open(newline="") as f:
        return fields <= set(next(csv.reader(f), []))


def _no_rows(path: Path) -> bool:
    """A CSV with its header and no data row: a chart with nothing measured (e.g. energy on no device)."""
    with path.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) == 1


def _write_data(root: Path, vega: dict[str, dict], images: list[str]) -> set[str]:
    """The project's plot data, or small data with the fields each plot reads (x, y, and the
    class/variant its templates colour by) where a file is absent (e.g. DVC-cached images).
    Returns the project's data files that have no rows (their charts are rightly empty)."""
    empty: set[str] = set()
    fields: dict[str, set[str]] = {}
    for spec in vega.values():
        ys = spec.get("y", {})
        for file, y in ys.items():
            fields.setdefault(file, set()).update([y] if isinstance(y, str) else y)
            if spec.get("x"):
                fields[file].add(spec["x"])
    for file, cols in fields.items():
        path = root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        if _has_fields(REPO / file, cols):  # the project's own plot data (what the screenshot shows)
            shutil.copy(REPO / file, path)
            if path.suffix == ".csv" and _no_rows(path):
                empty.add(file)
            continue
        if path.suffix == ".json":  # the confusion template: category pairs
            rows = [{c: name for c in sorted(cols)} for name in ("circle", "square", "circle")]
            path.write_text(json.dumps(rows))
            continue
        cols = [*sorted(cols | {"epoch"}), "class", "variant"]
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(cols)
            for i in range(6):
                writer.writerow([i / 5 if c not in ("class", "variant") else ("a", "b")[i % 2] for c in cols])
    from PIL import Image

    for file in images:
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / file).is_file():
            shutil.copy(REPO / file, root / file)
        else:
            Image.new("RGB", (40, 30), (200, 30, 30)).save(root / file)
    return empty


def _template() -> Path:
    """The clone's configured template (set by ci/offline_plots.py)."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "config", "plots.html_template"], cwd=REPO, capture_output=True, text=True
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail("plots.html_template is not set: `dvc plots show` loads Vega from a CDN (blank offline); "
                    "run python ci/offline_plots.py (ci/setup.sh does)")  # fmt: skip
    template = (REPO / ".dvc" / proc.stdout.strip()).resolve()  # relative: to .dvc/, as DVC reads it
    assert template.is_file(), f"plots.html_template {template} does not exist: run python ci/offline_plots.py"
    return template


def test_every_declared_plot_draws_offline(tmp_path):
    chromium()
    template = _template()
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    shutil.copy(REPO / "dvc.yaml", repo / "dvc.yaml")
    for templates in sorted(REPO.glob("src/edgeproof/*/dvc_templates")):  # every custom Vega template dvc.yaml names
        shutil.copytree(templates, repo / templates.relative_to(REPO))
    vega, images = _declared_plots()
    empty = _write_data(repo, vega, images)
    out = repo / "dvc_plots"
    cmd = [sys.executable, "-m", "dvc", "plots", "show", "--html-template", str(template), "-o", str(out)]
    subprocess.run(cmd, cwd=repo, check=True, capture_output=True, timeout=300)
    page = (out / "index.html").read_text()
    assert "<script src=" not in page.replace('<script src=""', "")  # nothing fetched, everything inline
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    parser = _Marks()
    parser.feed(browse((out / "index.html").as_uri(), screenshot=ARTIFACTS / "dvc_plots.png", budget_ms=10000))
    drawn = {plot: n for plot, n in parser.marks.items() if plot not in parser.images}
    assert len(drawn) == len(vega), f"expected {len(vega)} Vega plots, page has {sorted(drawn)}"
    blank = sorted(plot for plot, n in drawn.items() if n == 0)
    # only a chart whose data has no row may be blank (nothing measured yet, e.g. energy with no device)
    no_data = [t for t, spec in vega.items() if set(spec.get("y", {})) and set(spec.get("y", {})) <= empty]
    assert len(blank) == len(no_data), f"plots drawn blank: {blank} (without data: {no_data})"
    for plot in blank:
        assert any(plot.startswith(re.sub(r"[^A-Za-z0-9-]", "_", t)[:20]) for t in no_data), plot
    shown = [src for srcs in parser.images.values() for src in srcs]
    assert len(shown) == len(images) and all((out / src).is_file() for src in shown)
