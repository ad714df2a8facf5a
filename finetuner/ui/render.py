"""Turn engine output (data report, events, results) into what the page shows.

Pure functions returning HTML strings and pandas DataFrames; no gradio, so they are tested
directly. Every string that came from a user (file names, labels, texts) is escaped.
"""

from __future__ import annotations

import html

import pandas as pd

from ..estimate import human_seconds

VERDICT_STYLE = {
    "healthy": ("ok", "#e7f6ec", "#1f7a3a"),
    "overfitting": ("warn", "#fff4e0", "#9a5b00"),
    "underfitting": ("warn", "#fff4e0", "#9a5b00"),
    "class_imbalance": ("warn", "#fff4e0", "#9a5b00"),
    "too_little_data": ("bad", "#fdecea", "#a12622"),
}
STATUS_TEXT = {
    "created": "Not started", "queued": "Waiting in the queue", "running": "Training",
    "completed": "Finished", "stopped": "Stopped", "failed": "Failed",
    "interrupted": "Interrupted (the server stopped while it ran)",
}


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def message(text: str, level: str = "error") -> str:
    colors = {"error": ("#fdecea", "#a12622", "Problem"), "warning": ("#fff4e0", "#9a5b00",
              "Warning"), "info": ("#eef4fb", "#1d4f91", "Note"), "ok": ("#e7f6ec", "#1f7a3a",
                                                                         "Ready")}
    bg, fg, title = colors.get(level, colors["info"])
    return (f'<div class="ft-msg ft-{level}" role="status" style="background:{bg};color:{fg};'
            f'border-left:4px solid {fg};padding:8px 12px;border-radius:4px;margin:4px 0">'
            f"<b>{title}:</b> {esc(text)}</div>")


def report_html(report: dict) -> str:
    rows = report.get("rows", {})
    parts = ["<div class='ft-report'>"]
    parts.append("<p><b>Rows:</b> " + ", ".join(f"{esc(k)} {v:,}" for k, v in rows.items())
                 + "</p>")
    cols = report.get("columns", {})
    shown = ", ".join(f"{esc(role.replace('_', ' '))}: <code>{esc(col)}</code>"
                      for role, col in cols.items() if col)
    parts.append(f"<p><b>Columns used:</b> {shown}</p>")
    tokens = report.get("token_lengths") or {}
    if tokens:
        parts.append(
            f"<p><b>Length in tokens:</b> median {tokens['p50']}, 90% under {tokens['p90']}, "
            f"99% under {tokens['p99']}, longest {tokens['max']}; "
            f"{tokens['truncated_share']:.1%} longer than max length {tokens['max_length']}.</p>")
    findings = report.get("findings") or []
    if not [f for f in findings if f["level"] == "warning"]:
        parts.append(message("No problems found in the data.", "ok"))
    for f in findings:
        parts.append(message(f["message"], "warning" if f["level"] == "warning" else "info"))
    parts.append("</div>")
    return "".join(parts)


def label_counts_frame(report: dict) -> pd.DataFrame:
    counts = (report.get("label_counts") or {}).get("train") or {}
    rows = [{"label": str(label), "examples": int(n)} for label, n in counts.items()]
    return pd.DataFrame(rows, columns=["label", "examples"])


def progress_html(status: str, progress: dict | None, note: str = "") -> str:
    label = STATUS_TEXT.get(status, status)
    if not progress:
        body = f"<b>{esc(label)}</b>" + (f" · {esc(note)}" if note else "")
        return f"<div class='ft-progress' aria-live='polite'>{body}</div>"
    step, total = progress.get("step", 0), max(1, progress.get("total_steps", 1))
    pct = 100.0 * step / total
    eta = human_seconds(progress.get("eta_seconds")) if status == "running" else "—"
    return (
        "<div class='ft-progress' aria-live='polite'>"
        f"<div><b>{esc(label)}</b> · step {step:,} / {total:,} · epoch "
        f"{progress.get('epoch', 0):.2f} · {progress.get('samples_per_second', 0):.0f} "
        f"examples/s · time left {esc(eta)}{(' · ' + esc(note)) if note else ''}</div>"
        f"<progress max='100' value='{pct:.1f}' style='width:100%;height:14px' "
        f"aria-label='training progress'></progress></div>")


