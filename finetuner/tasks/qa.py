"""Extractive question answering: what differs from the other tasks.

Owns: reading SQuAD JSON and flat question/context/answer files, placing answers in their
contexts, the split by article (or paragraph), the QA data report, the windows over long
contexts (doc_stride), answer positions for training, n-best span decoding over all windows,
SQuAD exact match / F1, and the QA usage snippet.

Example dicts: {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]},
"title" (article, or None), "row"}. An empty answer list marks an unanswerable question
(SQuAD 2 style). Inference examples are {"question", "context"} or {"text", "pair"}.

"No answer" is predicted (empty answer, when the [CLS] score beats every span) only by models
whose training data held unanswerable questions: `prepare` records that as the task option
`allow_no_answer`, which training and the exported model pass to `decode` and `metrics`.
Without it decoding always returns the best span, as run_qa.py does for SQuAD 1.1.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..data import (
    DataReport,
    Finding,
    TokenCounter,
    clean_text,
    column_by_name,
    decode_text,
    duplicate_count,
    leakage_findings,
    length_stats,
    read_bytes,
    read_table,
    require_columns,
    sample_indices,
    sample_note,
    split_indices,
    token_sample,
)
from ..errors import DataError
from . import PreparedData

QUESTION_NAMES = ("question", "questions", "query", "q")
CONTEXT_NAMES = ("context", "passage", "paragraph", "document", "text", "story", "evidence")
ANSWER_NAMES = ("answer_text", "answer", "answers", "answer_texts", "gold_answer", "text_answer")
START_NAMES = ("answer_start", "answer_char_start", "start", "answer_start_char", "start_char")
TITLE_NAMES = ("title", "article", "document_title", "doc_title", "source")
ID_NAMES = ("id", "qid", "question_id", "uid")
N_BEST = 20
RUNNERS_UP = 4
MIN_ARTICLES = 10  # fewer articles than this: hold out paragraphs, not whole articles
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


# ---------------------------------------------------------------------------- reading


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


# ---------------------------------------------------------------------------- preparation


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    data = config.data
    log = _Log()
    train, columns = read_examples(data.train_file, config, log)
    splits = {"train": train, "validation": [], "test": []}
    for split in ("validation", "test"):
        path = getattr(data, f"{split}_file")
        if path:
            splits[split] = read_examples(path, config, log)[0]
    split_by = _split(splits, data, config.training.seed)
    if not splits["validation"] or not splits["test"]:
        raise DataError(
            "Too few paragraphs to hold out validation and test questions.",
            "Add data (at least a few paragraphs with questions) or give validation and test "
            "files.",
            code="too_small",
        )
    if check_rows is not None:  # a server's row cap, before any tokenising
        check_rows(sum(len(v) for v in splits.values()))
    report = _report(splits, columns, log, split_by, data, count_tokens)
    return PreparedData(splits["train"], splits["validation"], splits["test"], [], report)


def _split(splits: dict, data, seed: int) -> str:
    """Hold out whole articles (or paragraphs), so no paragraph sits in two splits."""
    train = splits["train"]
    need = tuple(0.0 if splits[s] else getattr(data, f"{s}_split") for s in ("validation", "test"))
    titles = {e["title"] for e in train}
    by_title = None not in titles and len(titles) >= MIN_ARTICLES
    if not any(need):
        return "files"
    groups = [e["title"] if by_title else e["context"] for e in train]
    idx = split_indices(len(train), need, seed, groups=groups)
    for name, index in zip(("train", "validation", "test"), idx):
        if name == "train" or not splits[name]:
            splits[name] = [train[i] for i in index]
    return "article" if by_title else "paragraph"


def _key(example: dict) -> str:
    return example["question"] + "\x1f" + example["context"]


def _reading_findings(log: _Log) -> list[Finding]:
    out = list(log.findings)
    if log.dropped:
        n = sum(log.dropped.values())
        out.append(Finding("warning", "dropped", f"Dropped {n} question(s) with an empty "
                           "question or context."))
    if log.moved:
        rows = ", ".join(log.moved[:3]) + (" ..." if len(log.moved) > 3 else "")
        out.append(Finding(
            "warning", "answer_moved",
            f"{len(log.moved)} answer(s) were not at their answer_start ({rows}); the nearest "
            "occurrence of the answer text in the context was used. Check those rows."))
    if log.found:
        extra = (f" {log.ambiguous} of these answers occur more than once in their context; "
                 "give answer_start where the first occurrence is not the right one."
                 if log.ambiguous else "")
        out.append(Finding("info", "answer_start_found",
                           f"answer_start was missing for {log.found} answer(s) and was set "
                           f"to the first occurrence of the answer text.{extra}"))
    return out


def _report(splits, columns, log, split_by, data, count_tokens) -> DataReport:
    findings = _reading_findings(log)
    train = splits["train"]
    unanswerable = {s: sum(1 for e in ex if not e["answers"]["text"]) for s, ex in splits.items()}
    if unanswerable["train"]:
        share = unanswerable["train"] / len(train)
        findings.append(Finding(
            "info", "unanswerable",
            f"{unanswerable['train']} training question(s) ({share:.0%}) have no answer: the "
            "model also learns to answer 'no answer' when the context does not hold one "
            "(SQuAD 2 style)."))
    articles = {s: len({e["title"] or e["context"] for e in ex}) for s, ex in splits.items()}
    if split_by == "paragraph":
        findings.append(Finding(
            "info", "split_by_paragraph",
            "Validation and test hold out whole paragraphs (too few articles or no titles to "
            f"hold out whole articles; {MIN_ARTICLES} or more titles would): a paragraph never "
            "sits in two splits, but paragraphs of one article can."))
    train_keys = [_key(e) for e in train]
    dups = duplicate_count(train_keys)
    if dups:
        findings.append(Finding("info", "duplicates", f"{dups} training question(s) repeat an "
                                "earlier question about the same context."))
    leaks, found = leakage_findings(train_keys, splits, _key, "question(s)",
                                  "also appear, with the same context, in the training data")
    findings += found
    stats, windows = {}, {}
    if count_tokens is not None:
        stats, windows = _token_facts(splits, data, count_tokens, findings)
    return DataReport(
        task="qa", columns=columns, rows={s: len(v) for s, v in splits.items()},
        dropped=dict(log.dropped), token_lengths=stats, findings=findings,
        extra={"articles": articles, "split_by": split_by, "windows": windows,
               "unanswerable": unanswerable, "duplicates": dups, "leakage": leaks,
               "options": {"allow_no_answer": unanswerable["train"] > 0}})


def _token_facts(splits: dict, data, count_tokens, findings: list[Finding]) -> tuple[dict, dict]:
    """Question+context token lengths, windows per question, answers too long to predict;
    counted on a seeded sample of at most TOKEN_SAMPLE_ROWS questions (counts are then
    estimates, and the report says so)."""
    every = [e for s in splits.values() for e in s]
    owners = [name for name, examples in splits.items() for _ in examples]
    idx = sample_indices(len(every))
    sample = [every[i] for i in idx]
    pair = count_tokens([e["question"] for e in sample], [e["context"] for e in sample])
    single = count_tokens([e["question"] for e in sample], None)
    s1, s2 = count_tokens([""], None)[0], count_tokens([""], [""])[0]
    stats = length_stats(pair, data.max_length, of=len(every))
    about, note = ("About " if stats.get("sample") else ""), sample_note(stats)
    wins = [_windows(p, q - s1, s2, data.max_length, data.doc_stride)
            for p, q in zip(pair, single)]
    multi_share = sum(1 for w in wins if w > 1) / len(wins)
    multi = round(multi_share * len(every))
    mean = round(sum(wins) / len(wins), 2)
    stats["windows_mean"] = mean
    windows = {"mean": mean, "max": max(wins), "multi_window": multi,
               "multi_window_share": round(multi_share, 4),
               "per_split": _per_split(splits, [owners[i] for i in idx], wins)}
    if multi:
        findings.append(Finding(
            "info", "long_contexts",
            f"{about}{multi:,} question(s) ({multi_share:.1%}) with their context are longer "
            f"than max_length {data.max_length} tokens (the longest has {stats['max']}){note}: "
            f"their context is read in overlapping windows ({data.doc_stride} tokens of "
            f"overlap), {mean:.2f} windows per question on average. Nothing is cut; every "
            "window costs training time."))
    golds = [e["answers"]["text"][0] for e in splits["train"] if e["answers"]["text"]]
    if golds:
        some = token_sample(golds)
        long = sum(1 for n in count_tokens(some, None) if n - s1 > data.max_answer_length)
        long = round(long * len(golds) / len(some))
        if long:
            findings.append(Finding(
                "warning", "long_answers",
                f"{about if len(some) < len(golds) else ''}{long:,} training answer(s) are "
                f"longer than max_answer_length ({data.max_answer_length} tokens): the model "
                "cannot predict them whole. Raise max_answer_length or shorten those answers."))
    return stats, windows


def _windows(pair_len: int, q_len: int, specials: int, max_length: int, stride: int) -> int:
    if pair_len <= max_length:
        return 1
    room = max_length - specials - min(q_len, max_length // 2)
    if room < 1:
        return 1
    stride = max(0, min(stride, room - 1))
    context_len = pair_len - q_len - specials
    return 1 + math.ceil(max(0, context_len - room) / (room - stride))


def _per_split(splits: dict, owners: list[str], wins: list[int]) -> dict:
    """Windows per split: exact when every question was counted, else scaled from the
    sample (owners[i] is the split of the question behind wins[i])."""
    total, seen = Counter(), Counter()
    for owner, w in zip(owners, wins):
        total[owner] += w
        seen[owner] += 1
    mean = sum(wins) / len(wins) if wins else 1.0
    return {name: (total[name] if seen[name] == len(examples) else
                   round(total[name] * len(examples) / seen[name]) if seen[name] else
                   round(mean * len(examples)))
            for name, examples in splits.items()}


# ---------------------------------------------------------------------------- model side


def _question_context(example: dict) -> tuple[str, str]:
    question = example.get("question", example.get("text")) or ""
    context = example.get("context", example.get("pair")) or ""
    return question.lstrip(), context


def _clip_questions(questions: list[str], tokenizer, max_length: int) -> tuple[list, list]:
    """Questions cut to half of max_length tokens, and their token counts."""
    limit = max(1, max_length // 2)
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    clipped, lengths = [], []
    for question, offsets in zip(questions, enc["offset_mapping"]):
        if len(offsets) > limit:
            question = question[: offsets[limit - 1][1]]
        clipped.append(question)
        lengths.append(min(len(offsets), limit))
    return clipped, lengths


def featurize(examples: list[dict], tokenizer, max_length: int, label2id: dict,
              doc_stride: int = 128, **_options) -> list[dict]:
    """Windows of question + context: model inputs, offsets for decoding, answer positions.

    Each example gives one feature per window of its context (overlapping by doc_stride
    tokens; the stride shrinks for very long questions, which the tokenizer requires).
    """
    pairs = [_question_context(e) for e in examples]
    questions, lengths = _clip_questions([q for q, _ in pairs], tokenizer, max_length)
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    strides: dict[int, list[int]] = {}
    for i, q_len in enumerate(lengths):
        room = max_length - specials - q_len
        strides.setdefault(max(0, min(doc_stride, room - 1)), []).append(i)
    with_positions = any("answers" in e for e in examples)
    feats = []
    for stride, idx in strides.items():
        enc = tokenizer([questions[i] for i in idx], [pairs[i][1] for i in idx],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        for j, owner in enumerate(enc["overflow_to_sample_mapping"]):
            seq = enc.sequence_ids(j)
            offsets = [tuple(o) if s == 1 else None
                       for o, s in zip(enc["offset_mapping"][j], seq)]
            feat = {k: enc[k][j] for k in keys}
            feat.update(example_index=idx[owner], offset_mapping=offsets)
            if with_positions:
                answers = examples[idx[owner]].get("answers") or {}
                feat["start_positions"], feat["end_positions"] = answer_positions(
                    offsets, answers)
            feats.append(feat)
    feats.sort(key=lambda f: f["example_index"])  # stable: windows stay in order
    return feats


def limit_windows(question: str, context: str, tokenizer, max_length: int,
                  doc_stride: int = 128, max_windows: int = 16) -> tuple[str, int]:
    """The context cut after its first `max_windows` windows (as `featurize` lays them out),
    and how many windows the whole context would take. A context that fits is returned as
    it is; only the question and the context are tokenised, once, with no model inputs."""
    question = (question or "").lstrip()
    _, lengths = _clip_questions([question], tokenizer, max_length)
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - lengths[0]
    if room < 1 or not context:
        return context, 1
    stride = max(0, min(doc_stride, room - 1))
    offsets = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)["offset_mapping"]
    total = 1 + math.ceil(max(0, len(offsets) - room) / (room - stride))
    if total <= max_windows:
        return context, total
    keep = room + (max_windows - 1) * (room - stride)  # context tokens those windows read
    return context[: offsets[keep - 1][1]], total


def answer_positions(offsets: list, answers: dict) -> tuple[int, int]:
    """Token start/end of the first answer in this window; (0, 0), the [CLS] token, if absent."""
    if not answers.get("text"):
        return 0, 0
    start_char = answers["answer_start"][0]
    end_char = start_char + len(answers["text"][0])
    inside = [i for i, o in enumerate(offsets) if o is not None]
    if not inside:
        return 0, 0
    first, last = inside[0], inside[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1



def feature_spans(start, end, offsets: list, max_answer_length: int,
                  n_best: int = N_BEST) -> list[tuple[float, int, int]]:
    """(score, start_char, end_char) of the n-best × n-best spans inside the context."""
    import numpy as np

    n = min(len(start), len(offsets))
    inside = np.fromiter((o is not None for o in offsets[:n]), dtype=bool, count=n)
    if not inside.any():
        return []
    s_logits = np.where(inside, start[:n], -np.inf)
    e_logits = np.where(inside, end[:n], -np.inf)
    k = min(n_best, int(inside.sum()))
    s_idx = np.argsort(-s_logits, kind="stable")[:k]
    e_idx = np.argsort(-e_logits, kind="stable")[:k]
    length = e_idx[None, :] - s_idx[:, None]
    ok = (length >= 0) & (length < max_answer_length)
    scores = s_logits[s_idx][:, None] + e_logits[e_idx][None, :]
    return [(float(scores[r, c]), offsets[s_idx[r]][0], offsets[e_idx[c]][1])
            for r, c in zip(*np.nonzero(ok))]


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _answer(context: str, spans: dict, null_score: float, allow_no_answer: bool) -> dict:
    ranked = sorted(spans.items(), key=lambda kv: -kv[1])[:N_BEST]
    entries = [{"answer": context[a:b], "start": a, "end": b, "score": s}
               for (a, b), s in ranked]
    use_null = allow_no_answer and math.isfinite(null_score)
    scores = [e["score"] for e in entries] + ([null_score] if use_null else [])
    probs = _softmax(scores) if scores else []
    for entry, p in zip(entries, probs):
        entry["probability"] = p
    if entries and not (use_null and null_score > entries[0]["score"]):
        best, rest = entries[0], entries[1:]
    else:
        best = {"answer": "", "start": None, "end": None,
                "score": null_score if use_null else 0.0,
                "probability": probs[-1] if use_null else 1.0}
        rest = entries
    out = {**best, "no_answer": best["start"] is None}
    out["score"], out["probability"] = round(out["score"], 4), round(out["probability"], 4)
    seen = {out["answer"]}
    out["runners_up"] = []
    for e in rest:  # runners-up: whole words only ("141" of "1412" helps nobody), no repeats
        if len(out["runners_up"]) == RUNNERS_UP:
            break
        if e["answer"] in seen or _cuts_a_word(context, e["start"], e["end"]):
            continue
        seen.add(e["answer"])
        out["runners_up"].append({"answer": e["answer"], "start": e["start"], "end": e["end"],
                                  "probability": round(e["probability"], 4)})
    return out


def _cuts_a_word(context: str, start: int, end: int) -> bool:
    """True when the span starts or ends inside a word (a sub-word piece of it)."""
    return any(0 < i < len(context) and context[i - 1].isalnum() and context[i].isalnum()
               for i in (start, end))


def decode(outputs, features, examples, labels: list[str], max_answer_length: int = 30,
           allow_no_answer: bool = False, **_options) -> list[dict]:
    """Best answer per example over all its windows (start + end logit, n-best, softmax).

    {"answer", "start", "end" (character offsets in the context), "score", "probability",
    "no_answer", "runners_up"}. "No answer" wins only with allow_no_answer, when the lowest
    [CLS] score over the windows beats every span (as in run_qa.py for SQuAD 2).
    """
    spans: list[dict] = [{} for _ in examples]
    null = [math.inf] * len(examples)
    for (start, end), feat in zip(outputs, features):
        i = feat["example_index"]
        null[i] = min(null[i], float(start[0] + end[0]))
        for score, a, b in feature_spans(start, end, feat["offset_mapping"], max_answer_length):
            if score > spans[i].get((a, b), -math.inf):
                spans[i][(a, b)] = score
    return [_answer(_question_context(e)[1], spans[i], null[i], allow_no_answer)
            for i, e in enumerate(examples)]


def metrics(outputs, features, examples, labels: list[str], **options) -> dict:
    """SQuAD exact match and F1 (0-1), best over the gold answers of each question."""
    from ..metrics.squad import squad_scores

    predictions = decode(outputs, features, examples, labels, **options)
    return squad_scores([p["answer"] for p in predictions],
                        [e["answers"]["text"] for e in examples])


def _trim(context: str, around: int | None, width: int = 300) -> str:
    if len(context) <= width:
        return context
    at = max(0, min((around or 0) - width // 2, len(context) - width))
    return ("…" if at else "") + context[at : at + width] + ("…" if at + width < len(context)
                                                            else "")


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **options) -> list[dict]:
    """Test questions with the model's answer, wrong ones first (most confident first)."""
    from ..metrics.squad import exact_match, f1_score

    predictions = decode(outputs, features, examples, labels, **options)
    rows = []
    for example, pred in zip(examples, predictions):
        golds = example["answers"]["text"]
        starts = example["answers"]["answer_start"]
        rows.append({
            "question": example["question"],
            "context": _trim(example["context"], starts[0] if starts else pred["start"]),
            "true": golds[0] if golds else "", "predicted": pred["answer"],
            "confidence": pred["probability"],
            "f1": round(f1_score(pred["answer"], golds), 4),
            "correct": exact_match(pred["answer"], golds) == 1.0,
        })
    rows.sort(key=lambda r: (r["correct"], -r["confidence"]))
    return rows


