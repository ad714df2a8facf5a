"""Text classification (single texts or sentence pairs): what differs from the other tasks.

Column detection, label checks, the stratified split, the data report, tokenisation, metrics
and prediction decoding. Example dicts look like {"text", "pair" (optional), "label", "row"}.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from ..config import RunConfig
from ..data import (
    DataReport,
    Finding,
    Table,
    TokenCounter,
    clean_label,
    clean_text,
    column_by_name,
    duplicate_count,
    leakage_findings,
    length_stats,
    read_table,
    require_columns,
    sort_labels,
    split_indices,
    token_sample,
    truncation_finding,
)
from ..errors import DataError
from . import PreparedData

LABEL_NAMES = ("label", "labels", "class", "category", "target", "sentiment", "intent",
               "topic", "tag", "polarity", "gold_label", "y", "rating", "classification")
TEXT_NAMES = ("text", "sentence", "review", "content", "body", "message", "document",
              "comment", "tweet", "utterance", "description", "clause", "sms", "email",
              "headline", "title", "abstract", "query", "question", "excerpt", "passage")
PAIR_NAMES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
              ("text_a", "text_b"), ("text1", "text2"), ("question", "sentence"),
              ("query", "passage"), ("question", "answer"), ("claim", "evidence"))
MIN_PER_CLASS_WARN = 10
IMBALANCE_WARN = 4.0


# ---------------------------------------------------------------------------- detection


def _mean_len(series: pd.Series) -> float:
    sample = series.head(500).map(clean_text)
    return float(sample.map(len).mean()) if len(sample) else 0.0


def _looks_numeric(series: pd.Series) -> bool:
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
        candidates = [c for c in columns if c != label and not _looks_numeric(frame[c])]
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


# ---------------------------------------------------------------------------- preparation


def _resolve_columns(table: Table, config: RunConfig, findings: list[Finding]) -> dict:
    data = config.data
    given = {"text": data.text_column, "text_pair": data.text_pair_column,
             "label": data.label_column}
    require_columns(table.frame, list(given.values()), table.name)
    detected, notes = detect_columns(table.frame)
    columns = {role: given[role] or detected[role] for role in given}
    if data.text_column and not data.text_pair_column:
        columns["text_pair"] = None  # a chosen text column means single text unless told
    findings.extend(n for n in notes if not given[n.code.split("_", 1)[1]])
    all_cols = ", ".join(map(str, table.frame.columns))
    if not columns["label"]:
        raise DataError(
            f"Could not find a label column in '{table.name}'.",
            f"Name the column that holds the classes (the columns are: {all_cols}).",
            code="no_label_column",
        )
    if not columns["text"]:
        raise DataError(
            f"Could not find a text column in '{table.name}'.",
            f"Name the column that holds the texts (the columns are: {all_cols}).",
            code="no_text_column",
        )
    if columns["label"] in (columns["text"], columns["text_pair"]):
        raise DataError(
            f"'{columns['label']}' is chosen as both text and label column.",
            "Pick different columns for the text and the label.",
            code="same_column",
        )
    return columns


def _examples(table: Table, columns: dict, dropped: Counter) -> list[dict]:
    """Rows as example dicts; rows without text or label are counted and skipped."""
    require_columns(table.frame, list(columns.values()), table.name)
    frame = table.frame
    texts = frame[columns["text"]].map(clean_text).tolist()
    pairs = frame[columns["text_pair"]].map(clean_text).tolist() if columns["text_pair"] else None
    labels = frame[columns["label"]].map(clean_label).tolist()
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
        elif not label:
            dropped["empty label"] += 1
        else:
            example = {"text": text, "label": label, "row": i + 2}
            if pairs is not None:
                example["pair"] = pair
            out.append(example)
    if not out:
        raise DataError(
            f"No row of '{table.name}' has both a text and a label.",
            f"Check that '{columns['label']}' is the label column and that it is filled in.",
            code="no_rows",
        )
    return out


def _key(example: dict) -> str:
    return example["text"] + "\x1f" + example.get("pair", "")


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    data = config.data
    findings: list[Finding] = []
    table = read_table(data.train_file)
    findings += table.findings
    columns = _resolve_columns(table, config, findings)
    dropped: Counter = Counter()
    train = _examples(table, columns, dropped)
    splits = {"train": train, "validation": [], "test": []}
    for split in ("validation", "test"):
        path = getattr(data, f"{split}_file")
        if path:
            other = read_table(path)
            findings += other.findings
            splits[split] = _examples(other, columns, dropped)
    _check_labels(splits["train"], "the training data")
    need = tuple(0.0 if splits[s] else getattr(data, f"{s}_split") for s in ("validation", "test"))
    if any(need):
        _check_single_examples(splits["train"])
        keys = [_key(e) for e in train]
        idx = split_indices(len(train), need, config.training.seed,
                            strata=[e["label"] for e in train], groups=keys)
        for name, index in zip(("train", "validation", "test"), idx):
            if name == "train" or not splits[name]:
                splits[name] = [train[i] for i in index]
    labels = sort_labels([e["label"] for e in splits["train"]])
    _check_unseen(splits, labels, data)
    if not splits["validation"] or not splits["test"]:
        raise DataError(
            "Too few rows to hold out validation and test examples.",
            "Add data (at least a few examples per label) or give validation and test files.",
            code="too_small",
        )
    if check_rows is not None:  # a server's row cap, before any tokenising
        check_rows(sum(len(v) for v in splits.values()))
    report = _report(splits, columns, labels, dropped, findings, data.max_length, count_tokens)
    return PreparedData(splits["train"], splits["validation"], splits["test"], labels, report)


def _check_labels(train: list[dict], where: str) -> None:
    counts = Counter(e["label"] for e in train)
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(
            f"Only one label ('{only}') occurs in {where}.",
            "A classifier needs examples of at least two labels.",
            code="one_class",
        )


def _check_single_examples(train: list[dict]) -> None:
    counts = Counter(e["label"] for e in train)
    single = sorted(label for label, n in counts.items() if n == 1)
    if single:
        rows = [e["row"] for e in train if e["label"] in single][:5]
        raise DataError(
            f"Label(s) {', '.join(repr(s) for s in single)} occur only once (row(s) {rows}). "
            "One example can be neither learned nor tested.",
            "Add more examples of it, fix it if it is a typo, or remove that row.",
            code="single_example",
        )


def _check_unseen(splits: dict, labels: list[str], data) -> None:
    known = set(labels)
    for split in ("validation", "test"):
        unseen = Counter(e["label"] for e in splits[split] if e["label"] not in known)
        if unseen:
            names = ", ".join(repr(k) for k in sorted(unseen))
            raise DataError(
                f"The {split} data has label(s) {names} that never occur in the training data.",
                "The model cannot learn a label it never sees: add training examples of it or "
                f"remove those {sum(unseen.values())} row(s) from the {split} file.",
                code="unseen_label",
            )


def _report(splits, columns, labels, dropped, findings, max_length, count_tokens) -> DataReport:
    counts = {s: dict(sorted(Counter(e["label"] for e in ex).items(),
                             key=lambda kv: labels.index(kv[0]) if kv[0] in labels else 0))
              for s, ex in splits.items()}
    train_counts = counts["train"]
    findings = list(findings)
    if dropped:
        total = sum(dropped.values())
        why = " and ".join(f"{n} with {k}" for k, n in dropped.items())
        findings.append(Finding("warning" if total > 0 else "info", "dropped",
                                f"Dropped {total} row(s): {why}."))
    big = max(train_counts.values())
    small_label = min(train_counts, key=train_counts.get)
    ratio = big / train_counts[small_label]
    if ratio >= IMBALANCE_WARN:
        big_label = max(train_counts, key=train_counts.get)
        findings.append(Finding(
            "warning", "imbalance",
            f"Labels are imbalanced: '{big_label}' has {ratio:.1f}x as many training examples "
            f"as '{small_label}'. Accuracy can look good while '{small_label}' is missed; "
            "judge by macro-F1 (used to pick the best checkpoint) and add examples of rare "
            "labels if you can.",
        ))
    rare = [k for k, v in train_counts.items() if v < MIN_PER_CLASS_WARN]
    if rare:
        findings.append(Finding(
            "warning", "rare_classes",
            f"Label(s) {', '.join(repr(r) for r in rare)} have fewer than {MIN_PER_CLASS_WARN} "
            "training examples; the model will learn them poorly and their test scores are "
            "noisy.",
        ))
    train_keys = [_key(e) for e in splits["train"]]
    dups = duplicate_count(train_keys)
    if dups:
        by_key: dict[str, set] = {}
        for e in splits["train"]:
            by_key.setdefault(_key(e), set()).add(e["label"])
        conflicts = sum(1 for v in by_key.values() if len(v) > 1)
        extra = (f" {conflicts} text(s) appear with different labels, which the model cannot "
                 "get right; fix those labels." if conflicts else "")
        findings.append(Finding("warning" if conflicts else "info", "duplicates",
                                f"{dups} training row(s) repeat an earlier text.{extra}"))
    leaks, found = leakage_findings(train_keys, splits, _key, "row(s)")
    findings += found
    stats = {}
    if count_tokens is not None:
        every = token_sample([e for s in splits.values() for e in s])
        pairs = [e["pair"] for e in every] if columns.get("text_pair") else None
        stats = length_stats(count_tokens([e["text"] for e in every], pairs), max_length,
                             of=sum(len(s) for s in splits.values()))
        note = truncation_finding(stats)
        if note:
            findings.append(note)
    return DataReport(
        task="classification",
        columns=columns,
        rows={s: len(v) for s, v in splits.items()},
        dropped=dict(dropped),
        labels=labels,
        label_counts=counts,
        token_lengths=stats,
        findings=findings,
        extra={"duplicates": dups, "leakage": leaks, "imbalance_ratio": round(ratio, 2)},
    )


# ---------------------------------------------------------------------------- model side


def featurize(examples: list[dict], tokenizer, max_length: int, label2id: dict,
              **_options) -> list[dict]:
    texts = [e["text"] for e in examples]
    pairs = [e["pair"] for e in examples] if examples and "pair" in examples[0] else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    feats = []
    for i, example in enumerate(examples):
        item = {k: enc[k][i] for k in keys}
        if example.get("label") is not None and example["label"] in label2id:
            item["labels"] = label2id[example["label"]]
        feats.append(item)
    return feats



def metrics(outputs, features, examples, labels: list[str], **_options) -> dict:
    import numpy as np

    from ..metrics.classification import classification_metrics

    logits = np.stack(outputs)
    pred = logits.argmax(-1)
    gold = [labels.index(e["label"]) for e in examples]
    return classification_metrics(gold, pred.tolist(), labels)


def decode(outputs, features, examples, labels: list[str], **_options) -> list[dict]:
    """Logits → {"label", "score", "probabilities"} per example."""
    import numpy as np

    logits = np.stack(outputs).astype("float64")
    logits -= logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    out = []
    for row in probs:
        best = int(row.argmax())
        out.append({
            "label": labels[best],
            "score": float(row[best]),
            "probabilities": {labels[j]: float(p) for j, p in enumerate(row)},
        })
    return out


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **_options) -> list[dict]:
    """Test rows with the model's answer, wrong ones first (most confident first)."""
    predictions = decode(outputs, features, examples, labels)
    rows = []
    for example, pred in zip(examples, predictions):
        row = {"text": example["text"]}
        if "pair" in example:
            row["text_pair"] = example["pair"]
        row.update(true=example["label"], predicted=pred["label"],
                   confidence=round(pred["score"], 4), correct=example["label"] == pred["label"])
        rows.append(row)
    rows.sort(key=lambda r: (r["correct"], -r["confidence"]))
    return rows


