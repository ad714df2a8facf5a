"""Named entity recognition: what differs from the other tasks.

Reading tagged sentences (CoNLL text with the tag in the last column, JSON/JSONL records with
token and tag lists, CSV/TSV with space-separated tokens and tags), checking and normalising
the tags to BIO, the sentence split and the data report, word-to-subword label alignment,
entity-level metrics and decoding entities back onto the words (and characters) of a sentence.
Example dicts look like {"tokens": [...], "tags": [...], "row": n}; raw text to predict comes
as {"text": "..."}. Tag logic and scoring live in `finetuner.metrics.ner`.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataConfig, RunConfig
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
    split_indices,
    token_sample,
    truncation_finding,
)
from ..errors import DataError
from ..metrics.ner import (
    bio_style_b_tags,
    entities,
    is_valid,
    opening_i_tags,
    repair_bio,
    to_bio_prefixes,
    uses_other_scheme,
)
from . import PreparedData

CONLL_SUFFIXES = (".conll", ".iob", ".bio")  # .txt too, when its lines look like CoNLL
TOKEN_NAMES = ("tokens", "words", "token", "word", "sentence", "text", "tokens_list")
TAG_NAMES = ("tags", "ner_tags", "ner", "labels", "label", "tag", "ner_labels", "bio_tags",
             "iob_tags", "entity_tags")
TEXT_NAMES = ("text", "sentence", "content", "body", "message", "document", "headline",
              "title", "comment", "description", "query")
MIN_PER_TYPE_WARN = 10
# words of raw text: acronyms (U.S.), words with inner - . / (e-mail, 3.5), clitics ('s), symbols
WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:[-./]\w+)*|['’]\w+|[^\w\s]")


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


# ---------------------------------------------------------------------------- reading


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


# ---------------------------------------------------------------------------- tags


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
            f"'{source.name}' has {sum(bad.values())} malformed tag(s): {shown} (first in the "
            f"sentence at {source.where} {first}).",
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
                   f"touching entities of one type); {n_open} opening I- tag(s) were converted "
                   "to B-, giving BIO.")
    else:
        source.scheme = "BIO"
        message = f"'{name}' uses BIO tags (B- starts an entity, I- continues it)."
    source.findings.append(Finding("info", "scheme", message))
    if n_open and source.scheme == "BIO":
        rows = [row for row, n in opening if n][:5]
        source.findings.append(Finding(
            "warning", "repaired_tags",
            f"{n_open} I- tag(s) in '{name}' start an entity, which BIO does not allow (in the "
            f"sentences at {source.where}s {rows}); they were read as B- tags. Check those "
            "sentences: a B- tag may be missing or mistyped.",
        ))


def entity_types(sentences: Sequence[dict]) -> Counter:
    return Counter(kind for s in sentences for kind, _, _ in entities(s["tags"]))


def label_list(train: Sequence[dict]) -> list[str]:
    """'O' first, then B- and I- of every entity type of the training data, sorted."""
    kinds = {t.split("-", 1)[1] for s in train for t in s["tags"] if t != "O"}
    return ["O"] + sorted(f"{p}-{k}" for k in kinds for p in "BI")


# ---------------------------------------------------------------------------- preparation


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    data = config.data
    train_src = read_sentences(data.train_file, data)
    sources = [train_src]
    splits = {"train": train_src.sentences, "validation": [], "test": []}
    for split in ("validation", "test"):
        path = getattr(data, f"{split}_file")
        if path:
            sources.append(read_sentences(path, data))
            splits[split] = sources[-1].sentences
    _check_tag_set(train_src)
    need = tuple(0.0 if splits[s] else getattr(data, f"{s}_split") for s in ("validation", "test"))
    if any(need):
        train = splits["train"]
        keys = [_key(s) for s in train]  # identical sentences stay in one split
        idx = split_indices(len(train), need, config.training.seed, groups=keys)
        for name, index in zip(("train", "validation", "test"), idx):
            if name == "train" or not splits[name]:
                splits[name] = [train[i] for i in index]
    labels = label_list(splits["train"])
    _check_unseen(splits, labels, sources)
    if not splits["validation"] or not splits["test"]:
        raise DataError(
            "Too few sentences to hold out validation and test examples.",
            "Add sentences (a few dozen at least) or give validation and test files.",
            code="too_small",
        )
    if check_rows is not None:  # a server's row cap, before any tokenising
        check_rows(sum(len(v) for v in splits.values()))
    report = _report(splits, train_src, sources, labels, data.max_length, count_tokens)
    return PreparedData(splits["train"], splits["validation"], splits["test"], labels, report,
                        extra={"scheme": train_src.scheme})


def _key(sentence: dict) -> str:
    return " ".join(sentence["tokens"])


def _check_tag_set(source: Source) -> None:
    tags = Counter(t for s in source.sentences for t in s["tags"])
    if len(tags) < 2:
        only = next(iter(tags))
        raise DataError(
            f"Only one tag ('{only}') occurs in '{source.name}'.",
            "An NER model learns from tagged entities: mark them with B-TYPE / I-TYPE tags "
            "(e.g. B-PER I-PER for a person's name) and every other token with O.",
            code="one_class",
        )


def _check_unseen(splits: dict, labels: list[str], sources: list[Source]) -> None:
    known = {label.split("-", 1)[1] for label in labels if label != "O"}
    for split in ("validation", "test"):
        unseen = {k: n for k, n in entity_types(splits[split]).items() if k not in known}
        if unseen:
            names = ", ".join(repr(k) for k in sorted(unseen))
            where = next((s.where for s in sources if splits[split] is s.sentences),
                         sources[0].where)
            rows = [s["row"] for s in splits[split]
                    if any(k in unseen for k, _, _ in entities(s["tags"]))][:5]
            raise DataError(
                f"The {split} data has entity type(s) {names} that never occur in the training "
                f"data ({sum(unseen.values())} entities, e.g. at {where}s {rows}).",
                "The model cannot learn a type it never sees: add training sentences with it, "
                f"or tag those entities O in the {split} file.",
                code="unseen_label",
            )


def _report(splits, train_src: Source, sources: list[Source], labels: list[str],
            max_length: int, count_tokens: TokenCounter | None) -> DataReport:
    findings = [f for s in sources for f in s.findings]
    dropped: Counter = Counter()
    for source in sources:
        dropped.update(source.dropped)
    if dropped:
        findings.append(Finding("warning", "dropped",
                                f"Skipped {sum(dropped.values())} empty sentence(s)."))
    counts = {split: dict(sorted(entity_types(ex).items())) for split, ex in splits.items()}
    rare = sorted(k for k, n in counts["train"].items() if n < MIN_PER_TYPE_WARN)
    if rare:
        findings.append(Finding(
            "warning", "rare_classes",
            f"Entity type(s) {', '.join(repr(r) for r in rare)} have fewer than "
            f"{MIN_PER_TYPE_WARN} training examples; the model will find them poorly and their "
            "test scores are noisy.",
        ))
    train_keys = [_key(s) for s in splits["train"]]
    dups = duplicate_count(train_keys)
    if dups:
        by_key: dict[str, set] = {}
        for s in splits["train"]:
            by_key.setdefault(_key(s), set()).add(" ".join(s["tags"]))
        conflicts = sum(1 for v in by_key.values() if len(v) > 1)
        extra = (f" {conflicts} of them appear with different tags, which the model cannot "
                 "all get right; fix those tags." if conflicts else "")
        findings.append(Finding("warning" if conflicts else "info", "duplicates",
                                f"{dups} training sentence(s) repeat an earlier one.{extra}"))
    leaks, found = leakage_findings(train_keys, splits, _key, "sentence(s)")
    findings += found
    stats = {}
    if count_tokens is not None:
        every = token_sample([_key(s) for split in splits.values() for s in split])
        stats = length_stats(count_tokens(every, None), max_length,
                             of=sum(len(s) for s in splits.values()))
        note = truncation_finding(stats)
        if note:
            note.message += " Words cut off are predicted O."
            findings.append(note)
    return DataReport(
        task="ner",
        columns=train_src.columns,
        rows={s: len(v) for s, v in splits.items()},
        dropped=dict(dropped),
        labels=labels,
        label_counts=counts,
        token_lengths=stats,
        findings=findings,
        extra={"scheme": train_src.scheme, "duplicates": dups, "leakage": leaks,
               "words": sum(len(s["tokens"]) for s in splits["train"])},
    )


# ---------------------------------------------------------------------------- model side


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Raw text as (word, start, end) with character offsets: words and punctuation apart."""
    return [(m.group(), m.start(), m.end()) for m in WORD.finditer(text or "")]