# ---------------------------------------------------------------------------- try it and files


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


def output_columns(prediction: dict, labels: list[str]) -> dict:
    """The columns an answer adds to a row of a predicted file."""
    start = prediction["start"]
    return {"answer": prediction["answer"], "answer_start": "" if start is None else start,
            "confidence": round(prediction["probability"], 5)}


USAGE = '''import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

path = "{path}"
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForQuestionAnswering.from_pretrained(path).eval()

question = "Where does the tower stand?"
context = "The tower was finished in 1889. It stands in Paris, on the Champ de Mars."
inputs = tokenizer(question, context, truncation="only_second", max_length={max_length},
                   return_offsets_mapping=True, return_tensors="pt")
offsets = inputs.pop("offset_mapping")[0].tolist()
in_context = torch.tensor([s == 1 for s in inputs.sequence_ids(0)])
with torch.no_grad():
    out = model(**inputs)
start_logits = out.start_logits[0].masked_fill(~in_context, -1e9)
end_logits = out.end_logits[0].masked_fill(~in_context, -1e9)
start = int(start_logits.argmax())
end = start + int(end_logits[start : start + {max_answer_length}].argmax())
print(context[offsets[start][0] : offsets[end][1]])'''


def usage_snippet(meta: dict, path: str) -> str:
    options = meta.get("options") or {}
    return USAGE.format(path=path, max_length=int(meta.get("max_length") or 384),
                        max_answer_length=int(options.get("max_answer_length") or 30))


def example_from_input(text: str, pair: str | None) -> dict:
    """The try-it boxes as one question about one passage."""
    return {"question": text, "context": pair or ""}


def preview_rows(examples: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows and columns of the data preview: question, a shortened passage, the answers."""
    def short(text: str, n: int = 160) -> str:
        return text if len(text) <= n else text[: n - 1] + "…"

    return [{"question": e["question"], "context": short(e["context"]),
             "answer": "; ".join(e["answers"]["text"]) or "(no answer)"}
            for e in examples], ["question", "context", "answer"]
