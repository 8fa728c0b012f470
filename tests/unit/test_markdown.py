from __future__ import annotations

from edgeproof.markdown import cell, table


def test_cells_read_the_same_everywhere():
    assert cell(None) == "—"
    assert cell(True) == "true"
    assert cell(0.123456) == "0.1235"
    assert cell(float("nan")) == "nan"
    assert cell("a" * 3 + "|b\nc") == "aaa/b c"
    assert cell("0123456789abcdef" * 4) == "`0123456789ab…`"
    assert cell([1.0, None]) == "1, —"


def test_table_has_header_rule_and_one_line_per_row():
    lines = table(["a", "b"], [[1.5, "x|y"], [None, 2]], align="lr")
    assert lines == ["| a | b |", "|---|---:|", "| 1.5 | x|y |", "| — | 2 |"]
