"""Question answering on the model side: windows over long contexts and span decoding.

Owns: the question + context windows (doc_stride, questions cut to half of max_length), the
answer's token positions for training, the n-best start/end spans of each window, and the
best answer per question over all its windows (with "no answer" where the task allows it).
transformers 5 has no question-answering pipeline; this is the decoding it did.
"""

from __future__ import annotations

import math

N_BEST = 20  # spans kept per window and per question
RUNNERS_UP = 4

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
