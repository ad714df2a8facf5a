"""Turn engine output (data report, events, results) into what the page shows.

Pure functions returning HTML strings and pandas DataFrames; no gradio, so they are tested
directly. Every string that came from a user (file names, labels, texts) is escaped.
"""

from __future__ import annotations

import pandas as pd

from finetuner.data.splits import sample_note
from finetuner.methods import METHOD_NAMES
from finetuner.models.estimate import human_seconds
from finetuner.tasks import DEFAULT_TASK
from finetuner.ui import words
from finetuner.ui.charts import esc

VERDICT_STYLE = {
    "behind_baseline": ("bad", "#fdecea", "#a12622"),
    "healthy": ("ok", "#e7f6ec", "#1f7a3a"),
    "overfitting": ("warn", "#fff4e0", "#9a5b00"),
    "underfitting": ("warn", "#fff4e0", "#9a5b00"),
    "still_improving": ("warn", "#eef4ff", "#1f4f9a"),
    "no_signal": ("bad", "#fdecea", "#a12622"),
    "class_imbalance": ("warn", "#fff4e0", "#9a5b00"),
    "too_little_data": ("bad", "#fdecea", "#a12622"),
}
STATUS_TEXT = {
    "created": "Not started", "queued": "Waiting in the queue", "running": "Training",
    "completed": "Finished", "stopped": "Stopped", "failed": "Failed",
    "interrupted": "Interrupted (the server stopped while it ran)",
}


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
            f"{tokens['truncated_share']:.1%} longer than max length {tokens['max_length']}"
            f"{esc(sample_note(tokens))}.</p>")
    findings = report.get("findings") or []
    if not [f for f in findings if f["level"] == "warning"]:
        parts.append(message("No problems found in the data.", "ok"))
    for f in findings:
        parts.append(message(f["message"], "warning" if f["level"] == "warning" else "info"))
    parts.append("</div>")
    return "".join(parts)


def label_chart(report: dict) -> str:
    """Horizontal bars (HTML, starting at zero) of the counts that matter for the task."""
    from finetuner.tasks import TASKS

    ui = (TASKS.get(report.get("task", DEFAULT_TASK)) or TASKS[DEFAULT_TASK]).ui
    counts = (report.get("label_counts") or {}).get("train") or {}
    if ui.chart_of_rows or not counts:
        counts = report.get("rows") or {}
    if not counts:
        return ""
    top = max(counts.values()) or 1
    rows = "".join(
        f"<div style='display:flex;align-items:center;gap:6px;margin:2px 0'>"
        f"<span style='width:9em;text-align:right;overflow:hidden;text-overflow:ellipsis;"
        f"white-space:nowrap' title='{esc(k)}'>{esc(k)}</span>"
        f"<span role='img' aria-label='{esc(k)}: {v}' style='display:inline-block;height:14px;"
        f"width:{max(1, round(240 * v / top))}px;background:#4c78a8'></span>"
        f"<span>{v:,}</span></div>" for k, v in counts.items())
    title = ui.chart_title
    return f"<div class='ft-bars'><div><b>{esc(title)}</b></div>{rows}</div>"


def progress_html(status: str, progress: dict | None, note: str = "",
                  average: float | None = None) -> str:
    """The progress line. A run that has ended gives the average speed of its training steps
    (`average`, what the Results tab says), not the last moment's, which swings with what
    the machine was doing."""
    label = STATUS_TEXT.get(status, status)
    if note and note.strip().rstrip(".…").lower() in (label.lower(), status.lower()):
        note = ""  # "Training · … · Training" says it twice
    if not progress:
        body = f"<b>{esc(label)}</b>" + (f" · {esc(note)}" if note else "")
        return f"<div class='ft-progress' aria-live='polite'>{body}</div>"
    step, total = progress.get("step", 0), max(1, progress.get("total_steps", 1))
    pct = 100.0 * step / total
    eta = human_seconds(progress.get("eta_seconds")) if status == "running" else "—"
    return (
        "<div class='ft-progress' aria-live='polite'>"
        f"<div><b>{esc(label)}</b> · step {step:,} / {total:,} · epoch "
        f"{progress.get('epoch', 0):.2f} · "
        + (f"{average:.0f} examples/s on average" if average is not None else
           f"{progress.get('samples_per_second', 0):.0f} examples/s · time left {esc(eta)}")
        + f"{(' · ' + esc(note)) if note else ''}</div>"
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
                score.append({"step": e["step"], "value": val, "series": "validation"})
            train = (e.get("train") or {}).get(metric)
            if train is not None:
                score.append({"step": e["step"], "value": train, "series": "training sample"})
    cols = ["step", "value", "series"]
    return pd.DataFrame(loss, columns=cols), pd.DataFrame(score, columns=cols)


def diagnosis_html(diagnosis: dict | None) -> str:
    if not diagnosis:
        return ""
    kind, bg, fg = VERDICT_STYLE.get(diagnosis["verdict"], VERDICT_STYLE["underfitting"])
    evidence = "".join(f"<li>{esc(e)}</li>" for e in diagnosis.get("evidence", []))
    remedies = "".join(f"<li>{esc(r)}</li>" for r in diagnosis.get("remedies", []))
    notes = "".join(f"<li>{esc(n)}</li>" for n in diagnosis.get("notes") or [])
    return (
        f"<div class='ft-verdict ft-verdict-{kind}' data-verdict='{esc(diagnosis['verdict'])}' "
        f"role='status' style='background:{bg};color:{fg};border:2px solid {fg};"
        "border-radius:6px;padding:10px 14px'>"
        f"<div style='font-size:1.1em'><b>{esc(diagnosis['title'])}</b></div>"
        f"<div><b>Evidence</b><ul>{evidence}</ul></div>"
        f"<div><b>What to do</b><ul>{remedies}</ul></div>"
        + (f"<div><b>Also worth knowing</b><ul>{notes}</ul></div>" if notes else "") + "</div>")


def runs_frame(summaries: list) -> pd.DataFrame:
    cols = ["name", "status", "task", "method", "best validation score",
            "test score (not used for any choice)", "vs best baseline (validation)",
            "train time", "disk", "created", "id"]
    from finetuner.models.estimate import human_seconds
    from finetuner.tasks import TASKS

    def row(s) -> list:
        def score(x):
            return "" if x is None else f"{words.metric_title(s.metric)} {x:.4f}"

        gap = "" if s.baseline_gap is None else f"{s.baseline_gap * 100:+.1f} points"
        task = TASKS[s.task].ui.choice if s.task in TASKS else s.task or ""
        # the status stays its word ("completed", "queued"): API clients read this table
        return [s.name, s.status, task,
                METHOD_NAMES.get(s.method, s.method), score(s.value), score(s.test_value), gap,
                "" if s.seconds is None else human_seconds(s.seconds),
                f"{s.size_bytes / 1e6:,.1f} MB", s.created, s.id]

    return pd.DataFrame([row(s) for s in summaries], columns=cols)


def placeholder(text: str) -> pd.DataFrame:
    """An empty table whose one header says what fills it (gradio shows "1 2 3" otherwise)."""
    return pd.DataFrame(columns=[f"Nothing yet: {text}."])
