"""Markdown text the platform writes for people: pull-request comments, CI summaries, overviews.

Lives in `contracts`, the lowest wing that writes markdown tables (the data diff), so `govern`'s reports
use the same escaping.
"""

from __future__ import annotations


def markdown_cell(value: object) -> str:
    """`value` as the text of one markdown table cell.

    Descriptions, owners, names and data values are free text: a `|` would end the cell and a line break
    the row, so a `|` is escaped (and the backslash that could escape it), and every run of whitespace
    becomes one space.
    """
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())
