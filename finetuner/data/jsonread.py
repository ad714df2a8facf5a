"""JSON and JSON Lines files as records, read one record at a time up to the row cap: a
top-level list record by record, an object holding one list (read whole, up to a size),
JSON Lines line by line. Every failure is a `DataError` naming the line and column."""

from __future__ import annotations

import io
import json
import re

import pandas as pd

from finetuner.data.bounds import Bounds
from finetuner.errors import DataError

MAX_WRAPPED_JSON_CHARS = 50_000_000  # {"data": [...]} is parsed whole: only this large


def parse_json(text: str, name: str, bounds: Bounds | None = None) -> list:
    bounds = bounds or Bounds.default()
    start = len(text) - len(text.lstrip())
    if text[start:start + 1] == "[":
        return json_array(text, start + 1, name, bounds)
    if len(text) > MAX_WRAPPED_JSON_CHARS:  # read whole: only a moderate size
        raise DataError(
            f"'{name}' is a {len(text) / 1e6:,.0f} MB JSON object; this server reads objects "
            f"of at most {MAX_WRAPPED_JSON_CHARS / 1e6:,.0f} MB.",
            'Save the records as a JSON list ([{"text": ..., "label": ...}, ...]) or as JSON '
            "Lines (.jsonl), which are read record by record.", code="too_large")
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
            if len(value[lists[0]]) > bounds.rows:
                raise bounds.too_many_rows(name, len(value[lists[0]]))
            return value[lists[0]]
        raise DataError(
            f"'{name}' holds a JSON object; a list of records was expected.",
            'Save it as [{"text": ..., "label": ...}, ...].',
            code="bad_json",
        )
    if not isinstance(value, list):
        raise DataError(f"'{name}' holds a single JSON value, not a list of records.")
    return value


_WS = re.compile(r"\s*")


def json_array(text: str, at: int, name: str, bounds: Bounds) -> list:
    """The records of a top-level JSON array, one at a time: stops at the row cap."""
    decoder, records = json.JSONDecoder(), []

    def bad(pos: int, msg: str) -> DataError:
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return DataError(f"'{name}' is not valid JSON: {msg} at line {line}, column {column}.",
                         "Fix the JSON or export the data again.", code="bad_json")

    at = _WS.match(text, at).end()
    if text[at:at + 1] == "]":
        return records
    while True:
        if text[at:at + 1] != "{" and text[at:at + 1] not in ("", "]"):
            raise DataError(
                f"Record {len(records) + 1} of '{name}' is not an object.",
                'Each record must look like {"text": "...", "label": "..."}.',
                code="bad_json")
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise bad(exc.pos, exc.msg) from None
        records.append(value)
        if len(records) > bounds.rows:
            raise bounds.too_many_rows(name)
        at = _WS.match(text, at).end()
        sep = text[at:at + 1]
        if sep == "]":
            rest = _WS.match(text, at + 1).end()
            if rest != len(text):
                raise bad(rest, "Extra data after the list")
            return records
        if sep != ",":
            raise bad(at, "Expecting ',' delimiter")
        at = _WS.match(text, at + 1).end()


def parse_jsonl(text: str, name: str, bounds: Bounds | None = None) -> list:
    bounds = bounds or Bounds.default()
    records = []
    for number, line in enumerate(io.StringIO(text), start=1):  # one line at a time
        if not line.strip():
            continue
        if len(records) >= bounds.rows:
            raise bounds.too_many_rows(name)
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"Line {number} of '{name}' is not valid JSON: {exc.msg} (column {exc.colno}).",
                "Each line of a JSONL file must be one complete JSON object.",
                code="bad_json",
            ) from None
    return records


def records_frame(records: list, name: str, bounds: Bounds | None = None) -> pd.DataFrame:
    bounds = bounds or Bounds.default()
    if not records:
        raise DataError(f"'{name}' holds no records.", "Add labelled examples.", "no_rows")
    keys: set = set()
    for index, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(
                f"Record {index} of '{name}' is a {type(record).__name__}, not an object.",
                'Each record must look like {"text": "...", "label": "..."}.',
                code="bad_json",
            )
        if len(keys) <= bounds.columns:
            keys.update(record)
    bounds.check_columns(name, len(keys))
    bounds.check_cells(name, len(records), len(keys))
    return pd.DataFrame.from_records(records)
