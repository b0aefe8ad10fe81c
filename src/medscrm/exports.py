"""Cells of files that people open in a spreadsheet (CSV and XLSX exports), safe from formula injection.

A spreadsheet reads a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in some programs, a
tab or a carriage return) as a formula, so a name such as ``=HYPERLINK(...)`` or
``@SUM(1+1)*cmd|' /C calc'!A0`` imported from a source would run when an export is opened. Every
export writes its cells through this module:

* CSV (OWASP, "CSV injection"): a text beginning with one of those characters gets a leading single
  quote, so the spreadsheet shows it as text. A cell that is a plain number (``-3.5``, an E.164
  phone ``+8613800138000``) carries no formula and is written as it is; a masked phone
  ``+86138****8000`` is not a number and gets the quote.
* XLSX: text is always stored as a string cell (never a formula) with Excel's quote prefix; numbers
  stay numbers, negative ones included.

The module depends on nothing else of medscrm, so any layer may use it.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
#: A plain decimal number: a spreadsheet reads it as a number, never as a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """``value`` as written to a CSV cell: None stays empty; anything whose text begins with a
    formula character gets a leading single quote, unless it is a plain number."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if text.startswith(FORMULA_LEADS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return value


def csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row (column -> value) with every value passed through :func:`csv_cell`."""
    return {k: csv_cell(v) for k, v in row.items()}


class SafeDictWriter(csv.DictWriter):
    """:class:`csv.DictWriter` whose rows pass through :func:`csv_cell` (the header is ours, not data)."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow(csv_row(rowdict))

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for r in rowdicts:
            self.writerow(r)


def xlsx_cell(ws: Any, value: Any) -> Any:
    """An openpyxl write-only cell for ``value``: numbers, booleans and dates keep their type; any
    other value is stored as a string cell, never as a formula, and a text beginning with a formula
    character also gets Excel's quote prefix (it stays text when a person edits the cell)."""
    # lazy: off the server's start-up path
    from openpyxl.cell import WriteOnlyCell

    if value is None or isinstance(value, bool | int | float | Decimal | dt.date | dt.datetime):
        return WriteOnlyCell(ws, value=value)
    text = value if isinstance(value, str) else str(value)
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # openpyxl would otherwise store a text beginning with "=" as a formula
    if text.startswith(FORMULA_LEADS):
        cell.quotePrefix = True
    return cell


def write_xlsx(
    fh: IO[bytes], columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, sheet: str = "export"
) -> None:
    """One sheet: the header, then the rows (extra keys ignored), every cell through :func:`xlsx_cell`."""
    # lazy: off the server's start-up path
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append([xlsx_cell(ws, c) for c in columns])
    for r in rows:
        ws.append([xlsx_cell(ws, r.get(c)) for c in columns])
    wb.save(fh)


__all__ = ["FORMULA_LEADS", "SafeDictWriter", "csv_cell", "csv_row", "write_xlsx", "xlsx_cell"]