def words_of(example: dict) -> tuple[list[str], list[tuple[int, int]], str]:
    """The words of an example, their character spans and the text the spans point into."""
    if "tokens" in example:
        words = [str(w) for w in example["tokens"]]
        spans, pos = [], 0
        for word in words:
            spans.append((pos, pos + len(word)))
            pos += len(word) + 1
        return words, spans, " ".join(words)
    text = example.get("text") or ""
    found = split_words(text)
    return [w for w, _, _ in found], [(s, e) for _, s, e in found], text


def featurize(examples: list[dict], tokenizer, max_length: int, label2id: dict,
              **_options) -> list[dict]:
    """Words to subwords; the tag of a word goes on its first subword, -100 elsewhere."""
    words = [words_of(e)[0] for e in examples]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    feats = []
    for i, example in enumerate(examples):
        item = {k: enc[k][i] for k in keys}
        word_ids = enc.word_ids(i)
        item["word_ids"] = word_ids
        tags = example.get("tags")
        if label2id and tags:
            item["labels"] = align_labels(word_ids, tags, label2id)
        feats.append(item)
    return feats


def align_labels(word_ids: Sequence[int | None], tags: Sequence[str],
                 label2id: dict) -> list[int]:
    labels, previous = [], None
    for word in word_ids:
        first = word is not None and word != previous
        labels.append(label2id.get(tags[word], -100) if first else -100)
        previous = word
    return labels



