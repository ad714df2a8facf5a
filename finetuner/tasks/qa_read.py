"""Reading question-answering data: SQuAD JSON and flat question/context/answer tables.

Owns: the column names looked for, placing each answer in its context (the given
answer_start, else the nearest or first whole-word occurrence), the answer cell forms, and
what reading noticed (`_Log`), which `qa.prepare` turns into findings or one clear error.
Example dicts are described in `qa`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.data.splits import Finding, clean_text, column_by_name, require_columns
from finetuner.data.tables import decode_text, read_bytes, read_table
from finetuner.errors import DataError

QUESTION_NAMES = ("question", "questions", "query", "q")
CONTEXT_NAMES = ("context", "passage", "paragraph", "document", "text", "story", "evidence")
ANSWER_NAMES = ("answer_text", "answer", "answers", "answer_texts", "gold_answer", "text_answer")
START_NAMES = ("answer_start", "answer_char_start", "start", "answer_start_char", "start_char")
TITLE_NAMES = ("title", "article", "document_title", "doc_title", "source")
ID_NAMES = ("id", "qid", "question_id", "uid")
ROW_WORD = {"csv": "row", "tsv": "row", "jsonl": "line", "json": "record", "parquet": "row"}


@dataclass
class _Log:
    """What reading noticed, turned into findings (or one error) afterwards."""

    findings: list[Finding] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    moved: list[str] = field(default_factory=list)
    found: int = 0
    ambiguous: int = 0
    missing: list[str] = field(default_factory=list)


def _raw(value: object) -> str:
    """A cell as text without stripping (answer positions count every character)."""
    return "" if not clean_text(value) else str(value)


def _occurrences(context: str, text: str) -> list[int]:
    """Start of every occurrence of `text`, whole-word ones first ('one' not in 'honey')."""
    hits, at = [], context.find(text)
    while at >= 0:
        hits.append(at)
        at = context.find(text, at + 1)

    def partial(h: int) -> bool:
        end = h + len(text)
        return (h > 0 and context[h - 1].isalnum() and text[0].isalnum()) or (
            end < len(context) and context[end].isalnum() and text[-1].isalnum())

    return sorted(hits, key=partial)


def _place(context: str, text: str, start: int | None, where: str, log: _Log) -> int:
    """Where `text` starts in `context`: the given position, else the nearest hit (with a
    wrong answer_start) or the first whole-word hit (without one)."""
    if start is not None and 0 <= start and context[start : start + len(text)] == text:
        return start
    hits = _occurrences(context, text)
    if not hits:
        lower = context.lower().find(text.lower())
        hint = (f" (it occurs as '{context[lower:lower + len(text)]}', with other capitals)"
                if lower >= 0 else "")
        log.missing.append(f"{where}: '{text[:60]}'{hint}")
        return -1
    if start is None:
        log.found += 1
        log.ambiguous += len(hits) > 1
        return hits[0]
    log.moved.append(where)
    return min(hits, key=lambda h: abs(h - start))


def _example(eid: str, question: str, context: str, answers: list, title: str | None, row: int,
             where: str, log: _Log) -> dict | None:
    """One example dict, or None (counted) when the question or the context is empty."""
    if not question.strip() or not context.strip():
        log.dropped["empty question or context"] += 1
        return None
    texts, starts = [], []
    for raw, start in answers:
        text = raw.strip()
        if not text:
            continue
        if start is not None:
            start += len(raw) - len(raw.lstrip())
        position = _place(context, text, start, where, log)
        if position >= 0:
            texts.append(text)
            starts.append(position)
    return {"id": eid, "question": question.strip(), "context": context,
            "answers": {"text": texts, "answer_start": starts}, "title": title, "row": row}


def _squad_records(path: Path) -> list | None:
    """The article list of a SQuAD JSON file; None when the file is not SQuAD-shaped."""
    if path.suffix.lower() != ".json":
        return None
    try:
        value = json.loads(decode_text(read_bytes(path), path.name, []))
    except ValueError:
        return None  # read_table explains the JSON error
    articles = value.get("data") if isinstance(value, dict) else value
    if not isinstance(articles, list) or not articles or not isinstance(articles[0], dict):
        return None
    return articles if "paragraphs" in articles[0] else None


def _shape_error(name: str, what: str) -> DataError:
    return DataError(
        f"'{name}' looks like SQuAD JSON, but {what}.",
        'Each article must look like {"title": ..., "paragraphs": [{"context": ..., "qas": '
        '[{"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": ...}]}]}]}.',
        code="bad_squad",
    )


def _squad_examples(articles: list, name: str, log: _Log) -> list[dict]:
    out, n = [], 0
    for a, article in enumerate(articles, start=1):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise _shape_error(name, f"article {a} has no 'paragraphs' list")
        title = clean_text(article.get("title")) or f"article {a}"
        for p, para in enumerate(article["paragraphs"], start=1):
            if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
                raise _shape_error(name, f"paragraph {p} of article '{title}' has no 'qas' list")
            context = _raw(para.get("context"))
            for qa in para["qas"]:
                n += 1
                if not isinstance(qa, dict):
                    raise _shape_error(name, f"question {n} is not an object")
                answers = [] if qa.get("is_impossible") else [
                    (_raw(x.get("text")), _int_or_none(x.get("answer_start"), f"question {n}"))
                    for x in qa.get("answers") or [] if isinstance(x, dict)]
                eid = clean_text(qa.get("id")) or f"q{n}"
                where = f"question '{eid}' (article '{title}')"
                example = _example(eid, _raw(qa.get("question")), context, answers, title, n,
                                   where, log)
                if example:
                    out.append(example)
    return out


def _int_or_none(value: object, where: str) -> int | None:
    text = clean_text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isnan(number) or not number.is_integer():
        raise DataError(
            f"The answer_start of {where} is '{text}', not a character position.",
            "Give the index of the answer's first character in the context (0 for the first), "
            "or leave it empty to have it found.",
            code="bad_answer_start",
        )
    return int(number)


def _resolve_columns(frame, config: RunConfig, name: str) -> dict:
    data = config.data
    require_columns(frame, [data.text_column, data.text_pair_column, data.label_column], name)
    cols = [str(c) for c in frame.columns]
    question = data.text_column or column_by_name(cols, QUESTION_NAMES)
    context = data.text_pair_column or column_by_name(cols, CONTEXT_NAMES, (question,))
    answer = data.label_column or column_by_name(cols, ANSWER_NAMES, (question, context))
    taken = (question, context, answer)
    columns = {"question": question, "context": context, "answer": answer,
               "answer_start": column_by_name(cols, START_NAMES, taken),
               "title": column_by_name(cols, TITLE_NAMES, taken),
               "id": column_by_name(cols, ID_NAMES, taken)}
    for role, what in (("question", "questions"), ("context", "contexts (the passages that "
                       "hold the answers)"), ("answer", "answer texts")):
        if not columns[role]:
            raise DataError(
                f"Could not find the {role} column in '{name}'.",
                f"Name the column that holds the {what}. A question-answering file needs "
                f"question, context and answer_text columns (answer_start is optional); the "
                f"columns are: {', '.join(cols)}.",
                code=f"no_{role}_column",
            )
    if len({question, context, answer}) < 3:
        raise DataError("The same column is chosen for two of question, context and answer.",
                        "Pick three different columns.", code="same_column")
    return columns


def _cell_answers(cell: object, start: int | None, where: str) -> list[tuple[str, int | None]]:
    """Answer cell forms: a text, a list of texts, {"text": [...], "answer_start": [...]}."""
    if isinstance(cell, dict):
        texts, starts = cell.get("text") or [], cell.get("answer_start") or []
        texts = [texts] if isinstance(texts, str) else list(texts)
        starts = [starts] if isinstance(starts, (int, float, str)) else list(starts)
        return [(_raw(t), _int_or_none(starts[i], where) if i < len(starts) else None)
                for i, t in enumerate(texts)]
    if isinstance(cell, list):
        return [(_raw(t.get("text")), _int_or_none(t.get("answer_start"), where))
                if isinstance(t, dict) else (_raw(t), None) for t in cell]
    return [(_raw(cell), start)]


def _flat_examples(path: Path, config: RunConfig, log: _Log) -> tuple[list[dict], dict]:
    table = read_table(path)
    log.findings += table.findings
    columns = _resolve_columns(table.frame, config, table.name)
    word = ROW_WORD.get(table.fmt, "row")
    offset = 2 if word == "row" else 1
    records = table.frame.to_dict("records")
    out = []
    for i, rec in enumerate(records):
        row = i + offset
        where = f"{word} {row} of '{table.name}'"
        start = None
        if columns["answer_start"]:
            start = _int_or_none(rec[columns["answer_start"]], where)
        title = clean_text(rec[columns["title"]]) if columns["title"] else None
        eid = clean_text(rec[columns["id"]]) if columns["id"] else ""
        example = _example(eid or f"{word}{row}", _raw(rec[columns["question"]]),
                           _raw(rec[columns["context"]]), _cell_answers(
                               rec[columns["answer"]], start, where), title or None, row, where,
                           log)
        if example:
            out.append(example)
    return out, {k: v for k, v in columns.items() if v}


def read_examples(path: str | Path, config: RunConfig, log: _Log) -> tuple[list[dict], dict]:
    """Examples and the columns used, from SQuAD JSON or a flat table."""
    path = Path(path)
    articles = _squad_records(path)
    if articles is not None:
        examples = _squad_examples(articles, path.name, log)
        columns = {"question": "question", "context": "context", "answer": "answers",
                   "title": "title", "format": "squad"}
    else:
        examples, columns = _flat_examples(path, config, log)
    if log.missing:
        more = f" (and {len(log.missing) - 3} more)" if len(log.missing) > 3 else ""
        raise DataError(
            f"The answer does not occur in its context in {'; '.join(log.missing[:3])}{more}.",
            "An answer must be copied exactly from its context (same spelling and capitals): "
            "fix the answer text or the context, or delete the row.",
            code="answer_not_in_context",
        )
    if not examples:
        raise DataError(f"No question of '{path.name}' has both a question and a context.",
                        "Check that the question and context columns are filled in.",
                        code="no_rows")
    return examples, columns


def examples_from_frame(frame, columns: dict) -> list[dict]:
    """Rows of a file to answer: the trained question/context columns, else detected ones."""
    names = [str(c) for c in frame.columns]
    question = columns.get("question") if columns.get("question") in names else None
    question = question or column_by_name(names, QUESTION_NAMES)
    context = columns.get("context") if columns.get("context") in names else None
    context = context or column_by_name(names, CONTEXT_NAMES, (question,))
    if not question or not context:
        raise DataError("Could not find the question and context columns to answer.",
                        f"Name them 'question' and 'context'; the columns are: "
                        f"{', '.join(names)}.", code="missing_column")
    return [{"question": _raw(q), "context": _raw(c)}
            for q, c in zip(frame[question].tolist(), frame[context].tolist())]
