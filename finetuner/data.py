"""Reading user files into tables, splitting them, and the shared parts of the data report.

Owns: format detection (CSV, TSV, JSON, JSONL, Parquet), encodings (UTF-8 with or without BOM,
then cp1252 / Latin-1 with a warning), delimiter sniffing, seeded stratified or grouped splits,
duplicate and leakage counts, and token-length statistics. Task modules (`finetuner.tasks`)
build on these. Every failure is a `DataError` that names the file, the row and the fix.
Imports neither torch nor transformers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .errors import DataError

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
TOKEN_SAMPLE_ROWS = 20_000  # the data check counts tokens on at most this many examples


@dataclass
class Finding:
    """One line of the data report: level is 'warning' or 'info'."""

    level: str
    code: str
    message: str


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


# ---------------------------------------------------------------------------- reading


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


def read_table(path: str | Path, fmt: str | None = None) -> Table:
    """Read a CSV, TSV, JSON, JSONL or Parquet file into a DataFrame of strings/objects."""
    path = Path(path)
    fmt = fmt or file_format(path)
    data = read_bytes(path)
    findings: list[Finding] = []
    if fmt == "parquet":
        frame = _read_parquet(data, path.name)
    else:
        text = decode_text(data, path.name, findings)
        if fmt in ("csv", "tsv"):
            frame = _read_delimited(text, path.name, "\t" if fmt == "tsv" else None)
        elif fmt == "json":
            frame = _records_frame(_parse_json(text, path.name), path.name)
        else:
            frame = _records_frame(_parse_jsonl(text, path.name), path.name)
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(
            f"'{path.name}' has a header but no data rows.",
            "Add labelled examples below the header.",
            code="no_rows",
        )
    _clip_huge_cells(frame, path.name, findings)
    return Table(frame=frame, path=str(path), fmt=fmt, findings=findings)


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise DataError(
            f"'{name}' could not be read as Parquet ({type(exc).__name__}: {exc}).",
            "Check that it is a complete Parquet file, or upload a CSV instead.",
            code="bad_parquet",
        ) from None


def sniff_delimiter(text: str) -> str:
    """The header row decides when exactly one delimiter occurs in it most (cells such as
    multi-label 'a|b' or 'a;b' must not win over the commas between the columns)."""
    sample = text[:65536]
    header = sample.splitlines()[0] if sample else ""
    counts = {d: header.count(d) for d in ",\t;|"}
    ranked = sorted(counts.values(), reverse=True)
    if ranked[0] and ranked[0] > ranked[1]:
        best = max(counts, key=counts.get)
        widths = {len(line.split(best)) for line in sample.splitlines()[1:20] if line.strip()}
        if not widths or min(widths) >= ranked[0] + 1 or '"' in sample[:4096]:
            return best
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in ",\t;|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _read_delimited(text: str, name: str, delimiter: str | None) -> pd.DataFrame:
    delimiter = delimiter or sniff_delimiter(text)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"'{name}' holds no columns.", "Add a header row.", "empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(_ragged_message(str(exc), name, delimiter), code="ragged_rows") from None
    # pandas renames a repeated header ("text,text" becomes text, text.1), so read the header
    # row itself: two columns of one name would silently train on only one of them
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=delimiter), [])
    names = [h.strip() for h in header]
    dup = sorted({n for n in names if n and names.count(n) > 1})
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


def _parse_json(text: str, name: str) -> list:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg.startswith("Extra data"):
            hint = " It may be JSON Lines (one record per line): rename it to .jsonl."
        raise DataError(
            f"'{name}' is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            f"{hint}",
            "Fix the JSON or export the data again.",
            code="bad_json",
        ) from None
    if isinstance(value, dict):
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) == 1:
            return value[lists[0]]
        raise DataError(
            f"'{name}' holds a JSON object; a list of records was expected.",
            'Save it as [{"text": ..., "label": ...}, ...].',
            code="bad_json",
        )
    if not isinstance(value, list):
        raise DataError(f"'{name}' holds a single JSON value, not a list of records.")
    return value


def _parse_jsonl(text: str, name: str) -> list:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"Line {number} of '{name}' is not valid JSON: {exc.msg} (column {exc.colno}).",
                "Each line of a JSONL file must be one complete JSON object.",
                code="bad_json",
            ) from None
    return records


def _records_frame(records: list, name: str) -> pd.DataFrame:
    if not records:
        raise DataError(f"'{name}' holds no records.", "Add labelled examples.", "no_rows")
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(
                f"Record {index} of '{name}' is a {type(record).__name__}, not an object.",
                'Each record must look like {"text": "...", "label": "..."}.',
                code="bad_json",
            )
    return pd.DataFrame.from_records(records)


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


# ---------------------------------------------------------------------------- values


def clean_text(value: object) -> str:
    """A cell as text; missing values become ''."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def clean_label(value: object) -> str:
    """A label as its name: 1, 1.0 and '1' all become '1'; missing becomes ''."""
    if value is None or isinstance(value, (list, dict)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def sort_labels(labels: Sequence[str]) -> list[str]:
    """Numbers in numeric order, otherwise alphabetical."""
    unique = sorted(set(labels))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


def require_columns(frame: pd.DataFrame, names: Sequence[str | None], file_name: str) -> None:
    missing = [n for n in names if n and n not in frame.columns]
    if missing:
        raise DataError(
            f"Column '{missing[0]}' is not in '{file_name}'.",
            f"The columns are: {', '.join(map(str, frame.columns))}.",
            code="missing_column",
        )


# ---------------------------------------------------------------------------- splitting


def split_indices(
    n: int,
    fractions: tuple[float, float],
    seed: int,
    strata: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> tuple[list[int], list[int], list[int]]:
    """Seeded train / validation / test indices.

    With `groups`, whole groups move together, so that no group (identical texts, a paragraph,
    a document) sits in two parts. With `strata`, each class (the stratum of a group's first
    member) is cut in the same proportions; every class with at least 3 groups lands in all
    three parts. A zero fraction gives an empty part.
    """
    val_frac, test_frac = fractions
    keys = list(groups) if groups is not None else list(range(n))
    members: dict = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    buckets: dict[str, list] = {}
    for key, idx in members.items():
        buckets.setdefault(strata[idx[0]] if strata is not None else "", []).append(key)
    rng = random.Random(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for stratum in sorted(buckets):
        units = sorted(buckets[stratum], key=str)
        rng.shuffle(units)
        for part, chosen in zip(parts, _cut(units, val_frac, test_frac)):
            part.extend(i for unit in chosen for i in members[unit])
    return sorted(parts[0]), sorted(parts[1]), sorted(parts[2])


def _cut(items: list, val_frac: float, test_frac: float) -> tuple[list, list, list]:
    n = len(items)
    n_test = round(n * test_frac)
    n_val = round(n * val_frac)
    if n >= 3:  # keep every class in every part when it can be done
        n_test = max(n_test, 1) if test_frac > 0 else 0
        n_val = max(n_val, 1) if val_frac > 0 else 0
    while n - n_test - n_val < 1 and (n_test or n_val):
        if n_test >= n_val and n_test:
            n_test -= 1
        else:
            n_val -= 1
    test = items[:n_test]
    val = items[n_test : n_test + n_val]
    return items[n_test + n_val :], val, test


# ---------------------------------------------------------------------------- report parts


def duplicate_count(keys: Sequence[str]) -> int:
    counts = Counter(keys)
    return sum(c - 1 for c in counts.values() if c > 1)


def shared_count(train_keys: Sequence[str], other_keys: Sequence[str]) -> int:
    seen = set(train_keys)
    return sum(1 for k in other_keys if k in seen)


def leakage_findings(train_keys: Sequence[str], splits: dict, key, rows: str,
                     appear: str = "also appear in the training data") -> tuple[dict, list]:
    """Counts per held-out split of examples (by `key`) that are also training examples, and
    a warning for each split that has any.

    `rows` names the examples ("row(s)", "sentence(s)"); `appear` says how they repeat."""
    counts, findings = {}, []
    for split in ("validation", "test"):
        n = counts[split] = shared_count(train_keys, [key(e) for e in splits[split]])
        if n:
            findings.append(Finding(
                "warning", "leakage",
                f"{n} {split} {rows} {appear}, so {split} scores will be too optimistic. "
                f"Remove them from the {split} file."))
    return counts, findings


def sample_indices(n: int, limit: int = TOKEN_SAMPLE_ROWS, seed: int = 0) -> list[int]:
    """All of range(n), or a seeded random `limit` of them in order: the data check tokenises
    a bounded amount however large the file is."""
    if n <= limit:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def token_sample(items: Sequence, limit: int = TOKEN_SAMPLE_ROWS, seed: int = 0) -> list:
    return [items[i] for i in sample_indices(len(items), limit, seed)]


def length_stats(lengths: Sequence[int], max_length: int, of: int | None = None) -> dict:
    """Token-length percentiles and the share of examples cut at max_length; `of`: how many
    examples there are when `lengths` is a sample of them (the counts are then estimates)."""
    if not lengths:
        return {}
    ordered = sorted(lengths)

    def pct(p: float) -> int:
        return int(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))])

    truncated = sum(1 for x in lengths if x > max_length)
    return {
        "p50": pct(50),
        "p90": pct(90),
        "p95": pct(95),
        "p99": pct(99),
        "max": int(ordered[-1]),
        "mean": round(sum(ordered) / len(ordered), 1),
        "max_length": max_length,
        "truncated": truncated,
        "truncated_share": round(truncated / len(lengths), 4),
        **({"sample": len(lengths), "of": of,
            "truncated": round(truncated / len(lengths) * of)}
           if of and of > len(lengths) else {}),
    }


