"""Sentence- and document-level sets derived from CoNLL-2003 (for bench/multilabel.py and
bench/long_docs.py). The derived tables are written outside the repository's tracked files
(bench/out/ is git-ignored) and never committed: the Reuters text is for internal benchmarks.

- multi-label: one row per sentence, text = its tokens joined by spaces, labels = the entity
  types present in it (PER, ORG, LOC, MISC) joined by ";" (empty when it has none).
- long documents: one row per -DOCSTART- document, text = all its sentences' tokens joined by
  spaces, label = the entity type with the most mentions (entity spans) in the whole document;
  documents without entities or with a tie for the most mentions are left out.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TYPES = ("LOC", "MISC", "ORG", "PER")


def read_documents(path: Path) -> list[list[tuple[list[str], list[str]]]]:
    """Documents (split at -DOCSTART- lines), each a list of (tokens, tags) sentences."""
    docs: list[list] = []
    words: list[str] = []
    tags: list[str] = []
    current: list = []

    def close_sentence():
        nonlocal words, tags
        if words:
            current.append((words, tags))
        words, tags = [], []

    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields:
            close_sentence()
        elif fields[0] == "-DOCSTART-":
            close_sentence()
            if current:
                docs.append(current)
            current = []
        else:
            words.append(fields[0])
            tags.append(fields[-1])
    close_sentence()
    if current:
        docs.append(current)
    return docs


def mentions(tags: list[str]) -> Counter:
    """Entity spans per type (a span starts at B-X, or at I-X after a tag of another type)."""
    out: Counter = Counter()
    previous = "O"
    for tag in tags:
        if tag != "O":
            kind = tag[2:]
            if tag.startswith("B-") or previous[2:] != kind:
                out[kind] += 1
        previous = tag
    return out


def sentence_rows(path: Path) -> list[dict]:
    """Multi-label rows {"text", "labels"} for every sentence of a CoNLL file."""
    rows = []
    for doc in read_documents(path):
        for words, tags in doc:
            types = sorted(mentions(tags))
            rows.append({"text": " ".join(words), "labels": ";".join(types)})
    return rows


def document_rows(path: Path) -> tuple[list[dict], dict]:
    """Long-document rows {"text", "label"} and counts of what was left out."""
    rows, skipped = [], Counter()
    for doc in read_documents(path):
        count: Counter = Counter()
        for _, tags in doc:
            count += mentions(tags)
        ranked = count.most_common()
        if not ranked:
            skipped["no entity"] += 1
            continue
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            skipped["tie"] += 1
            continue
        rows.append({"text": " ".join(w for words, _ in doc for w in words),
                     "label": ranked[0][0]})
    return rows, dict(skipped)
