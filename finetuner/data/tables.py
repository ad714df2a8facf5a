"""Reading user files into tables: what format, what encoding, what delimiter.

Owns: format detection by extension (CSV, TSV, JSON, JSONL, Parquet), encodings (UTF-8 with or
without BOM, then cp1252 / Latin-1 with a warning), binary files refused, delimiter sniffing,
ragged rows and bad JSON named by line, and huge cells clipped. Every failure is a `DataError`
that names the file, the row and the fix. Imports neither torch nor transformers.

Bounded: a reader stops at the row cap (FINETUNER_MAX_ROWS, or the caller's) without
materialising more rows (Parquet: its metadata first, then record batches; CSV: `nrows`; JSON
and JSONL: record by record), refuses more than FINETUNER_MAX_COLUMNS columns before parsing
rows, checks duplicate names in one pass, and turns deep nesting and any parser exception into a
sentence about the file.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from finetuner.data.bounds import Bounds
from finetuner.data.jsonread import parse_json, parse_jsonl, records_frame
from finetuner.data.splits import Finding
from finetuner.errors import DataError

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MAX_CELL_CHARS = 100_000  # longer cells are clipped: the tokenizer keeps only max_length tokens
MAX_DECODED_BYTES = 2 << 30  # what a Parquet file may decode to (dictionary pages expand)
@dataclass
class Table:
    """A file read into memory, with what was noticed while reading it."""

    frame: pd.DataFrame
    path: str
    fmt: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).name




def file_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        known = ", ".join(sorted({s for s in TABLE_FORMATS}))
        raise DataError(
            f"'{Path(path).name}' has the extension '{suffix or '(none)'}', which is not a "
            "data format this tool reads.",
            f"Save it as one of: {known}.",
            code="unknown_extension",
        )
    return TABLE_FORMATS[suffix]


def read_bytes(path: str | Path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise DataError(f"The file '{path}' does not exist.", "Check the path.", "missing_file")
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a data file.", "Pick a file.", "missing_file")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(
            f"'{path.name}' is empty.", "Upload a file with a header row and data rows.", "empty"
        )
    return data


def looks_binary(data: bytes) -> bool:
    """True for images, archives, spreadsheets and other non-text bytes."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12))
    return control > max(8, len(head) // 100)


def decode_text(data: bytes, name: str, findings: list[Finding]) -> str:
    if looks_binary(data):
        hint = " It looks like an Excel workbook." if data[:2] == b"PK" else ""
        raise DataError(
            f"'{name}' is not a text file (it contains binary data).{hint}",
            "Export your data as CSV, TSV, JSON, JSONL or Parquet and upload that.",
            code="binary",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        findings.append(
            Finding(
                "warning",
                "encoding",
                f"'{name}' is not valid UTF-8 (first bad byte on line {bad_line}); it was read "
                f"as {encoding}. Check accented characters in the preview, and save the file "
                "as UTF-8 to be sure.",
            )
        )
        return text
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def read_table(path: str | Path, fmt: str | None = None, bounds: Bounds | None = None) -> Table:
    """Read a CSV, TSV, JSON, JSONL or Parquet file into a DataFrame of strings/objects, at
    most `bounds` (default: FINETUNER_MAX_ROWS rows, FINETUNER_MAX_COLUMNS columns)."""
    path = Path(path)
    fmt = fmt or file_format(path)
    bounds = bounds or Bounds.default()
    data = read_bytes(path)
    findings: list[Finding] = []
    try:
        frame = _parse(data, fmt, path.name, bounds, findings)
    except DataError:
        raise
    except RecursionError:
        raise DataError(f"'{path.name}' is nested too deeply to be a table of records.",
                        'Each record must be flat, like {"text": "...", "label": "..."}.',
                        code="bad_json") from None
    except MemoryError:
        raise DataError(f"'{path.name}' is too large to read on this server.",
                        "Upload a smaller sample of your data.", code="too_large") from None
    except Exception as exc:  # noqa: BLE001 - a parser's own failure becomes a sentence
        raise DataError(
            f"'{path.name}' could not be read as {fmt.upper()} ({type(exc).__name__}).",
            "Check that the file is complete and saved in that format (UTF-8 text for CSV, "
            "TSV, JSON and JSONL), or export it again.", code="unreadable") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(
            f"'{path.name}' has a header but no data rows.",
            "Add labelled examples below the header.",
            code="no_rows",
        )
    _clip_huge_cells(frame, path.name, findings)
    return Table(frame=frame, path=str(path), fmt=fmt, findings=findings)


def _parse(data: bytes, fmt: str, name: str, bounds: Bounds,
           findings: list[Finding]) -> pd.DataFrame:
    if fmt == "parquet":
        return _read_parquet(data, name, bounds)
    text = decode_text(data, name, findings)
    if fmt in ("csv", "tsv"):
        return _read_delimited(text, name, "\t" if fmt == "tsv" else None, bounds)
    records = (parse_json(text, name, bounds) if fmt == "json"
               else parse_jsonl(text, name, bounds))
    return records_frame(records, name, bounds)


def _read_parquet(data: bytes, name: str, bounds: Bounds) -> pd.DataFrame:
    """Metadata first (rows and columns refused before any is decoded), then record batches:
    a few kilobytes of dictionary-encoded values never expand past the caps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise DataError(
            f"'{name}' could not be read as Parquet ({type(exc).__name__}).",
            "Check that it is a complete Parquet file, or upload a CSV instead.",
            code="bad_parquet",
        ) from None
    bounds.check_columns(name, meta.num_columns)
    if meta.num_rows > bounds.rows:
        raise bounds.too_many_rows(name, meta.num_rows)
    bounds.check_cells(name, meta.num_rows, meta.num_columns)
    batches, rows, decoded = [], 0, 0
    try:
        for batch in parquet.iter_batches(batch_size=4096):
            rows += batch.num_rows
            decoded += batch.nbytes
            if rows > bounds.rows:  # metadata that lied
                raise bounds.too_many_rows(name)
            if decoded > MAX_DECODED_BYTES:  # a short value repeated: pages that expand
                raise DataError(
                    f"'{name}' holds more than {MAX_DECODED_BYTES >> 30} GB of data once "
                    "decoded; this server reads less per file.",
                    "Upload a sample of your data, or clip very long texts.",
                    code="too_large")
            batches.append(batch)
        schema = parquet.schema_arrow
        return pa.Table.from_batches(batches, schema=schema).to_pandas()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(
            f"'{name}' could not be read as Parquet ({type(exc).__name__}).",
            "Check that it is a complete Parquet file, or upload a CSV instead.",
            code="bad_parquet",
        ) from None


def sniff_delimiter(text: str) -> str:
    """The header row decides when exactly one delimiter occurs in it most (cells such as
    multi-label 'a|b' or 'a;b' must not win over the commas between the columns)."""
    sample = text[:65536]
    header = sample[:sample.find("\n")] if "\n" in sample else sample
    counts = {d: header.count(d) for d in ",\t;|"}
    ranked = sorted(counts.values(), reverse=True)
    if ranked[0] and ranked[0] > ranked[1]:
        best = max(counts, key=counts.get)
        widths = {len(line.split(best)) for line in sample.splitlines()[1:20] if line.strip()}
        if not widths or min(widths) >= ranked[0] + 1 or '"' in sample[:4096]:
            return best
    try:  # the Sniffer's regular expressions are quadratic in quotes: a small sample
        return csv.Sniffer().sniff(sample[:4096], delimiters=",\t;|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in ",\t;|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _read_delimited(text: str, name: str, delimiter: str | None,
                    bounds: Bounds | None = None) -> pd.DataFrame:
    bounds = bounds or Bounds.default()
    delimiter = delimiter or sniff_delimiter(text)
    # the header row first: columns are capped before pandas builds any, and a repeated name
    # is refused (pandas renames "text,text" to text, text.1: training would silently read one)
    end = text.find("\n")
    header = next(csv.reader(io.StringIO(text if end < 0 else text[:end]),
                             delimiter=delimiter), [])
    bounds.check_columns(name, len(header))
    rows_allowed = bounds.rows_for(len(header))
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
            engine="c",
            nrows=rows_allowed + 1,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"'{name}' holds no columns.", "Add a header row.", "empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(_ragged_message(str(exc), name, delimiter), code="ragged_rows") from None
    if len(frame) > bounds.rows:
        raise bounds.too_many_rows(name)
    if len(frame) > rows_allowed:
        bounds.check_cells(name, len(frame), len(header), at_least=True)
    names = [h.strip() for h in header]
    dup = sorted(n for n, k in Counter(names).items() if n and k > 1)
    if dup or frame.columns.duplicated().any():
        dup = dup or sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(f"'{name}' has two or more columns named {', '.join(map(repr, dup))}.",
                        "Rename them so that every column has its own name.", "dup_cols")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed and len(unnamed) == len(frame.columns):
        raise DataError(f"'{name}' has no header row.", "Add a header row with column names.")
    return frame


def _ragged_message(raw: str, name: str, delimiter: str) -> str:
    shown = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", raw)
    if match:
        expected, line, saw = match.groups()
        return (
            f"Line {line} of '{name}' has {saw} fields but the header has {expected} "
            f"(the separator is {shown}). A {shown} inside a text must be quoted, e.g. "
            '"great, really great". Fix that line or save the file with quoting.'
        )
    return f"'{name}' could not be parsed as a {shown}-separated table: {raw}"


def _clip_huge_cells(frame: pd.DataFrame, name: str, findings: list[Finding]) -> None:
    for column in frame.columns:
        series = frame[column]
        if series.dtype != object and str(series.dtype) not in ("str", "string"):
            continue
        lengths = series.map(lambda v: len(v) if isinstance(v, str) else 0)
        huge = lengths > MAX_CELL_CHARS
        if huge.any():
            rows = [int(i) + 2 for i in huge[huge].index[:5]]
            frame.loc[huge, column] = series[huge].str.slice(0, MAX_CELL_CHARS)
            findings.append(
                Finding(
                    "warning",
                    "huge_cell",
                    f"{int(huge.sum())} cell(s) of column '{column}' in '{name}' hold more "
                    f"than {MAX_CELL_CHARS:,} characters (longest {int(lengths.max()):,}; "
                    f"rows {rows}). They were clipped; the model only reads the first "
                    "max_length tokens anyway. Split long documents if all of it matters.",
                )
            )
