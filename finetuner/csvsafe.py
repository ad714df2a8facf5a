"""CSV files for download that a spreadsheet opens as data, never as formulas.

A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is evaluated by Excel,
LibreOffice and Google Sheets (`=HYPERLINK(...)`, `=cmd|...`): such text cells get a leading
apostrophe, which spreadsheets show as text and hide. Numbers stay numbers: numeric values, and
text that is exactly a number ("-3.5", "+1e3"), are written as they are.
"""

from __future__ import annotations

import csv
import re
import unicodedata

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def safe_cell(value):
    if not isinstance(value, str) or not value:
        return value
    # what a spreadsheet may read as the first character: after spaces, and with full-width
    # forms (U+FF1D and the like) folded to their ASCII twins
    first = unicodedata.normalize("NFKC", value.lstrip(" ")[:2])[:1]
    if not value.startswith(TRIGGERS) and first not in TRIGGERS:
        return value
    if NUMBER.fullmatch(value):
        return value
    return "'" + value


class SafeWriter:
    """`csv.writer` whose every cell (headers included) goes through `safe_cell`."""

    def __init__(self, fh, **kwargs) -> None:
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row) -> None:
        self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
