"""Tag schemes and entity-level scores for named entity recognition.

Owns: the shape of a tag (O, B-TYPE, I-TYPE), turning IOB1 (and BIOES / BILOU) tags into BIO,
repairing an I- tag that opens an entity, cutting a tag sequence into entities, and the
entity-level precision / recall / F1 that CoNLL reports. Scores follow seqeval's default mode
(conlleval): an I- tag after O or after another type opens a new entity, and an entity counts
as found only when its type and both ends match. Imports neither torch nor transformers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

TAG = re.compile(r"^([BIESLU])-(\S+)$")
# BIOES (S = single, E = end) and BILOU (U = unit, L = last) map onto BIO like this
TO_BIO = {"B": "B", "I": "I", "E": "I", "L": "I", "S": "B", "U": "B"}


def split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', ''). The tag must be well formed."""
    if tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def is_valid(tag: str) -> bool:
    return tag == "O" or TAG.match(tag) is not None


def uses_other_scheme(tags: Sequence[str]) -> bool:
    """True when some tag carries a BIOES / BILOU prefix (S-, E-, U-, L-)."""
    return any(t[:2] in ("S-", "E-", "U-", "L-") for t in tags)


def to_bio_prefixes(tags: Sequence[str]) -> list[str]:
    """BIOES / BILOU prefixes to BIO (S- and U- open, E- and L- continue)."""
    out = []
    for tag in tags:
        prefix, kind = split_tag(tag)
        out.append(tag if prefix == "O" else f"{TO_BIO[prefix]}-{kind}")
    return out


def opening_i_tags(tags: Sequence[str]) -> list[int]:
    """Positions of I- tags that open an entity (after O, at the start, after another type)."""
    found = []
    previous = "O"
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        if prefix == "I" and split_tag(previous)[1] != kind:
            found.append(i)
        previous = tag
    return found


def bio_style_b_tags(tags: Sequence[str]) -> int:
    """B- tags that open an entity after O or another type: BIO does this, IOB1 never does."""
    count = 0
    previous = "O"
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "B" and split_tag(previous)[1] != kind:
            count += 1
        previous = tag
    return count


def repair_bio(tags: Sequence[str]) -> list[str]:
    """I-X that opens an entity becomes B-X; this is also the IOB1 -> BIO conversion."""
    out = list(tags)
    for i in opening_i_tags(tags):
        out[i] = "B-" + split_tag(tags[i])[1]
    return out


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, one past the last word) for each entity of a BIO sequence.

    B-X always opens an entity; I-X continues an open entity of type X and otherwise opens
    one (the lenient reading that seqeval and conlleval use).
    """
    found: list[tuple[str, int, int]] = []
    kind, start = "", -1
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, tag_kind = split_tag(tag)
        continues = prefix == "I" and tag_kind == kind and start >= 0
        if start >= 0 and not continues:
            found.append((kind, start, i))
            kind, start = "", -1
        if prefix in ("B", "I") and not continues:
            kind, start = tag_kind, i
    return found


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def entity_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                   scored: Sequence[Sequence[bool]] | None = None) -> dict:
    """Entity-level micro precision / recall / F1, per type, and word-level accuracy.

    `scored` marks the words that count for token_accuracy (those the model saw); entity
    scores always cover every word.
    """
    tp: Counter = Counter()
    n_gold: Counter = Counter()
    n_pred: Counter = Counter()
    words = right = 0
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        gold_set = set(entities(gold_tags))
        pred_set = set(entities(pred_tags))
        n_gold.update(e[0] for e in gold_set)
        n_pred.update(e[0] for e in pred_set)
        tp.update(e[0] for e in gold_set & pred_set)
        mask = scored[i] if scored is not None else [True] * len(gold_tags)
        words += sum(mask)
        right += sum(m and g == p for g, p, m in zip(gold_tags, pred_tags, mask))
    precision, recall, f1 = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    per_class = {}
    for kind in sorted(set(n_gold) | set(n_pred)):
        p, r, f = _prf(tp[kind], n_pred[kind], n_gold[kind])
        per_class[kind] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
                           "support": n_gold[kind]}
    return {
        "f1": round(f1, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "token_accuracy": round(right / words, 4) if words else 0.0,
        "per_class": per_class,
        "n": len(gold),
    }
