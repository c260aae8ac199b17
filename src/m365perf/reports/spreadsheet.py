"""Cells for CSV files that people open in a spreadsheet.

Excel, LibreOffice and Google Sheets run a cell that begins with ``=``, ``+``, ``-`` or
``@`` as a formula (CSV injection): an officer's commentary "+3% on last month" shows
``#NAME?``, and a crafted one could reach out to the web. Text that begins so is written
with a leading apostrophe, which spreadsheets show as plain text; numbers stay numbers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["spreadsheet_cell"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """``value`` safe to put in a CSV cell: whole floats as integers, formula-like text
    as text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