def sample_note(stats: dict) -> str:
    """' (from a random sample of 20,000 of 1,200,000 examples)' when the statistics are."""
    if not stats or not stats.get("sample"):
        return ""
    return f" (from a random sample of {stats['sample']:,} of {stats['of']:,} examples)"


def truncation_finding(stats: dict) -> Finding | None:
    if not stats or stats["truncated"] == 0:
        return None
    share = stats["truncated_share"]
    level = "warning" if share >= 0.05 else "info"
    about = "About " if stats.get("sample") else ""
    return Finding(
        level,
        "truncation",
        f"{about}{stats['truncated']:,} example(s) ({share:.1%}) are longer than max_length "
        f"{stats['max_length']} tokens and will be cut (the longest has {stats['max']})"
        f"{sample_note(stats)}. "
        + ("Raise max_length (costs time) if the end of long texts matters."
           if level == "warning" else "That few is harmless."),
    )


@dataclass
class DataReport:
    """What the data checks found; JSON-serialisable, rendered by the CLI and the app."""

    task: str
    columns: dict
    rows: dict
    dropped: dict = field(default_factory=dict)
    labels: list = field(default_factory=list)
    label_counts: dict = field(default_factory=dict)
    token_lengths: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.level == "warning"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> DataReport:
        raw = dict(raw)
        raw["findings"] = [Finding(**f) for f in raw.get("findings", [])]
        return cls(**raw)

    def summary_lines(self) -> list[str]:
        rows = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        lines = [f"Rows: {rows}"]
        cols = ", ".join(f"{role}='{col}'" for role, col in self.columns.items() if col)
        lines.append(f"Columns: {cols}")
        if self.dropped:
            lines.append("Dropped: " + ", ".join(f"{n} {why}" for why, n in self.dropped.items()))
        if self.label_counts.get("train"):
            counts = ", ".join(f"{k}: {v}" for k, v in self.label_counts["train"].items())
            lines.append(f"Labels (train): {counts}")
        if self.token_lengths:
            t = self.token_lengths
            # tasks that read long inputs in overlapping windows (QA) cut nothing
            fate = "read in windows" if "windows_mean" in t else "cut"
            lines.append(
                f"Tokens: median {t['p50']}, p95 {t['p95']}, max {t['max']}; "
                f"{t['truncated_share']:.1%} {fate} at {t['max_length']}{sample_note(t)}"
            )
        for finding in self.findings:
            lines.append(f"{finding.level.upper()}: {finding.message}")
        return lines


TokenCounter = Callable[[list[str], list[str] | None], list[int]]


def column_by_name(columns: Sequence[str], names: Sequence[str], taken: Sequence[str] = ()
                   ) -> str | None:
    """The first column whose lower-cased name is one of `names` (in their order), skipping
    columns already `taken`; None when none matches."""
    lower = {str(c).lower(): c for c in columns if c not in taken}
    return next((lower[n] for n in names if n in lower), None)
