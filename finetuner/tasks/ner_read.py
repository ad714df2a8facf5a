"""Reading tagged sentences for named entity recognition, whatever the file's format.

Owns: CoNLL text (the token first, the tag in the last column, a blank line between
sentences; .txt when its lines look so), JSON/JSONL records and CSV/TSV tables with token and
tag lists (columns found by name or by their values), the checks on each tag, and the
conversion of BIOES/BILOU and IOB1 to BIO, with what was noticed as findings on the `Source`.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from finetuner.config import DataConfig
from finetuner.data.splits import Finding, clean_text, column_by_name, require_columns
from finetuner.data.tables import decode_text, read_bytes, read_table
from finetuner.english import plural
from finetuner.errors import DataError
from finetuner.metrics.ner import (
    bio_style_b_tags,
    is_valid,
    opening_i_tags,
    repair_bio,
    to_bio_prefixes,
    uses_other_scheme,
)

CONLL_SUFFIXES = (".conll", ".iob", ".bio")  # .txt too, when its lines look like CoNLL
TOKEN_NAMES = ("tokens", "words", "token", "word", "sentence", "text", "tokens_list")
TAG_NAMES = ("tags", "ner_tags", "ner", "labels", "label", "tag", "ner_labels", "bio_tags",
             "iob_tags", "entity_tags")


@dataclass
class Source:
    """Tagged sentences read from one file, with what was noticed while reading it."""

    name: str
    sentences: list[dict]
    columns: dict
    where: str  # how a sentence's "row" is named in messages: line, row or record
    scheme: str = "BIO"
    findings: list[Finding] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def read_sentences(path: str | Path, data: DataConfig) -> Source:
    """Read one file of tagged sentences, whatever its format, with tags checked and in BIO."""
    path = Path(path)
    suffix = path.suffix.lower()
    source = None
    if suffix in CONLL_SUFFIXES or suffix == ".txt":
        raw = read_bytes(path)
        findings: list[Finding] = []
        text = decode_text(raw, path.name, findings)
        if suffix != ".txt" or looks_like_conll(text):
            source = _parse_conll(text, path.name)
            source.findings[:0] = findings
    if source is None:
        source = _read_records(path, data)
    _check_tags(source)
    _normalise_scheme(source)
    return source


def looks_like_conll(text: str) -> bool:
    """One token per line with a fixed number of columns, the last one mostly tags."""
    lines = [ln for ln in text.splitlines()[:2000]
             if ln.strip() and not ln.startswith("-DOCSTART-")]
    if not lines:
        return False
    widths = Counter(len(ln.split()) for ln in lines)
    width, n = widths.most_common(1)[0]
    if not 2 <= width <= 12 or n < 0.9 * len(lines):
        return False
    tagged = sum(1 for ln in lines if is_valid(ln.split()[-1]))
    return tagged >= 0.5 * len(lines) or "\n\n" in text.replace("\r\n", "\n")


def _parse_conll(text: str, name: str) -> Source:
    sentences: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    width = 0
    for number, line in enumerate(text.splitlines() + [""], start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags, "row": start})
            tokens, tags = [], []
            continue
        if len(fields) < 2:
            raise DataError(
                f"Line {number} of '{name}' has a token but no tag ('{line.strip()[:40]}').",
                "In CoNLL format each line holds the token first and its tag in the last "
                "column (separated by spaces or tabs), with a blank line between sentences.",
                code="tag_count",
            )
        if not tokens:
            start = number
        tokens.append(fields[0])
        tags.append(fields[-1])
        width = max(width, len(fields))
    if not sentences:
        raise DataError(f"'{name}' holds no sentences.",
                        "Write one token and its tag per line, a blank line between sentences.",
                        code="no_rows")
    return Source(name, sentences, {"tokens": "column 1", "tags": f"column {width}"}, "line")


def _read_records(path: Path, data: DataConfig) -> Source:
    try:
        table = read_table(path)
    except DataError as exc:
        if exc.code != "unknown_extension":
            raise
        raise DataError(exc.message, "Save it as CoNLL (.conll, .iob, .bio or .txt: one token "
                        "and its tag per line) or as .jsonl, .json, .csv or .tsv with tokens and "
                        "tags columns.", code=exc.code) from None
    frame = table.frame
    tokens_col, tags_col, notes = _resolve_columns(frame, data, table.name)
    _check_not_classification(frame, tags_col, table.name)
    where = "record" if table.fmt in ("json", "jsonl") else "row"
    offset = 1 if where == "record" else 2
    source = Source(table.name, [], {"tokens": tokens_col, "tags": tags_col}, where,
                    findings=table.findings + notes)
    for i, (words, tags) in enumerate(zip(frame[tokens_col], frame[tags_col])):
        words, tags = as_list(words), as_list(tags)
        row = i + offset
        if not words and not tags:
            source.dropped["empty sentence"] += 1
            continue
        if any(isinstance(t, (int, float)) and not isinstance(t, bool) for t in tags):
            raise DataError(
                f"The tags in column '{tags_col}' of '{table.name}' are numbers ({where} {row}: "
                f"{tags[:6]}); the tag names are needed.",
                "Write the tags as names such as B-PER, I-PER and O (a dataset's ner_tags "
                "feature lists the name of each number).",
                code="numeric_tags",
            )
        if len(words) != len(tags):
            raise DataError(
                f"{where.capitalize()} {row} of '{table.name}' has {len(words)} tokens but "
                f"{len(tags)} tags.",
                "Give exactly one tag per token (in CSV, tokens and tags separated by spaces, "
                "e.g. 'John lives here' and 'B-PER O O').",
                code="tag_count",
            )
        source.sentences.append({"tokens": [str(w) for w in words],
                                 "tags": [str(t).strip() for t in tags], "row": row})
    if not source.sentences:
        raise DataError(f"Every sentence in '{table.name}' is empty.",
                        f"Check that '{tokens_col}' holds the tokens.", code="all_texts_empty")
    return source


def _check_not_classification(frame, tags_col: str, name: str) -> None:
    """One untagged label per row means a classification file, not tagged tokens."""
    tags = frame[tags_col].head(200).map(as_list)
    singles = [t[0] for t in tags if len(t) == 1]
    if len(singles) == len(tags) and not any(isinstance(t, str) and is_valid(t)
                                             for t in singles):
        shown = ", ".join(repr(str(t)) for t in sorted(set(map(str, singles)))[:4])
        raise DataError(
            f"Column '{tags_col}' of '{name}' holds one label per row ({shown}), not one tag "
            "per token.",
            "This looks like text classification data: choose the text classification task, "
            "or give a column with one BIO tag (O, B-PER, I-PER, ...) per token.",
            code="not_ner",
        )


def as_list(value: object) -> list:
    """A cell as a list: JSON lists as they are, strings split on whitespace."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):  # numpy arrays from Parquet
        return list(value.tolist())
    text = clean_text(value)
    if text.startswith(("['", '["')) and text.endswith("]"):  # a list written by pandas
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list):
            return parsed
    return text.split()


