"""Extractive question answering: what differs from the other tasks.

Owns: the split by article (or paragraph), the QA data report (answers moved or found,
unanswerable questions, duplicates, leakage, windows per question, answers too long to
predict), SQuAD exact match / F1, the test rows, and the QA usage snippet. Reading files is
in `qa_read`, windows and span decoding in `qa_spans`; their hooks are re-exported here.

Example dicts: {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]},
"title" (article, or None), "row"}. An empty answer list marks an unanswerable question
(SQuAD 2 style). Inference examples are {"question", "context"} or {"text", "pair"}.

"No answer" is predicted (empty answer, when the [CLS] score beats every span) only by models
whose training data held unanswerable questions: `prepare` records that as the task option
`allow_no_answer`, which training and the exported model pass to `decode` and `metrics`.
Without it decoding always returns the best span, as run_qa.py does for SQuAD 1.1.
"""

from __future__ import annotations

import math
from collections import Counter

from finetuner.config import RunConfig
from finetuner.data.splits import (
    DataReport,
    Finding,
    TokenCounter,
    duplicate_count,
    leakage_findings,
    length_stats,
    sample_indices,
    sample_note,
    token_sample,
)
from finetuner.english import plural
from finetuner.metrics.squad import exact_match, f1_score, squad_scores
from finetuner.tasks import PreparedData
from finetuner.tasks.pipeline import hold_out, read_splits, require_held_out
from finetuner.tasks.qa_read import _Log, examples_from_frame, read_examples  # noqa: F401
from finetuner.tasks.qa_spans import decode, featurize  # noqa: F401  (the task's hooks)

MIN_ARTICLES = 10  # fewer articles than this: hold out paragraphs, not whole articles

# ---------------------------------------------------------------------------- preparation


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    data = config.data
    log = _Log()
    used: list[dict] = []  # the columns of each file read, the training file's first

    def read(path: str) -> list[dict]:
        examples, columns = read_examples(path, config, log)
        used.append(columns)
        return examples

    splits = read_splits(data, read)
    columns = used[0]
    split_by = _split(splits, data, config.training.seed)
    require_held_out(splits, "Too few paragraphs to hold out validation and test questions.",
                     "Add data (at least a few paragraphs with questions) or give validation "
                     "and test files.", check_rows)
    report = _report(splits, columns, log, split_by, data, count_tokens)
    return PreparedData(splits["train"], splits["validation"], splits["test"], [], report)


def _split(splits: dict, data, seed: int) -> str:
    """Hold out whole articles (or paragraphs), so no paragraph sits in two splits."""
    train = splits["train"]
    titles = {e["title"] for e in train}
    by_title = None not in titles and len(titles) >= MIN_ARTICLES
    groups = [e["title"] if by_title else e["context"] for e in train]
    if not hold_out(splits, data, seed, groups=groups):
        return "files"
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
        findings.append(Finding("info", "duplicates",
                                f"{plural(dups, 'training question')} repeat an earlier "
                                "question about the same context."))
    leaks, found = leakage_findings(train_keys, splits, _key, "question",
                                  "with the same context in the training data")
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


def metrics(outputs, features, examples, labels: list[str], **options) -> dict:
    """SQuAD exact match and F1 (0-1), best over the gold answers of each question."""

    predictions = decode(outputs, features, examples, labels, **options)
    return squad_scores([p["answer"] for p in predictions],
                        [e["answers"]["text"] for e in examples])


def paired_record(outputs, features, examples, labels: list[str], **options) -> dict:
    """SQuAD F1 per question, for the paired test of two runs (finetuner.evaluation.paired)."""

    predictions = decode(outputs, features, examples, labels, **options)
    return {"kind": "mean", "values": [f1_score(p["answer"], e["answers"]["text"])
                                       for p, e in zip(predictions, examples)]}


def _trim(context: str, around: int | None, width: int = 300) -> str:
    if len(context) <= width:
        return context
    at = max(0, min((around or 0) - width // 2, len(context) - width))
    return ("…" if at else "") + context[at : at + width] + ("…" if at + width < len(context)
                                                            else "")


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **options) -> list[dict]:
    """Test questions with the model's answer, wrong ones first (most confident first)."""

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


def calibration_pairs(outputs: list, features: list[dict]):
    """The start and the end position of each window, as two classification problems over the
    window's tokens (padding positions are masked out), for temperature scaling."""
    import numpy as np

    rows, gold = [], []
    for (start, end), feat in zip(outputs, features):
        if "start_positions" not in feat:
            continue
        n = len(feat["input_ids"])
        for logits, pos in ((start, feat["start_positions"]), (end, feat["end_positions"])):
            rows.append(np.asarray(logits[:n], dtype="float64"))
            gold.append(pos)
    if not rows:
        return None
    width = max(len(r) for r in rows)
    padded = np.full((len(rows), width), -1e9)
    for i, r in enumerate(rows):
        padded[i, : len(r)] = r
    return padded, np.array(gold)


def decision(prediction: dict):
    """What a prediction decides, without its scores: the answer span (or no answer)."""
    return (prediction.get("start"), prediction.get("end"), bool(prediction.get("no_answer")))


def summary(prediction: dict) -> str:
    """The answer and its probability."""
    return f"{prediction['answer'] or '(no answer)'}\t{prediction['probability']:.3f}"
