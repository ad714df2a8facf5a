"""Long documents: a text longer than max length is read as overlapping windows, each window
is one model input (with the document's label at training time), and the windows' scores are
pooled into one answer per document (the mean of their logits, or their max).

Used by single- and multi-label classification and regression when the data report turned
windows on (`options["windows"]`); pairs of texts are never windowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def featurize(examples: Sequence[dict], tokenizer, max_length: int, overlap: int,
              max_windows: int, label_of: Callable[[dict], object | None]) -> list[dict]:
    """Windows of each example's text: features with "doc" (the example's index) and, when
    `label_of(example)` is not None, its "labels"."""
    texts = [e["text"] for e in examples]
    if not texts:
        return []
    enc = tokenizer(texts, truncation=True, max_length=max_length,
                    stride=min(overlap, max(0, max_length // 2 - 2)),
                    return_overflowing_tokens=True)
    docs = enc["overflow_to_sample_mapping"]
    keys = [k for k in MODEL_KEYS if k in enc]
    seen: dict[int, int] = {}
    feats = []
    for i, doc in enumerate(docs):
        seen[doc] = seen.get(doc, 0) + 1
        if seen[doc] > max_windows:
            continue
        item = {k: enc[k][i] for k in keys}
        item["doc"] = int(doc)
        label = label_of(examples[doc])
        if label is not None:
            item["labels"] = label
        feats.append(item)
    return feats


def pool(outputs: Sequence, features: Sequence[dict], n_examples: int, how: str = "mean"):
    """One score vector per example from its windows' outputs (outputs unchanged when the
    features are not windows)."""
    import numpy as np

    if not features or "doc" not in features[0]:
        return list(outputs)
    groups: list[list] = [[] for _ in range(n_examples)]
    for out, feat in zip(outputs, features):
        groups[feat["doc"]].append(np.asarray(out, dtype="float64"))
    reduce = np.max if how == "max" else np.mean
    return [reduce(np.stack(g), axis=0) for g in groups]


def windows_of(features: Sequence[dict], n_examples: int) -> list[int]:
    """How many windows each example was read in."""
    counts = [0] * n_examples
    for i, feat in enumerate(features):
        counts[feat.get("doc", i)] += 1
    return counts