def word_predictions(logits, word_ids: Sequence[int | None], n_words: int,
                     labels: list[str]) -> tuple[list[str], list[float | None]]:
    """Each word's tag and its probability, read at the word's first subword.

    Words the model never saw (cut off by truncation) are predicted O with probability None.
    """
    import numpy as np

    logits = np.asarray(logits, dtype="float64")
    logits = logits - logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    best = probs.argmax(-1)
    tags: list[str] = ["O"] * n_words
    scores: list[float | None] = [None] * n_words
    previous = None
    for pos, word in enumerate(word_ids[: len(probs)]):
        if word is not None and word != previous and word < n_words:
            tags[word] = labels[int(best[pos])]
            scores[word] = float(probs[pos, best[pos]])
        previous = word
    return tags, scores


def metrics(outputs, features, examples, labels: list[str], **_options) -> dict:
    from ..metrics.ner import entity_metrics

    gold, pred, seen = [], [], []
    for logits, feat, example in zip(outputs, features, examples):
        tags, scores = word_predictions(logits, feat["word_ids"], len(example["tags"]), labels)
        gold.append(example["tags"])
        # words cut off by truncation were predicted O: a missed entity there costs recall
        pred.append(tags)
        seen.append([s is not None for s in scores])
    return entity_metrics(gold, pred, seen)


