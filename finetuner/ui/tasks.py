"""What differs between tasks on the page: previews, try-it inputs and answers (the column
pickers' labels come from the registry's TaskUI).

Text classification shows a label with probabilities; named entity recognition highlights the
entities in the sentence; question answering highlights the answer in the passage and lists the
runners-up. No gradio here, so it is tested directly.
"""

from __future__ import annotations

import pandas as pd

from finetuner.tasks import DEFAULT_TASK, TASKS, TaskUI, get_task
from finetuner.ui import render
from finetuner.ui.forms import COLUMN_FIELDS, NONE

TASK_CHOICES = [(spec.ui.choice, spec.name) for spec in TASKS.values()]
TASK_INFO = ("Classification sorts texts into your labels (sentiment, spam, topic, legal "
             "category, or a relation between two texts). Multi-label gives each text any "
             "number of labels, none included (clauses, tickets). Regression predicts a number "
             "(a rating, a similarity score). Entity recognition marks names of people, "
             "places, organisations... in sentences. Question answering finds the answer to a "
             "question inside a passage.")


def ui(task: str | None) -> TaskUI:
    """The page's view of a task (the registry's TaskUI); classification when unknown."""
    return (TASKS.get(task or DEFAULT_TASK) or TASKS[DEFAULT_TASK]).ui


def chosen_columns(task: str, report_columns: dict) -> dict:
    """The data report's detected columns on the pickers: {config field: column name}; the
    fields the task does not read are None."""
    reads = {c.field: c.role for c in ui(task).columns}
    return {field: report_columns.get(reads[field]) if field in reads else None
            for field in COLUMN_FIELDS}


def picker_words(task: str) -> dict:
    """Each picker's label, help and visibility for this task ({field: keyword arguments})."""
    reads = {c.field: c for c in ui(task).columns}
    return {field: ({"label": reads[field].label, "info": reads[field].info, "visible": True}
                    if field in reads else {"visible": False}) for field in COLUMN_FIELDS}


def picker_values(task: str, columns: list[str], chosen: dict) -> dict:
    """Each picker's choices and value ({field: keyword arguments}): an optional column
    offers "(none)" first."""
    reads = {c.field: c for c in ui(task).columns}
    out = {}
    for field in COLUMN_FIELDS:
        optional = field in reads and reads[field].optional
        value = chosen.get(field) if chosen.get(field) not in (None, "", NONE) else None
        out[field] = {"choices": [NONE, *columns] if optional else list(columns),
                      "value": value or (NONE if optional else None)}
    return out


def preview(task: str, table_frame, prepared) -> pd.DataFrame:
    """The first rows: the file itself for tables, else the task's parsed examples (CoNLL,
    SQuAD) through its `preview_rows` hook."""
    spec = get_task(task)
    if table_frame is not None and (spec.tables_only or prepared is None):
        return table_frame.head(10).astype(str)
    if prepared is None:
        return pd.DataFrame()
    rows, columns = spec.impl().preview_rows(prepared.train[:10])
    return pd.DataFrame(rows, columns=columns)


def example_for(task: str, text: str, pair: str | None) -> dict:
    """The try-it boxes as one example of the task (its `example_from_input` hook)."""
    return get_task(task).impl().example_from_input(text, pair)


def answer(task: str, pred: dict, example: dict) -> dict:
    """Outputs for the try-it box: try_out (label), try_spans (highlights), try_details; the
    task's TaskUI.answer says which."""
    return ANSWERS[ui(task).answer](pred, example)


def _label(pred: dict, example: dict) -> dict:
    return {"try_out": pred["probabilities"], "try_details": ""}


def _labels(pred: dict, example: dict) -> dict:
    """Multi-label: every label with its probability; those at or above their threshold are
    the answer."""
    thresholds = pred.get("thresholds") or {}
    rows = "".join(
        f"<tr class='{'ft-on' if p >= thresholds.get(n, 0.5) else 'ft-off'}'>"
        f"<td>{'&#10003;' if p >= thresholds.get(n, 0.5) else ''}</td><td>{render.esc(n)}</td>"
        f"<td>{p:.0%}</td><td>{thresholds.get(n, 0.5):.0%}</td></tr>"
        for n, p in sorted(pred["probabilities"].items(), key=lambda kv: -kv[1]))
    head = (f"Labels: <b>{render.esc(', '.join(pred['labels']))}</b>" if pred["labels"] else
            "<b>None of the labels</b> reaches its threshold.")
    details = (f"<div class='ft-answer' data-labels='{render.esc(';'.join(pred['labels']))}'>"
               f"{head}<table class='ft-entities'><thead><tr><th></th><th>Label</th>"
               "<th>Probability</th><th>Threshold (tuned on validation)</th></tr></thead>"
               f"<tbody>{rows}</tbody></table></div>")
    return {"try_details": details}


def _number(pred: dict, example: dict) -> dict:
    low, high = pred.get("range") or (None, None)
    scale = (f" <span style='color:#555'>(the training targets ran from {low:.4g} to "
             f"{high:.4g})</span>" if low is not None else "")
    return {"try_details": f"<div class='ft-answer ft-number' data-value='{pred['value']:.6g}'>"
                           f"Predicted: <b style='font-size:1.6em'>{pred['value']:.4g}</b>"
                           f"{scale}</div>"}


def _ner(pred: dict, example: dict) -> dict:
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


def _qa(pred: dict, example: dict) -> dict:
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


# TaskUI.answer -> how try-it shows a prediction
ANSWERS = {"label": _label, "labels": _labels, "number": _number, "entities": _ner,
           "answer": _qa}
