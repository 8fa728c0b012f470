"""Make `dvc plots show` work offline: Vega from a local copy instead of DVC's CDN links.

DVC's HTML loads vega, vega-lite and vega-embed from cdn.jsdelivr.net, so without internet every
Vega plot (training curves, PR/F1 curves, confusion matrix, latency scatter) renders blank. This
script, run once by ci/setup.sh (the npm registry is needed then, never at run time):

1. installs pinned vega / vega-lite / vega-embed from npm and keeps their minified builds in
   ``.edgeproof/vega/`` (git-ignored);
2. writes ``.edgeproof/vega/dvc_plots.html``, an HTML template for DVC with the three scripts
   inlined (so the page also works when copied elsewhere, e.g. as a CI artifact) and Vega's SVG
   renderer (the drawn marks are in the page's DOM, which the browser test counts);
3. points this clone at it: ``dvc config --local plots.html_template ../.edgeproof/vega/dvc_plots.html``
   (``.dvc/config.local``, git-ignored; a clone without set-up keeps DVC's default page). The path is
   relative: DVC reads it from ``.dvc/``, so a clone moved elsewhere keeps its page (an absolute one
   went stale and DVC took the path itself for the page: "has to contain '{plot_divs}'").

    python ci/offline_plots.py            # idempotent
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("offline_plots")

ROOT = Path(__file__).resolve().parents[1]
VEGA_DIR = ROOT / ".edgeproof" / "vega"
TEMPLATE = VEGA_DIR / "dvc_plots.html"
# the majors DVC's own page loads (vega 5, vega-lite 5, vega-embed 6), pinned
PACKAGES = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
BUILDS = {"vega": "build/vega.min.js", "vega-lite": "build/vega-lite.min.js", "vega-embed": "build/vega-embed.min.js"}

# DVC calls vegaEmbed('#id', spec) once per plot: default to the SVG renderer (marks land in the DOM)
_SVG_BY_DEFAULT = """(function () {
  var embed = window.vegaEmbed;
  window.vegaEmbed = function (el, spec, opts) {
    return embed(el, spec, Object.assign({renderer: "svg"}, opts || {}));
  };
})();"""

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot (offline)</title>
    <!-- vega {vega}, vega-lite {vega-lite}, vega-embed {vega-embed}: inlined by ci/offline_plots.py -->
    %s
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def _installed() -> bool:
    stamp = VEGA_DIR / "versions.json"
    return TEMPLATE.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == PACKAGES


def install_vega(npm: str = "npm") -> None:
    """npm-install the pinned packages into a temporary folder and keep their builds in VEGA_DIR."""
    with tempfile.TemporaryDirectory(prefix="edgeproof-vega-") as tmp:
        specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
        cmd = [npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--silent", *specs]
        subprocess.run(cmd, check=True, timeout=600)
        VEGA_DIR.mkdir(parents=True, exist_ok=True)
        for name, build in BUILDS.items():
            shutil.copyfile(Path(tmp) / "node_modules" / name / build, VEGA_DIR / f"{name}.min.js")


def write_template() -> Path:
    """The DVC HTML template with the three scripts inlined; returns its path."""
    scripts = []
    for name in BUILDS:
        code = (VEGA_DIR / f"{name}.min.js").read_text(encoding="utf-8")
        # "</script" inside the code would end the inline element early
        scripts.append("<script>" + code.replace("</script", "<\\/script") + "</script>")
    scripts.append("<script>" + _SVG_BY_DEFAULT + "</script>")
    page = PAGE % "\n    ".join(scripts)
    for name, version in PACKAGES.items():
        page = page.replace("{" + name + "}", version, 1)
    tmp = TEMPLATE.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, TEMPLATE)
    (VEGA_DIR / "versions.json").write_text(json.dumps(PACKAGES))
    return TEMPLATE


def configure(root: Path, template: Path) -> str:
    """Set ``plots.html_template`` of the clone at ``root`` to ``template``, relative to its ``.dvc/``
    (where DVC resolves a relative one); returns the value set."""
    value = os.path.relpath(template, root / ".dvc")
    cmd = [sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", value]
    subprocess.run(cmd, cwd=root, check=True, timeout=120)
    return value


def main(argv: list[str] | None = None) -> int:
    """Install (once), write the template, and set ``plots.html_template`` in .dvc/config.local."""
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="offline_plots: %(message)s")
    if not _installed():
        npm = shutil.which("npm")
        if npm is None:
            log.error("npm not found: `dvc plots show` keeps DVC's CDN page (blank offline)")
            return 1
        install_vega(npm)
        write_template()
        log.info("%s inlined into %s", ", ".join(f"{k} {v}" for k, v in PACKAGES.items()), TEMPLATE)
    configure(ROOT, TEMPLATE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
