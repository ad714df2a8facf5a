"""The try-it box's input, fitted to what the model reads, with a sentence when it is cut.

The characters were already capped (Limits.check_try_text, FINETUNER_MAX_TRY_CHARS) before
anything is tokenised. Classification and entity recognition read at most the model's max
length in tokens (the rest is cut, and the answer says so); question answering reads long
passages in windows, at most FINETUNER_MAX_QA_WINDOWS of them: a longer passage is searched
only in its beginning, and the answer says how much was read.

A run whose verdict is behind_baseline (a simple baseline beats it on validation) gets a warning
above every answer (`warning`), so nobody tries the model without seeing that first.
"""

from __future__ import annotations

from finetuner.tasks.qa_spans import limit_windows


def fit(predictor, example: dict, max_qa_windows: int) -> tuple[dict, str]:
    """(the example the model is given, a note for the user or "")."""
    tokenizer, max_length = predictor.tokenizer, predictor.max_length
    if predictor.spec.context_windows:
        context = example.get("context") or ""
        kept, total = limit_windows(example.get("question") or "", context, tokenizer,
                                    max_length, int(predictor.options.doc_stride),
                                    max_qa_windows)
        if len(kept) == len(context):
            return example, ""
        return {**example, "context": kept}, (
            f"The passage is long ({total} windows of {max_length} tokens): only its first "
            f"{max_qa_windows} windows, {len(kept):,} of {len(context):,} characters, were "
            f"searched for the answer (FINETUNER_MAX_QA_WINDOWS). Paste the part that holds "
            "the answer, or ask the administrator to raise the cap.")
    text, pair = example.get("text") or "", example.get("pair")
    n = len(tokenizer(text, pair, truncation=False, verbose=False)["input_ids"])
    if n <= max_length:
        return example, ""
    options = predictor.options
    if options.windows and not pair:
        overlap = int(options.window_overlap)
        count = 1 + -(-(n - max_length) // max(1, max_length - 2 - overlap))
        cap = int(options.max_windows)
        read = "all of it" if count <= cap else f"its first {cap} windows; the rest was not used"
        return example, (f"This text has {n:,} tokens: the model read it in {min(count, cap)} "
                         f"overlapping windows of {max_length} tokens ({read}) and pooled "
                         f"their scores ({options.pooling}).")
    return example, (f"The model read the first {max_length} of this text's {n:,} tokens, the "
                     "max length it was trained with; the rest was not used.")


def warning(results) -> str:
    """The warning line above a run's answers: its verdict is behind_baseline ("" otherwise,
    and for a run without results). `results` is the run's results mapping."""
    from finetuner.evaluation.diagnostics import warning as behind

    return behind((results or {}).get("diagnosis"))
