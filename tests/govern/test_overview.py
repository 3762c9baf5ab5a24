"""The overview's markdown table: free text in a cell cannot break the table."""

from __future__ import annotations

import re

from mesh_assets.govern.overview import markdown_cell, markdown_table

_UNESCAPED_BAR = re.compile(r"(?<!\\)(?:\\\\)*\|")


def _cells(line: str) -> int:
    return len(_UNESCAPED_BAR.findall(line)) - 1


def test_a_bar_or_a_line_break_in_a_cell_stays_inside_its_cell() -> None:
    rows: list[dict[str, object]] = [
        {"product": "orders", "owner_team": "sales | ops\nteam", "consumers": "a\\|b"},
        {"product": "customers", "owner_team": "crm\r\n\n| x |", "consumers": None},
    ]

    table = markdown_table(rows, ["product", "owner_team", "consumers"]).splitlines()

    assert len(table) == 2 + len(rows)
    assert [_cells(line) for line in table] == [3] * len(table)
    assert table[2] == r"| orders | sales \| ops team | a\\\|b |"


def test_plain_values_are_shown_as_they_are() -> None:
    assert markdown_cell("sales.orders v2") == "sales.orders v2"
    assert markdown_cell(1200) == "1200"
    assert markdown_cell(None) == "None"