# ---------------------------------------------------------------------------- try it and files


def examples_from_frame(frame, columns: dict) -> list[dict]:
    """Rows of a file to predict: the trained text (and pair) columns, else detected ones."""
    from ..errors import DataError

    names = [str(c) for c in frame.columns]
    text = columns.get("text") if columns.get("text") in names else None
    pair = columns.get("text_pair") if columns.get("text_pair") in names else None
    if text is None:
        text = detect_columns(frame)[0]["text"]
    if text is None:
        raise DataError("Could not find a text column to predict.",
                        f"The columns are: {', '.join(names)}.", code="no_text_column")
    if columns.get("text_pair") and pair is None:
        raise DataError(f"This model compares two texts, but the file has no "
                        f"'{columns['text_pair']}' column.",
                        f"The columns are: {', '.join(names)}.", code="missing_column")
    texts = frame[text].map(clean_text).tolist()
    pairs = frame[pair].map(clean_text).tolist() if pair else None
    return [{"text": t, **({"pair": pairs[i]} if pairs else {})} for i, t in enumerate(texts)]


def output_columns(prediction: dict, labels: list[str]) -> dict:
    """The columns a prediction adds to a row of a predicted file."""
    out = {"predicted_label": prediction["label"], "confidence": round(prediction["score"], 5)}
    for label in labels:
        out[f"p_{label}"] = round(prediction["probabilities"][label], 5)
    return out


USAGE = """from transformers import pipeline

classifier = pipeline("text-classification", model="{path}", top_k=None)
print(classifier("What a wonderful, clever film!"))"""


def usage_snippet(meta: dict, path: str) -> str:
    return USAGE.format(path=path)


def example_from_input(text: str, pair: str | None) -> dict:
    """The try-it boxes as one example."""
    return {"text": text, **({"pair": pair} if pair else {})}


def preview_rows(examples: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows and columns of the data preview (tables are shown as they are instead)."""
    pairs = any(e.get("pair") for e in examples)
    cols = ["text", *(["pair"] if pairs else []), "label"]
    return [{c: e.get(c) for c in cols} for e in examples], cols
