"""The README and docs/ run as written (issue 21.7): every command parses (edgeproof and dvc
subcommands and flags exist), every repo path a command names exists in git or is a DVC output,
every link and image exists, and every README image is a browser test's screenshot."""

from __future__ import annotations

import importlib.util
import itertools
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# flags whose value a command writes (it need not exist before)
OUTPUT_FLAGS = {"--out", "-o", "--save-dir", "--report-json", "--report-md", "--headline"}
# written on another branch (ci); checked as soon as it exists


def _blocks(text: str) -> list[str]:
    """Shell lines of the ```bash blocks."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")  # continued lines
        lines += [line.split(" #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _commands() -> list[tuple[str, list[str]]]:
    out = []
    for page in PAGES:
        for line in _blocks(page.read_text(encoding="utf-8")):
            for part in re.split(r"&&|\|\||;|\|", line):
                words = shlex.split(part.strip())
                if words:
                    out.append((f"{page.name}: {part.strip()}", words))
    return out


def _dvc_outputs() -> list[str]:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
    outs = []
    for stage in stages:
        for key in ("outs", "metrics", "plots"):
            outs += [next(iter(o)) if isinstance(o, dict) else o for o in stage.get(key, [])]
    return outs


def _exists(path: str, tracked: set[str], outs: list[str]) -> bool:
    path = path.rstrip("/")
    if "*" in path:  # a glob: its folder
        path = path.split("*")[0].rstrip("/")
    under = (path == p or path.startswith(p.rstrip("/") + "/") or p.startswith(path + "/") for p in outs)
    return path in tracked or any(t.startswith(path + "/") for t in tracked) or any(under)


@pytest.fixture(scope="module")
def tracked() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return set(files.split())


def test_every_edgeproof_command_parses():
    from edgeproof.cli import parse_args

    commands = [(where, words[1:]) for where, words in _commands() if words[0] == "edgeproof"]
    assert len(commands) >= 10
    for where, argv in commands:
        try:
            parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{where}: does not parse ({exc})")


def test_every_dvc_command_is_a_dvc_command():
    from dvc.cli import parse_args

    for where, words in _commands():
        if words[0] == "dvc":
            try:
                parse_args(words[1:])
            except SystemExit as exc:
                pytest.fail(f"{where}: not a dvc command ({exc})")


def _created(words: list[str]) -> set[str]:
    """Paths a command creates: ``cp``/``mv`` destinations and the values of output flags."""
    made = {value for flag, value in itertools.pairwise(words) if flag in OUTPUT_FLAGS}
    if words[0] in ("cp", "mv") and len(words) >= 3:
        dest = words[-1]
        made.add(dest + Path(words[-2]).name if dest.endswith("/") else dest)
    return made


def test_every_repo_path_a_command_names_exists_or_is_a_pipeline_output(tracked):
    outs = _dvc_outputs()
    created: set[str] = set()  # by an earlier command of the same page (e.g. cp ... weights/)
    for where, words in _commands():
        for before, word in itertools.pairwise(words):
            value = word.split("=", 1)[-1]
            repo_path = re.fullmatch(r"(ci|src|stages|tests|data|models|metrics|reports|plots|release|docs)/\S*", value)
            a_file = re.fullmatch(r"[\w./*-]+\.(jpg|jpeg|png|onnx|pt|json|yaml|csv|mp4|avi|py|sh)", value)
            yours = value.startswith(("data/sources/", "<", "/"))  # your own data, a placeholder, your path
            if (repo_path or a_file) and not yours and before not in OUTPUT_FLAGS and value not in created:
                assert _exists(value, tracked, outs), f"{where}: {value} is neither in git nor a DVC output"
        created |= _created(words)


def test_every_link_and_image_exists():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.name}: link to {target} goes nowhere"


def test_every_readme_image_is_a_browser_tests_screenshot():
    spec = importlib.util.spec_from_file_location("readme_images", REPO / "ci" / "readme_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shown = {m for page in PAGES for m in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8"))}
    shown = {(REPO / "docs" / s if not s.startswith("docs/") else REPO / s).resolve() for s in shown}
    for image in shown:
        rel = image.relative_to(REPO).as_posix()
        assert rel in module.IMAGES, f"{rel} is not a test screenshot (ci/readme_images.py IMAGES)"
        shot, test = module.IMAGES[rel]
        assert (
            Path(shot).name.split("-cropped")[0].split(".")[0] in (REPO / test).read_text()
            or Path(shot).parent.name in (REPO / test).read_text()
        ), f"{test} does not take {shot}"


def test_readme_is_short_and_points_to_each_docs_page():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"docs/{page.name}" in text, f"README does not point to docs/{page.name}"
    assert "docs/jetson.md" in text
