"""The pipeline shared by every task that reads one text (or a pair of texts) per table row:
single-label, multi-label and numeric (regression) targets.

`prepare_rows(config, kind, ...)` runs read → columns → examples → split → checks → report
once; a `RowKind` says only what differs: how a label cell is read, how rows are stratified
when the data is split, which checks and which report lines the kind adds. Column detection,
dropped-row accounting, duplicates, leakage between splits and token-length statistics
(with the long-document windows) live here. No torch, no transformers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from finetuner.config import RunConfig
from finetuner.data.splits import (
    DataReport,
    Finding,
    TokenCounter,
    clean_label,
    clean_text,
    column_by_name,
    duplicate_count,
    leakage_findings,
    length_stats,
    require_columns,
    token_sample,
    truncation_finding,
)
from finetuner.data.tables import Table, read_table
from finetuner.english import plural
from finetuner.errors import DataError
from finetuner.tasks import PreparedData
from finetuner.tasks.pipeline import hold_out, missing_parts, read_splits, require_held_out

LABEL_NAMES = ("label", "labels", "class", "category", "categories", "target", "sentiment",
               "intent", "topic", "topics", "tag", "tags", "polarity", "gold_label", "y",
               "rating", "score", "classification")
TEXT_NAMES = ("text", "sentence", "review", "content", "body", "message", "document",
              "comment", "tweet", "utterance", "description", "clause", "sms", "email",
              "headline", "title", "abstract", "query", "question", "excerpt", "passage")
PAIR_NAMES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
              ("text_a", "text_b"), ("text1", "text2"), ("question", "sentence"),
              ("query", "passage"), ("question", "answer"), ("claim", "evidence"))
MISSING = object()  # a label cell that cannot be used: the row is dropped
LONG_DOCUMENTS_AUTO_SHARE = 0.05  # windows when at least this share of texts is cut


@dataclass(frozen=True)
class RowKind:
    """What a kind of row task does differently.

    - `read_labels(frame, columns) -> list`: one label value per row (MISSING drops the row,
      counted under `missing_label`).
    - `label_names(train) -> list[str]`: the labels (or the target's name) learned from train.
    - `stratum(example) -> str`: the class a row is split by (each class in every split).
    - `check_train(train, splitting)`: raise DataError for training rows this kind cannot
      learn from (before the split; `splitting` when validation or test is cut from them).
    - `check(splits, labels, config)`: the same for the splits (labels unseen in training).
    - `report(splits, labels, findings) -> (label_counts, extra)`: its report lines.
    - `options(splits, labels, config, report) -> dict`: what training and prediction need to
      know about the data (thresholds, target scale...), kept in the report and the export.
    """

    name: str
    read_labels: Callable
    label_names: Callable
    stratum: Callable
    check_train: Callable
    check: Callable
    report: Callable
    options: Callable | None = None
    missing_label: str = "empty label"
    windows: bool = True  # long single texts may be read in windows


# ---------------------------------------------------------------------------- detection


def _mean_len(series: pd.Series) -> float:
    sample = series.head(500).map(clean_text)
    return float(sample.map(len).mean()) if len(sample) else 0.0


def looks_numeric(series: pd.Series) -> bool:
    sample = series.head(200).map(clean_text)
    sample = sample[sample != ""]
    return len(sample) > 0 and pd.to_numeric(sample, errors="coerce").notna().mean() > 0.95


def detect_columns(frame: pd.DataFrame) -> tuple[dict, list[Finding]]:
    """Guess text, pair and label columns; findings say what was guessed and why."""
    columns = [str(c) for c in frame.columns]
    findings: list[Finding] = []
    text = pair = None
    for first, second in PAIR_NAMES:
        a, b = column_by_name(columns, (first,)), column_by_name(columns, (second,))
        if a and b:
            text, pair = a, b
            break
    label = column_by_name([c for c in columns if c not in (text, pair)], LABEL_NAMES)
    if label is None:
        label = _guess_label(frame, [c for c in columns if c not in (text, pair)], findings)
    if text is None:
        text = column_by_name([c for c in columns if c != label], TEXT_NAMES)
    if text is None:
        candidates = [c for c in columns if c != label and not looks_numeric(frame[c])]
        if candidates:
            text = max(candidates, key=lambda c: _mean_len(frame[c]))
            if len(candidates) > 1:
                findings.append(Finding(
                    "info", "guessed_text",
                    f"Guessed '{text}' as the text column (it has the longest values; other "
                    f"candidates: {', '.join(c for c in candidates if c != text)}).",
                ))
    return {"text": text, "text_pair": pair, "label": label}, findings


def _guess_label(frame: pd.DataFrame, columns: list[str], findings: list[Finding]) -> str | None:
    n = len(frame)
    scored = []
    for column in columns:
        values = frame[column].map(clean_label)
        unique = values[values != ""].nunique()
        if 2 <= unique <= max(2, min(100, n // 2)) and _mean_len(frame[column]) <= 40:
            scored.append((unique, column))
    if not scored:
        return None
    scored.sort()
    if len(scored) > 1:
        others = ", ".join(c for _, c in scored[1:])
        findings.append(Finding(
            "info", "guessed_label",
            f"Guessed '{scored[0][1]}' as the label column (fewest distinct values; other "
            f"candidates: {others}).",
        ))
    return scored[0][1]


def resolve_columns(table: Table, config: RunConfig, findings: list[Finding],
                    detect_label: Callable | None = None) -> dict:
    """The chosen columns, detected where not given; `detect_label(frame, taken)` overrides
    the label's detection (multi-label finds several 0/1 columns)."""
    data = config.data
    given = {"text": data.text_column, "text_pair": data.text_pair_column,
             "label": data.label_column}
    label_parts = [p.strip() for p in (data.label_column or "").split(",") if p.strip()]
    require_columns(table.frame, [given["text"], given["text_pair"], *label_parts], table.name)
    detected, notes = detect_columns(table.frame)
    if detect_label is not None and not given["label"]:
        detected["label"] = detect_label(table.frame, detected) or detected["label"]
    columns = {role: given[role] or detected[role] for role in given}
    if data.text_column and not data.text_pair_column:
        columns["text_pair"] = None  # a chosen text column means single text unless told
    findings.extend(n for n in notes if not given[n.code.split("_", 1)[1]])
    all_cols = ", ".join(map(str, table.frame.columns))
    if not columns["label"]:
        raise DataError(
            f"Could not find a label column in '{table.name}'.",
            f"Name the column that holds the answers to learn (the columns are: {all_cols}).",
            code="no_label_column",
        )
    if not columns["text"]:
        raise DataError(
            f"Could not find a text column in '{table.name}'.",
            f"Name the column that holds the texts (the columns are: {all_cols}).",
            code="no_text_column",
        )
    if set(label_columns(columns)) & {columns["text"], columns["text_pair"]}:
        raise DataError(
            f"'{columns['label']}' is chosen as both text and label column.",
            "Pick different columns for the text and the label.",
            code="same_column",
        )
    return columns


def label_columns(columns: dict) -> list[str]:
    """The label column, or the several 0/1 columns of a multi-label table ("a,b,c")."""
    return [p for p in (columns.get("label") or "").split(",") if p]


# ---------------------------------------------------------------------------- reading


def read_examples(table: Table, columns: dict, dropped: Counter, kind: RowKind) -> list[dict]:
    """Rows as example dicts {"text", "pair"?, "label", "row"}; unusable rows are counted."""
    require_columns(table.frame, [columns["text"], columns["text_pair"],
                                  *label_columns(columns)], table.name)
    frame = table.frame
    texts = frame[columns["text"]].map(clean_text).tolist()
    pairs = frame[columns["text_pair"]].map(clean_text).tolist() if columns["text_pair"] else None
    labels = kind.read_labels(frame, columns)
    if not any(texts):
        raise DataError(
            f"Every text in column '{columns['text']}' of '{table.name}' is empty.",
            "Choose the column that holds the texts.",
            code="all_texts_empty",
        )
    out = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        pair = pairs[i] if pairs is not None else None
        if not text or (pairs is not None and not pair):
            dropped["empty text"] += 1
        elif label is MISSING:
            dropped[kind.missing_label] += 1
        else:
            example = {"text": text, "label": label, "row": i + 2}
            if pairs is not None:
                example["pair"] = pair
            out.append(example)
    if not out:
        raise DataError(
            f"No row of '{table.name}' has both a text and a usable label.",
            f"Check that '{columns['label']}' is the label column and that it is filled in.",
            code="no_rows",
        )
    return out


def key(example: dict) -> str:
    return example["text"] + "\x1f" + example.get("pair", "")


def prepare_rows(config: RunConfig, kind: RowKind, count_tokens: TokenCounter | None = None,
                 check_rows=None, detect_label: Callable | None = None) -> PreparedData:
    """Read, split, check and report a table task (see RowKind)."""
    data = config.data
    findings: list[Finding] = []
    table = read_table(data.train_file)
    findings += table.findings
    columns = resolve_columns(table, config, findings, detect_label)
    dropped: Counter = Counter()
    tables = {data.train_file: table}

    def read(path: str) -> list[dict]:
        if path not in tables:
            tables[path] = read_table(path)
            findings.extend(tables[path].findings)
        return read_examples(tables[path], columns, dropped, kind)

    splits = read_splits(data, read)
    train = splits["train"]
    kind.check_train(train, any(missing_parts(splits, data)))
    hold_out(splits, data, config.training.seed, strata=[kind.stratum(e) for e in train],
             groups=[key(e) for e in train])
    labels = kind.label_names(splits["train"])
    kind.check(splits, labels, config)
    require_held_out(splits, "Too few rows to hold out validation and test examples.",
                     "Add data (at least a few examples per label) or give validation and test "
                     "files.", check_rows)
    report = _report(splits, columns, labels, dropped, findings, config, count_tokens, kind)
    return PreparedData(splits["train"], splits["validation"], splits["test"], labels, report)


# ---------------------------------------------------------------------------- report


def _report(splits, columns, labels, dropped, findings, config, count_tokens,
            kind: RowKind) -> DataReport:
    findings = list(findings)
    if dropped:
        total = sum(dropped.values())
        why = " and ".join(f"{n} with {k}" for k, n in dropped.items())
        findings.append(Finding("warning", "dropped",
                                f"Dropped {plural(total, 'row')}: {why}."))
    counts, extra = kind.report(splits, labels, findings)
    train_keys = [key(e) for e in splits["train"]]
    dups = duplicate_count(train_keys)
    if dups:
        by_key: dict[str, set] = {}
        for e in splits["train"]:
            by_key.setdefault(key(e), set()).add(_hashable(e["label"]))
        conflicts = sum(1 for v in by_key.values() if len(v) > 1)
        more = (f" {plural(conflicts, 'text')} appear with different labels, which the "
                "model cannot "
                "get right; fix those labels." if conflicts else "")
        findings.append(Finding("warning" if conflicts else "info", "duplicates",
                                f"{plural(dups, 'training row')} repeat an earlier text."
                                f"{more}"))
    leaks, found = leakage_findings(train_keys, splits, key, "row")
    findings += found
    stats: dict = {}
    options: dict = {}
    if count_tokens is not None:
        every = token_sample([e for s in splits.values() for e in s])
        pairs = [e["pair"] for e in every] if columns.get("text_pair") else None
        lengths = count_tokens([e["text"] for e in every], pairs)
        stats = length_stats(lengths, config.data.max_length,
                             of=sum(len(s) for s in splits.values()))
        options.update(_windows(stats, lengths, config, kind, bool(pairs), findings))
    report = DataReport(
        task=config.task, columns=columns, rows={s: len(v) for s, v in splits.items()},
        dropped=dict(dropped), labels=labels, label_counts=counts, token_lengths=stats,
        findings=findings, extra={"duplicates": dups, "leakage": leaks, **extra},
    )
    if kind.options is not None:
        options.update(kind.options(splits, labels, config, report))
    if options:
        report.extra["options"] = options
    return report


def _hashable(label):
    return tuple(label) if isinstance(label, (list, tuple)) else label


def _windows(stats: dict, lengths: list[int], config: RunConfig, kind: RowKind, pairs: bool,
             findings: list[Finding]) -> dict:
    """Whether long texts are read in windows (see finetuner.tasks.windows), and the report's
    words about it: how many texts need several windows, and what share of the text a plain
    cut at max length would drop."""
    data = config.data
    max_length = data.max_length
    total = sum(lengths) or 1
    cut = sum(max(0, n - max_length) for n in lengths)
    stats["dropped_token_share"] = round(cut / total, 4)
    long_share = stats.get("truncated_share", 0.0)
    choice = data.long_documents
    use = kind.windows and not pairs and (
        choice == "windows" or (choice == "auto" and long_share >= LONG_DOCUMENTS_AUTO_SHARE))
    if use:
        overlap = max(1, max_length // 4)
        span = max(1, max_length - 2 - overlap)
        windows = [1 + max(0, -(-(n - max_length) // span)) for n in lengths]
        capped = sum(1 for w in windows if w > data.max_windows)
        stats["windows_mean"] = round(sum(min(w, data.max_windows) for w in windows)
                                      / max(1, len(windows)), 2)
        findings.append(Finding(
            "info", "windows",
            f"{long_share:.1%} of the texts are longer than {max_length} tokens: a plain cut "
            f"would drop {cut / total:.1%} of all the text. Each long text is read in "
            f"overlapping windows of {max_length} tokens ({stats['windows_mean']} per text on "
            f"average), and the windows' scores are pooled ({data.window_pooling}) into one "
            "answer per text." + (f" {capped} text(s) are longer than {data.max_windows} "
                                  "windows; only their first windows are read."
                                  if capped else ""),
        ))
        return {"windows": True, "window_overlap": overlap, "max_windows": data.max_windows,
                "pooling": data.window_pooling}
    note = truncation_finding(stats)
    if note:
        if kind.windows and pairs and long_share >= LONG_DOCUMENTS_AUTO_SHARE:
            note.message += " (Pairs of texts are cut, not read in windows.)"
        elif kind.windows and choice == "auto" and cut:
            note.message += (f" A cut drops {cut / total:.1%} of all the text; set long "
                             "documents to 'windows' to read every word.")
        findings.append(note)
    return {}


def featurize_rows(examples: list[dict], tokenizer, max_length: int, options: dict,
                   label_of: Callable[[dict], object | None]) -> list[dict]:
    """Model inputs of table rows: one feature per row (a pair of texts is encoded together),
    or the windows of each long text when the report turned windows on; `label_of(example)`
    gives the feature's "labels" (None: no label, as when predicting)."""
    from finetuner.tasks import windows

    if options.get("windows"):
        return windows.featurize(examples, tokenizer, max_length, options["window_overlap"],
                                 options.get("max_windows", 16), label_of)
    texts = [e["text"] for e in examples]
    pairs = [e["pair"] for e in examples] if examples and "pair" in examples[0] else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    feats = []
    for i, example in enumerate(examples):
        item = {k: enc[k][i] for k in keys}
        label = label_of(example)
        if label is not None:
            item["labels"] = label
        feats.append(item)
    return feats
