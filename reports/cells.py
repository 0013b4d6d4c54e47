"""Text from people in spreadsheets and CSV files: shown as text, never run as a formula.

openpyxl turns every ``str`` that starts with ``=`` into a formula, so a note typed as
``=HYPERLINK("http://x","y")`` would become a live link in the office's workbook.
:func:`text_cell` and :func:`set_text` store such a value as a plain string cell
(``data_type = "s"``); only the builders' own formulas go through :func:`formula_cell`.

A CSV file has no cell types: a spreadsheet program opening it runs any field that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula (CSV or
formula injection, OWASP). :func:`csv_text` prefixes such a text field with a single
quote, as OWASP recommends. Only text is changed: a field the office needs as a number
(a sequence number, a version) is written as a Python ``int`` and left alone, so it stays
a number in the spreadsheet; a text that merely looks like a number ("-5") is still text
and gets the quote.
"""
from __future__ import annotations

from typing import Any, Iterable

from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def set_text(cell: Cell, value: Any) -> Cell:
    """Put ``value`` in ``cell``; a ``str`` always stays a string, never a formula."""
    cell.value = value
    if isinstance(value, str) and cell.data_type == "f":
        cell.data_type = "s"
    return cell


def text_cell(ws: Worksheet, row: int, column: int, value: Any) -> Cell:
    """``ws.cell(row, column, value)`` for values that may come from people."""
    return set_text(ws.cell(row=row, column=column), value)


def formula_cell(ws: Worksheet, row: int, column: int, formula: str) -> Cell:
    """One of the builder's own formulas (never text typed by a person)."""
    if not formula.startswith("="):
        raise ValueError(f"not a formula: {formula!r}")
    return ws.cell(row=row, column=column, value=formula)


def append_text_row(ws: Worksheet, values: Iterable[Any]) -> int:
    """``ws.append(values)`` with every string kept as text; returns the row number."""
    values = list(values)
    ws.append(values)
    # the row append() just wrote (``ws.max_row`` scans every cell of the sheet: a
    # loop of appends was quadratic)
    row = ws._current_row  # noqa: SLF001
    for column, value in enumerate(values, start=1):
        if isinstance(value, str):
            set_text(ws.cell(row=row, column=column), value)
    return row


def csv_text(value: Any) -> Any:
    """A CSV field with a leading formula character neutralised (text only)."""
    if isinstance(value, str) and value.startswith(CSV_TRIGGERS):
        return "'" + value
    return value
