"""The one rule that guesses a table's task from its data: multi-label when 0/1 columns or
joined labels, regression when the label column holds numbers with many values, else None
(single-label classification). The page switches the task by it after an upload. It reads
the table kinds' own detectors, so it sits above them.
"""

from __future__ import annotations

import pandas as pd

from finetuner.tasks.multilabel import _detect_label, detect_separator
from finetuner.tasks.regression import looks_like_regression
from finetuner.tasks.table import clean_label, detect_columns


def suggest_task(frame: pd.DataFrame) -> tuple[str, str] | None:
    """(task, reason) when a table looks like multi-label or regression data rather than
    single-label classification; None otherwise."""
    detected, _ = detect_columns(frame)
    label = detected.get("label")
    binary = _detect_label(frame, detected)
    if binary:
        return "multi-label", f"the 0/1 columns {binary.replace(',', ', ')} look like labels"
    if label is None:
        return None
    if looks_like_regression(frame[label]):
        return "regression", f"the label column '{label}' holds numbers with many values"
    cells = [c for c in frame[label].head(2000).map(clean_label) if c]
    sep = detect_separator(cells)
    if sep and sum(sep in c for c in cells) >= 0.1 * len(cells) and sep != ",":
        return "multi-label", f"cells of '{label}' hold several labels joined by '{sep}'"
    return None


def suggest_from_text(path: str) -> tuple[str, str] | None:
    """A file that is no table: ("ner", why) when it reads as token-per-line entity data
    (CoNLL); None otherwise."""
    from finetuner.tasks.ner_read import looks_like_conll

    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(64_000)
    except OSError:
        return None
    if looks_like_conll(head):
        return "ner", "it holds one word per line with a tag (CoNLL entity data)"
    return None