def curves(events: list[dict], metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loss curves (training, validation) and metric curves (train sample, validation)."""
    loss, score = [], []
    for e in events:
        if e.get("type") == "progress" and e.get("loss") is not None:
            loss.append({"step": e["step"], "value": e["loss"], "series": "training loss"})
        elif e.get("type") == "eval":
            if e.get("eval_loss") is not None:
                loss.append({"step": e["step"], "value": e["eval_loss"],
                             "series": "validation loss"})
            val = (e.get("validation") or {}).get(metric)
            if val is not None:
                score.append({"step": e["step"], "value": val, "series": f"validation {metric}"})
            train = (e.get("train") or {}).get(metric)
            if train is not None:
                score.append({"step": e["step"], "value": train, "series": f"train {metric}"})
    cols = ["step", "value", "series"]
    return pd.DataFrame(loss, columns=cols), pd.DataFrame(score, columns=cols)


def diagnosis_html(diagnosis: dict | None) -> str:
    if not diagnosis:
        return ""
    kind, bg, fg = VERDICT_STYLE.get(diagnosis["verdict"], VERDICT_STYLE["underfitting"])
    evidence = "".join(f"<li>{esc(e)}</li>" for e in diagnosis.get("evidence", []))
    remedies = "".join(f"<li>{esc(r)}</li>" for r in diagnosis.get("remedies", []))
    return (
        f"<div class='ft-verdict ft-verdict-{kind}' data-verdict='{esc(diagnosis['verdict'])}' "
        f"role='status' style='background:{bg};color:{fg};border:2px solid {fg};"
        "border-radius:6px;padding:10px 14px'>"
        f"<div style='font-size:1.1em'><b>{esc(diagnosis['title'])}</b></div>"
        f"<div><b>Evidence</b><ul>{evidence}</ul></div>"
        f"<div><b>What to do</b><ul>{remedies}</ul></div></div>")


def metrics_html(results: dict) -> str:
    test = results.get("test") or {}
    status = results.get("status")
    if results.get("error"):
        err = results["error"]
        return message(f"{err.get('message', '')} {err.get('remedy', '')}".strip(), "error")
    head = []
    if not test:
        head.append(message(results.get("note") or "No test metrics for this run.", "info"))
        return "".join(head)
    names = {"accuracy": "Accuracy", "macro_f1": "Macro-F1", "weighted_f1": "Weighted-F1",
             "f1": "F1", "precision": "Precision", "recall": "Recall",
             "exact_match": "Exact match", "token_accuracy": "Token accuracy"}
    cards = "".join(
        f"<div class='ft-card' style='display:inline-block;min-width:120px;margin:4px;"
        f"padding:8px 12px;border:1px solid #ccd;border-radius:6px'><div style='font-size:.85em'>"
        f"{esc(title)}</div><div style='font-size:1.6em' data-metric='{esc(key)}'>"
        f"{test[key]:.3f}</div></div>"
        for key, title in names.items() if isinstance(test.get(key), (int, float)))
    n = test.get("n")
    timing = results.get("timing") or {}
    meta = (f"<p>Held-out test split{f' ({n:,} examples)' if n else ''}, scored once by the "
            f"best checkpoint chosen on validation (step {results.get('best_step')}). "
            f"Training took {human_seconds(timing.get('train_seconds'))} at "
            f"{timing.get('train_samples_per_second', 0):.0f} examples/s.</p>")
    note = message(results["note"], "info") if results.get("note") else ""
    state = "" if status == "completed" else message(f"Run {status}.", "info")
    return state + f"<div class='ft-metrics'>{cards}</div>" + meta + note


def per_class_frame(results: dict) -> pd.DataFrame:
    per = (results.get("test") or {}).get("per_class") or {}
    rows = [{"label": str(k), "precision": v.get("precision"), "recall": v.get("recall"),
             "f1": v.get("f1"), "support": v.get("support")} for k, v in per.items()]
    return pd.DataFrame(rows, columns=["label", "precision", "recall", "f1", "support"])


def confusion_html(results: dict) -> str:
    test = results.get("test") or {}
    matrix, labels = test.get("confusion_matrix"), test.get("labels")
    if not matrix or not labels:
        return ""
    top = max(max(row) for row in matrix) or 1
    head = "".join(f"<th scope='col'>{esc(lab)}</th>" for lab in labels)
    body = []
    for label, row in zip(labels, matrix):
        cells = []
        for j, value in enumerate(row):
            alpha = value / top
            diag = labels[j] == label
            color = f"rgba(31,122,58,{alpha:.2f})" if diag else f"rgba(161,38,34,{alpha:.2f})"
            fg = "#fff" if alpha > 0.55 else "#111"
            cells.append(f"<td style='background:{color};color:{fg};text-align:center;"
                         f"min-width:48px;padding:6px'>{value}</td>")
        body.append(f"<tr><th scope='row'>{esc(label)}</th>{''.join(cells)}</tr>")
    return ("<table class='ft-confusion' aria-label='confusion matrix' "
            "style='border-collapse:collapse'><caption>Confusion matrix: rows are the true "
            "label, columns the predicted label</caption>"
            f"<thead><tr><th>true \\ predicted</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def errors_frame(rows: list[dict], limit: int = 200) -> pd.DataFrame:
    wrong = [r for r in rows if not r.get("correct", True)][:limit]
    cols = ["text", "true", "predicted", "confidence"]
    if wrong and "text_pair" in wrong[0]:
        cols.insert(1, "text_pair")
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in wrong], columns=cols)


def runs_frame(summaries: list) -> pd.DataFrame:
    cols = ["name", "status", "task", "method", "test score", "train time", "created", "id"]
    return pd.DataFrame([s.row() for s in summaries], columns=cols)