def _tag_share(series) -> float:
    items = [t for v in series.head(200) for t in as_list(v)]
    return sum(1 for t in items if isinstance(t, str) and is_valid(t)) / max(1, len(items))


def _resolve_columns(frame, data: DataConfig, name: str) -> tuple[str, str, list[Finding]]:
    columns = [str(c) for c in frame.columns]
    require_columns(frame, [data.text_column, data.label_column], name)
    notes: list[Finding] = []
    tags = data.label_column or column_by_name(columns, TAG_NAMES)
    if tags is None:
        scored = sorted(((_tag_share(frame[c]), c) for c in columns), reverse=True)
        if scored and scored[0][0] >= 0.9:
            tags = scored[0][1]
            notes.append(Finding("info", "guessed_tags",
                                 f"Guessed '{tags}' as the tags column (its values are tags)."))
    if tags is None:
        raise DataError(f"Could not find a tags column in '{name}'.",
                        "Name the column that holds one BIO tag per token (the columns are: "
                        f"{', '.join(columns)}).", code="no_label_column")
    others = [c for c in columns if c != tags]
    tokens = data.text_column or column_by_name(others, TOKEN_NAMES)
    if tokens is None:
        lengths = frame[tags].head(200).map(lambda v: len(as_list(v)))
        same = [c for c in others
                if (frame[c].head(200).map(lambda v: len(as_list(v))) == lengths).mean() > 0.9]
        tokens = same[0] if same else None
    if tokens is None or tokens == tags:
        raise DataError(f"Could not find a tokens column in '{name}'.",
                        "Name the column that holds the tokens of each sentence (the columns "
                        f"are: {', '.join(columns)}).", code="no_text_column")
    return tokens, tags, notes


def _check_tags(source: Source) -> None:
    bad: Counter = Counter()
    first = None
    for sentence in source.sentences:
        for tag in sentence["tags"]:
            if not is_valid(tag):
                bad[tag] += 1
                first = first or sentence["row"]
    if bad:
        shown = ", ".join(repr(t) for t, _ in bad.most_common(5))
        raise DataError(
            f"'{source.name}' has {plural(sum(bad.values()), 'malformed tag')}: {shown} "
            f"(first in the sentence at {source.where} {first}).",
            "Each tag must be O, or B-TYPE / I-TYPE such as B-PER and I-PER (BIO or IOB1 "
            "scheme); fix or rename those tags.",
            code="bad_tags",
        )


def _normalise_scheme(source: Source) -> None:
    """Convert to BIO in place: BIOES / BILOU prefixes, IOB1, and I- tags opening entities."""
    sentences = source.sentences
    other = any(uses_other_scheme(s["tags"]) for s in sentences)
    if other:
        for s in sentences:
            s["tags"] = to_bio_prefixes(s["tags"])
    opening = [(s["row"], len(opening_i_tags(s["tags"]))) for s in sentences]
    n_open = sum(n for _, n in opening)
    bio_b = sum(bio_style_b_tags(s["tags"]) for s in sentences)
    for s in sentences:
        s["tags"] = repair_bio(s["tags"])
    name = source.name
    if other:
        source.scheme = "BIOES"
        message = (f"'{name}' uses BIOES/BILOU tags (S-, E-, U- or L-); they were converted "
                   "to BIO (S-/U- became B-, E-/L- became I-).")
    elif n_open and not bio_b:
        source.scheme = "IOB1"
        message = (f"'{name}' uses IOB1 tags (entities start with I-, B- only separates two "
                   f"touching entities of one type); {plural(n_open, 'opening I- tag')} "
                   f"{'was' if n_open == 1 else 'were'} converted to B-, giving BIO.")
    else:
        source.scheme = "BIO"
        message = f"'{name}' uses BIO tags (B- starts an entity, I- continues it)."
    source.findings.append(Finding("info", "scheme", message))
    if n_open and source.scheme == "BIO":
        rows = [row for row, n in opening if n][:5]
        source.findings.append(Finding(
            "warning", "repaired_tags",
            f"{plural(n_open, 'I- tag')} in '{name}' {'starts' if n_open == 1 else 'start'} an "
            f"entity, which BIO does not allow (in the sentences at {source.where}s {rows}); "
            f"{'it was' if n_open == 1 else 'they were'} read as B- tags. Check those "
            "sentences: a B- tag may be missing or mistyped.",
        ))
