"""ci/offline_plots.py: the clone's page setting survives a move, and --help only helps (issue 21)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "ci" / "offline_plots.py"


def _module():
    spec = importlib.util.spec_from_file_location("offline_plots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_template_setting_is_relative_so_a_moved_clone_keeps_its_page(tmp_path):
    """An absolute path went stale when the clone moved: DVC then took the path for the page itself."""
    clone = tmp_path / "clone"
    clone.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=clone, check=True)
    template = clone / ".edgeproof" / "vega" / "dvc_plots.html"
    template.parent.mkdir(parents=True)
    template.write_text("<html>{plot_divs}</html>")
    assert _module().configure(clone, template) == "../.edgeproof/vega/dvc_plots.html"
    moved = shutil.move(clone, tmp_path / "moved")
    value = subprocess.run(
        [sys.executable, "-m", "dvc", "config", "plots.html_template"], cwd=moved, capture_output=True, text=True
    ).stdout.strip()
    assert (Path(moved) / ".dvc" / value).resolve() == Path(moved) / ".edgeproof" / "vega" / "dvc_plots.html"


def test_help_prints_usage_and_installs_nothing(tmp_path):
    env = {"PATH": str(tmp_path)}  # no npm, no dvc: a run past --help would fail
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("usage:") and "offline" in proc.stdout
    assert "npm not found" not in proc.stderr