def decode(outputs, features, examples, labels: list[str], **_options) -> list[dict]:
    """Per example: entities (type, text, char start/end, mean probability, word span
    [first, one past last]), the tag of every word, and the words themselves."""
    out = []
    for logits, feat, example in zip(outputs, features, examples):
        words, spans, text = words_of(example)
        tags, scores = word_predictions(logits, feat["word_ids"], len(words), labels)
        found = []
        for kind, i, j in entities(tags):
            start, end = spans[i][0], spans[j - 1][1]
            probs = [s for s in scores[i:j] if s is not None]
            found.append({"type": kind, "text": text[start:end], "start": start, "end": end,
                          "score": round(sum(probs) / len(probs), 4) if probs else 0.0,
                          "words": [i, j]})
        out.append({"entities": found, "tags": tags, "tokens": words, "scores": scores})
    return out


def format_entities(found: Sequence[tuple[str, str]]) -> str:
    """[('PER', 'John Smith'), ('LOC', 'Paris')] -> 'PER: John Smith; LOC: Paris'."""
    return "; ".join(f"{kind}: {text}" for kind, text in found)


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **_options) -> list[dict]:
    """Test sentences with gold and predicted entities, wrong ones first (most sure first).

    confidence is the probability of the least sure word of the sentence."""
    predictions = decode(outputs, features, examples, labels)
    rows = []
    for example, pred in zip(examples, predictions):
        words = pred["tokens"]
        gold = entities(example["tags"])
        found = {(e["type"], *e["words"]) for e in pred["entities"]}
        sure = [s for s in pred["scores"] if s is not None]
        rows.append({
            "text": " ".join(words),
            "true": format_entities([(k, " ".join(words[i:j])) for k, i, j in gold]),
            "predicted": format_entities([(e["type"], e["text"]) for e in pred["entities"]]),
            "confidence": round(min(sure), 4) if sure else 1.0,
            "correct": set(gold) == found,
        })
    rows.sort(key=lambda r: (r["correct"], -r["confidence"]))
    return rows


# ---------------------------------------------------------------------------- try it and files


def examples_from_frame(frame, columns: dict) -> list[dict]:
    """Rows of a file to predict: a tokens column (split on spaces) or a raw text column."""
    names = [str(c) for c in frame.columns]
    tokens = columns.get("tokens") if columns.get("tokens") in names else None
    tokens = tokens or column_by_name(names, ("tokens", "words", "token", "word"))
    if tokens:
        return [{"tokens": [str(w) for w in as_list(v)]} for v in frame[tokens]]
    text = column_by_name(names, TEXT_NAMES)
    if text is None:
        strings = [c for c in names if frame[c].map(lambda v: isinstance(v, str)).all()]
        if strings:
            text = max(strings, key=lambda c: frame[c].head(500).map(len).mean())
    if text is None:
        raise DataError("Could not find a column of sentences to tag.",
                        "Name it 'text' (raw sentences) or 'tokens' (words separated by "
                        f"spaces); the columns are: {', '.join(names)}.", code="no_text_column")
    return [{"text": clean_text(v)} for v in frame[text]]


def output_columns(prediction: dict, labels: list[str]) -> dict:
    """The columns a prediction adds to a row of a predicted file (named so that they never
    clash with a gold 'tags' column of that file)."""
    found = [(e["type"], e["text"]) for e in prediction["entities"]]
    return {"predicted_entities": format_entities(found),
            "predicted_tags": " ".join(prediction["tags"])}


USAGE = """from transformers import pipeline

ner = pipeline("token-classification", model="{path}", aggregation_strategy="simple")
for entity in ner("Angela Merkel met the chief executive of Siemens in Paris."):
    print(entity["entity_group"], entity["word"], round(float(entity["score"]), 3))"""


def usage_snippet(meta: dict, path: str) -> str:
    return USAGE.format(path=path)


def example_from_input(text: str, pair: str | None = None) -> dict:
    """The try-it box as one sentence (split into words by the predictor)."""
    return {"text": text}


def preview_rows(examples: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows and columns of the data preview: each sentence with its tags."""
    return [{"sentence": " ".join(e["tokens"]), "tags": " ".join(e["tags"])}
            for e in examples], ["sentence", "tags"]
