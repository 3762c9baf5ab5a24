"""One markdown table cell per value, whatever the value's text."""

from __future__ import annotations

from mesh_assets.contracts.markdown import markdown_cell


def test_a_pipe_in_a_value_is_escaped_so_it_cannot_end_the_cell() -> None:
    assert markdown_cell("a|b") == "a\\|b"


def test_a_backslash_is_escaped_so_it_cannot_unescape_the_cell_boundary() -> None:
    assert markdown_cell("ends with \\") == "ends with \\\\"
    assert markdown_cell("\\|") == "\\\\\\|"


def test_line_breaks_and_runs_of_whitespace_become_one_space_so_the_row_stays_one_line() -> None:
    assert markdown_cell("first\nsecond\r\n\tthird  fourth") == "first second third fourth"


def test_a_value_that_is_not_text_is_shown_as_its_str() -> None:
    assert markdown_cell(1200) == "1200"
    assert markdown_cell(None) == "None"
