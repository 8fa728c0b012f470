"""The one tree snapshot the tests and the reliability tool compare before/after a run (tests/data/builders)."""

from __future__ import annotations

from tests.data.builders import tree_state


def _tree(tmp_path):
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    return root, outside


def test_files_are_hashed_with_mode_and_size(tmp_path):
    root, _ = _tree(tmp_path)
    before = tree_state(root)
    assert set(before) == {"a.txt", "sub/b.txt"}
    (root / "sub" / "b.txt").write_text("B")
    assert tree_state(root) != before
    (root / "a.txt").chmod(0o600)
    after = tree_state(root)
    (root / "a.txt").chmod(0o644)
    assert after["a.txt"][1] != tree_state(root)["a.txt"][1]


def test_links_are_recorded_not_followed(tmp_path):
    root, outside = _tree(tmp_path)
    (root / "out").symlink_to(outside / "secret.txt")
    (root / "outdir").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(tmp_path / "missing")
    state = tree_state(root)  # a dangling link or a linked folder does not break it
    assert state["out"][0] == f"symlink -> {outside / 'secret.txt'}"
    assert state["outdir"][0] == f"symlink -> {outside}"
    assert not any(k.startswith("outdir/") for k in state)  # not descended into
    (outside / "secret.txt").write_text("changed outside the tree")
    assert tree_state(root) == state  # what a link points at is not the tree's content


def test_a_planted_or_retargeted_link_shows(tmp_path):
    root, outside = _tree(tmp_path)
    before = tree_state(root)
    (root / "a.txt").unlink()
    (root / "a.txt").symlink_to(outside / "a-copy.txt")
    (outside / "a-copy.txt").write_text("a")  # same bytes behind the link
    assert tree_state(root) != before
    linked = tree_state(root)
    (root / "a.txt").unlink()
    (root / "a.txt").symlink_to(outside / "secret.txt")
    assert tree_state(root) != linked
