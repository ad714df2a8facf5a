"""Named entity recognition: what differs from the other tasks.

Owns: the sentence split and the NER data report (entity types, rare types, tags unseen in
training, duplicates, leakage, truncation), word-to-subword label alignment, entity-level
metrics and decoding entities back onto the words (and characters) of a sentence, the test
rows, files to tag and the usage snippet. Reading and normalising tagged files is in
`ner_read`. Example dicts look like {"tokens": [...], "tags": [...], "row": n}; raw text to
predict comes as {"text": "..."}. Tag logic and scoring live in `finetuner.metrics.ner`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from finetuner.config import RunConfig
from finetuner.data.splits import (
    DataReport,
    Finding,
    TokenCounter,
    clean_text,
    column_by_name,
    duplicate_count,
    leakage_findings,
    length_stats,
    token_sample,
    truncation_finding,
)
from finetuner.english import listed, plural
from finetuner.errors import DataError
from finetuner.metrics.ner import entities, entity_metrics
from finetuner.tasks import PreparedData
from finetuner.tasks.ner_read import Source, as_list, read_sentences  # noqa: F401  (read_sentences: tests)
from finetuner.tasks.pipeline import hold_out, read_splits, require_held_out

CONLL_SUFFIXES = (".conll", ".iob", ".bio")  # .txt too, when its lines look like CoNLL
TOKEN_NAMES = ("tokens", "words", "token", "word", "sentence", "text", "tokens_list")
TAG_NAMES = ("tags", "ner_tags", "ner", "labels", "label", "tag", "ner_labels", "bio_tags",
             "iob_tags", "entity_tags")
TEXT_NAMES = ("text", "sentence", "content", "body", "message", "document", "headline",
              "title", "comment", "description", "query")
MIN_PER_TYPE_WARN = 10
# words of raw text: acronyms (U.S.), words with inner - . / (e-mail, 3.5), clitics ('s), symbols
WORD = re.compile(r"(?:[^\W\d_]\.){2,}|\w+(?:[-./]\w+)*|['’]\w+|[^\w\s]")


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
    sources: list[Source] = []

    def read(path: str) -> list[dict]:
        sources.append(read_sentences(path, data))
        return sources[-1].sentences

    splits = read_splits(data, read)
    train_src = sources[0]
    _check_tag_set(train_src)
    # identical sentences stay in one split
    hold_out(splits, data, config.training.seed, groups=[_key(s) for s in splits["train"]])
    labels = label_list(splits["train"])
    _check_unseen(splits, labels, sources)
    require_held_out(splits, "Too few sentences to hold out validation and test examples.",
                     "Add sentences (a few dozen at least) or give validation and test files.",
                     check_rows)
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
            where = next((s.where for s in sources if splits[split] is s.sentences),
                         sources[0].where)
            rows = [s["row"] for s in splits[split]
                    if any(k in unseen for k, _, _ in entities(s["tags"]))][:5]
            raise DataError(
                f"The {split} data has {listed(sorted(unseen), 'entity type')} that never "
                "occur in the training "
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
                                f"Skipped {plural(sum(dropped.values()), 'empty sentence')}."))
    counts = {split: dict(sorted(entity_types(ex).items())) for split, ex in splits.items()}
    rare = sorted(k for k, n in counts["train"].items() if n < MIN_PER_TYPE_WARN)
    if rare:
        findings.append(Finding(
            "warning", "rare_classes",
            f"{listed(rare, 'Entity type', ('has', 'have'))} fewer than "
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
                                f"{plural(dups, 'training sentence')} repeat an earlier one."
                                f"{extra}"))
    leaks, found = leakage_findings(train_keys, splits, _key, "sentence")
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
    gold, pred, seen = [], [], []
    for logits, feat, example in zip(outputs, features, examples):
        tags, scores = word_predictions(logits, feat["word_ids"], len(example["tags"]), labels)
        gold.append(example["tags"])
        # words cut off by truncation were predicted O: a missed entity there costs recall
        pred.append(tags)
        seen.append([s is not None for s in scores])
    return entity_metrics(gold, pred, seen)


def paired_record(outputs, features, examples, labels: list[str], **_options) -> dict:
    """Entity counts per sentence, for the paired test of two runs (finetuner.evaluation.paired)."""

    tp, fp, fn = [], [], []
    for logits, feat, example in zip(outputs, features, examples):
        tags, _ = word_predictions(logits, feat["word_ids"], len(example["tags"]), labels)
        gold, pred = set(entities(example["tags"])), set(entities(tags))
        tp.append(len(gold & pred))
        fp.append(len(pred - gold))
        fn.append(len(gold - pred))
    return {"kind": "counts", "tp": tp, "fp": fp, "fn": fn}


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


def baselines(train: list[dict], validation: list[dict], test: list[dict],
              labels: list[str] | None = None) -> dict:
    """"Memorised entities": every span seen in training tagged with its most frequent type,
    found again by longest match."""

    seen: dict[tuple[str, ...], Counter] = {}
    for sentence in train:
        for kind, start, end in entities(sentence["tags"]):
            seen.setdefault(tuple(sentence["tokens"][start:end]), Counter())[kind] += 1
    lookup = {span: counts.most_common(1)[0][0] for span, counts in seen.items()}
    longest = max((len(s) for s in lookup), default=0)

    def tag(tokens: list[str]) -> list[str]:
        out, i = ["O"] * len(tokens), 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                kind = lookup.get(tuple(tokens[i:i + n]))
                if kind:
                    out[i:i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        return out

    def score(rows):
        metrics = entity_metrics([r["tags"] for r in rows], [tag(r["tokens"]) for r in rows])
        return {k: metrics[k] for k in ("precision", "recall", "f1") if k in metrics}

    return {"memorised_entities": {"title": "every entity seen in training, tagged with its "
                                            "most frequent type",
                                   "validation": score(validation), "test": score(test)}}


def calibration_pairs(outputs: list, features: list[dict]):
    """(logits, gold tag) of every labelled first sub-token, for temperature scaling."""
    import numpy as np

    rows, gold = [], []
    for logits, feat in zip(outputs, features):
        tags = feat.get("labels")
        if tags is None:
            continue
        for pos, label in enumerate(tags[: len(logits)]):
            if label != -100:
                rows.append(logits[pos])
                gold.append(label)
    return (np.stack(rows).astype("float64"), np.array(gold)) if rows else None


def decision(prediction: dict):
    """What a prediction decides, without its scores: each entity's type and span."""
    return tuple((e["type"], e["start"], e["end"]) for e in prediction["entities"])


def summary(prediction: dict) -> str:
    """"PER: Angela Merkel; LOC: Paris"."""
    found = "; ".join(f"{e['type']}: {e['text']}" for e in prediction["entities"])
    return found or "(no entities)"
