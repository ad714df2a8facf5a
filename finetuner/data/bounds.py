"""How much of a file a reader may materialise: rows, columns and cells, with the settings
that raise the caps (FINETUNER_MAX_ROWS, FINETUNER_MAX_COLUMNS)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from finetuner.errors import DataError

DEFAULT_MAX_ROWS = 2_000_000
DEFAULT_MAX_COLUMNS = 1_000
# rows x columns: a few kilobytes of short rows under a wide header (pandas fills the missing
# fields) would otherwise become billions of cells; 20 million is 2 million rows of 10 columns
MAX_CELLS = 20_000_000


def _cap(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        value = default
    return value if value > 0 else default


def row_cap() -> int:
    return _cap("FINETUNER_MAX_ROWS", DEFAULT_MAX_ROWS)


def column_cap() -> int:
    return _cap("FINETUNER_MAX_COLUMNS", DEFAULT_MAX_COLUMNS)


@dataclass(frozen=True)
class Bounds:
    """How much of a file a reader may materialise, and the setting that raises it."""

    rows: int
    columns: int
    rows_setting: str = "FINETUNER_MAX_ROWS"

    @classmethod
    def default(cls, rows: int | None = None, rows_setting: str | None = None) -> Bounds:
        return cls(rows or row_cap(), column_cap(), rows_setting or "FINETUNER_MAX_ROWS")

    def too_many_rows(self, name: str, rows: int | None = None) -> DataError:
        count = f"{rows:,} rows" if rows is not None else f"more than {self.rows:,} rows"
        return DataError(
            f"'{name}' has {count}; this server reads at most {self.rows:,} rows per file "
            f"({self.rows_setting}).",
            "Upload a sample of your data, or ask the administrator to raise the cap.",
            code="cap_rows")

    def rows_for(self, columns: int) -> int:
        """Rows that may be read with this many columns (the cell budget)."""
        return max(1, min(self.rows, MAX_CELLS // max(1, columns)))

    def check_cells(self, name: str, rows: int, columns: int, at_least: bool = False) -> None:
        if rows * columns > MAX_CELLS:
            count = f"more than {rows - 1:,}" if at_least else f"{rows:,}"
            raise DataError(
                f"'{name}' has {count} rows of {columns:,} columns: more cells than the "
                f"{MAX_CELLS:,} this server reads per file.",
                "Keep only the columns you need (the text, the label, a second text), or "
                "upload a sample of the rows.", code="cap_cells")

    def check_columns(self, name: str, columns: int) -> None:
        if columns > self.columns:
            raise DataError(
                f"'{name}' has {columns:,} columns; this server reads at most "
                f"{self.columns:,} (FINETUNER_MAX_COLUMNS).",
                "Keep only the columns you need (the text, the label, a second text) and "
                "upload that.", code="cap_columns")
