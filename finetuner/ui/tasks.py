"""What differs between tasks on the page: column names, examples, previews, try-it answers.

Text classification shows a label with probabilities; named entity recognition highlights the
entities in the sentence; question answering highlights the answer in the passage and lists the
runners-up. No gradio here, so it is tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from . import render


@dataclass(frozen=True)
class TaskUI:
    name: str
    title: str
    roles: tuple[str | None, str | None, str | None]  # report column roles behind the dropdowns
    column_labels: tuple[str, str, str]
    column_info: tuple[str, str, str]
    text_label: str
    pair_label: str | None
    pair_always: bool


TASKS = {
    "classification": TaskUI(
        "classification", "Text classification", ("text", "text_pair", "label"),
        ("Text column", "Second text column (optional)", "Label column"),
        ("The text to classify.", "Only for tasks about a pair of texts.", "The answer to learn."),
        "Text to classify", "Second text", pair_always=False),
    "ner": TaskUI(
        "ner", "Named entity recognition", ("tokens", None, "tags"),
        ("Tokens column", "(not used)", "Tags column"),
        ("Words of each sentence.", "", "One BIO tag per word (B-PER, I-PER, O, ...)."),
        "Sentence", None, pair_always=False),
    "qa": TaskUI(
        "qa", "Question answering", ("question", "context", "answer"),
        ("Question column", "Context column", "Answer column"),
        ("The question.", "The passage that holds the answer.",
         "The answer text, copied from the passage."),
        "Question", "Passage (context)", pair_always=True),
}
TASK_CHOICES = [(t.title, t.name) for t in TASKS.values()]
TASK_INFO = ("Classification sorts texts into your labels (sentiment, spam, topic, legal "
             "category, or a relation between two texts). Entity recognition marks names of "
             "people, places, organisations... in sentences. Question answering finds the answer "
             "to a question inside a passage.")


def ui(task: str | None) -> TaskUI:
    return TASKS.get(task or "classification", TASKS["classification"])


def chosen_columns(task: str, report_columns: dict) -> dict:
    """Report columns mapped onto the three dropdowns (text_col, pair_col, label_col)."""
    roles = ui(task).roles
    return {name: (report_columns.get(role) if role else None)
            for name, role in zip(("text_col", "pair_col", "label_col"), roles)}


def preview(task: str, table_frame, prepared) -> pd.DataFrame:
    """The first rows: the file itself for tables, the parsed examples for CoNLL or SQuAD."""
    if task == "classification" and table_frame is not None:
        return table_frame.head(10).astype(str)
    rows = prepared.train[:10] if prepared is not None else []
    if task == "ner":
        return pd.DataFrame([{"sentence": " ".join(e["tokens"]), "tags": " ".join(e["tags"])}
                             for e in rows], columns=["sentence", "tags"])
    if task == "qa":
        return pd.DataFrame([{"question": e["question"], "context": _short(e["context"]),
                              "answer": "; ".join(e["answers"]["text"]) or "(no answer)"}
                             for e in rows], columns=["question", "context", "answer"])
    return table_frame.head(10).astype(str) if table_frame is not None else pd.DataFrame()


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def example_for(task: str, text: str, pair: str | None) -> dict:
    if task == "qa":
        return {"question": text, "context": pair or ""}
    if task == "ner":
        return {"text": text}
    return {"text": text, **({"pair": pair} if pair else {})}


def answer(task: str, pred: dict, example: dict) -> dict:
    """Outputs for the try-it box: try_out (label), try_spans (highlights), try_details."""
    if task == "ner":
        entities = pred.get("entities") or []
        spans = {"text": example["text"], "entities": [
            {"entity": e["type"], "start": e["start"], "end": e["end"]} for e in entities
            if e.get("start") is not None]}
        rows = "".join(f"<tr><td>{render.esc(e['text'])}</td><td>{render.esc(e['type'])}</td>"
                       f"<td>{e['score']:.0%}</td></tr>" for e in entities)
        details = (f"<table class='ft-entities'><thead><tr><th>Entity</th><th>Type</th>"
                   f"<th>Confidence</th></tr></thead><tbody>{rows}</tbody></table>" if rows else
                   render.message("No entities found in this sentence.", "info"))
        return {"try_spans": spans, "try_details": details}
    if task == "qa":
        context = example["context"]
        if pred.get("no_answer") or not pred.get("answer"):
            spans = {"text": context, "entities": []}
            head = "No answer in this passage."
        else:
            spans = {"text": context, "entities": [
                {"entity": "answer", "start": pred["start"], "end": pred["end"]}]}
            head = (f"Answer: <b>{render.esc(pred['answer'])}</b> "
                    f"({pred.get('probability', 0):.0%} confident)")
        others = "".join(f"<li>{render.esc(r['answer'])} ({r.get('probability', 0):.0%})</li>"
                         for r in pred.get("runners_up") or [] if r.get("answer"))
        details = f"<div class='ft-answer'>{head}" + (
            f"<div>Runners-up:<ol>{others}</ol></div>" if others else "") + "</div>"
        return {"try_spans": spans, "try_details": details}
    return {"try_out": pred["probabilities"], "try_details": ""}
