"""A stage's expected failures end in one clear line and exit 2, never the gate's "a rule failed" 1."""

from __future__ import annotations

import errno

import pytest
from stages._common import parser, run


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device", "reports/gate.json"),
        PermissionError(errno.EACCES, "Permission denied", "metrics/eval.json"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "data/prepared"),
    ],
)
def test_a_full_disk_or_read_only_folder_is_exit_2_with_the_path_named(tmp_path, monkeypatch, capsys, error):
    """interrupt12 review: an OSError other than FileNotFoundError (disk full, read-only output folder) ended
    in a traceback with exit 1, the code the gate stage gives a failed rule."""
    monkeypatch.chdir(tmp_path)

    def body(args):
        raise error

    assert run("gate", body, parser("a stage"), []) == 2  # the stage logs to stderr (its own handler)
    err = capsys.readouterr().err
    assert f"gate ERROR gate stage failed: {error}" in err and "Traceback" not in err
