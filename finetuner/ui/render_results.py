"""The Results tab's sections: the test metrics with their baselines, the thresholds' rule,
calibration, the ONNX check and the suspected label errors; the per-class table, the
confusion matrix and the wrong test examples. Pure functions like `finetuner.ui.render`
(HTML strings and DataFrames, no gradio); every string that came from a user is escaped.
"""

from __future__ import annotations

import pandas as pd

from finetuner.evaluation.baselines import standing
from finetuner.metrics.multilabel import RULE_WORDS
from finetuner.models.estimate import human_seconds
from finetuner.ui import words
from finetuner.ui.charts import esc, line_chart
from finetuner.ui.render import message


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
    cards = "".join(
        f"<div class='ft-card' title='{esc(words.metric_help(key))}' style='display:inline-block;"
        f"min-width:120px;margin:4px;padding:8px 12px;border:1px solid #ccd;border-radius:6px'>"
        f"<div style='font-size:.85em'>{esc(title)}</div><div style='font-size:1.6em' "
        f"data-metric='{esc(key)}'>{test[key]:.4g}</div></div>"
        for key, (title, _) in words.METRICS.items() if isinstance(test.get(key), (int, float)))
    n = test.get("n")
    timing = results.get("timing") or {}
    took = f"Training took {human_seconds(timing.get('train_seconds'))}"
    took += (f"; its steps ran at {timing.get('train_samples_per_second', 0):.0f} examples/s "
             "on average (evaluations not counted)." if timing.get("steps") else
             # head-only on a mean-pooled body: no steps, one pass of the frozen encoder
             ": one pass, the head fitted on the frozen encoder's features.")
    meta = (f"<p>Held-out test split{f' ({n:,} examples)' if n else ''}, scored once by the "
            f"best checkpoint chosen on validation (step {results.get('best_step')}). "
            f"{took}</p>")
    note = message(results["note"], "info") if results.get("note") else ""
    state = "" if status == "completed" else message(f"Run {status}.", "info")
    return (state + f"<div class='ft-metrics'>{cards}</div>" + meta
            + baselines_html(results) + thresholds_html(results) + calibration_html(results)
            + label_check_html(results) + onnx_html(results)
            + note)


RULE_SHORT = {"per_label": "each label on its own", "one": "one threshold for all",
              "micro": "one per label, chosen together"}


def thresholds_html(results: dict) -> str:
    """Multi-label: how the decision thresholds were set, and why that rule."""
    chosen = results.get("threshold_rule") or {}
    if not chosen.get("rule"):
        return ""
    check = chosen.get("check") or {}
    # one clause per way of setting them, the chosen one marked (a run of "against ... for
    # ... at ... and ..." read as one knot)
    scored = [f"{RULE_SHORT[r]} {check[r]:.3f}" + (" (chosen)" if r == chosen["rule"] else "")
              for r in RULE_WORDS if r in check]
    why = (" Each way was tuned on one half of the validation split and scored on the other "
           f"(micro-F1): {'; '.join(scored)}." if chosen["rule"] in check and len(scored) > 1
           else "")
    return (f"<p class='ft-thresholds'>Decision thresholds: {esc(RULE_WORDS[chosen['rule']])}, "
            f"tuned on the validation split.{esc(why)}</p>")


def _units(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def onnx_html(results: dict) -> str:
    """The ONNX export's check: each runtime's agreement with PyTorch and speed."""
    info = results.get("onnx") or {}
    if not info:
        return ""
    from finetuner.serving.runtimes import PENDING, TITLES, points

    if info.get("error"):
        return f"<div class='ft-onnx'>{message(info['error'], 'info')}</div>"
    if info.get("pending"):
        return f"<div class='ft-onnx'>{message(PENDING, 'info')}</div>"

    metric = info.get("metric", "")
    # numbers (regression): how far apart the answers are, in the target's units, before
    # the share that counts as the same
    numbers = any("max_answer_difference" in (split.get(name) or {})
                  for split in info["splits"].values() for name in ("onnx", "onnx-int8"))

    def agreement(val: dict, test: dict) -> str:
        shares = f"{val.get('agreement', 0):.1%} / {test.get('agreement', 0):.1%}"
        if not numbers:
            return shares
        return (f"{_units(val.get('max_answer_difference'))} / "
                f"{_units(test.get('max_answer_difference'))} (the same on {shares})")

    rows = []
    for name in ("torch", "onnx", "onnx-int8"):
        val = (info["splits"].get("validation") or {}).get(name) or {}
        test = (info["splits"].get("test") or {}).get(name) or {}
        kept = name == "torch" or info["kept"][name]["kept"]
        cells = [TITLES[name] + ("" if kept else f" (not kept: {info['kept'][name]['why']})"),
                 "reference" if name == "torch" else agreement(val, test),
                 "" if name == "torch" else f"{points(val.get('difference_points'))} / "
                 f"{points(test.get('difference_points'))}",
                 f"{info['latency_ms'].get(name, 0):.1f} ms",
                 f"{info['rows_per_second'].get(name, 0):.0f}"]
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    head = ("<tr><th>runtime</th><th>"
            + ("largest difference from PyTorch's number, in your target's units (validation "
               "/ test)" if numbers else "answers that agree with PyTorch (validation / test)")
            + "</th>"
            f"<th>{esc(words.metric_title(metric))} difference, points</th><th>one text</th>"
            "<th>texts/s in batches</th></tr>")
    text = ("The model is also exported to ONNX (a format fast runtimes read) in full "
            f"precision and as int8 (smaller, usually faster). int8 is kept "
            f"only when it loses at most {info.get('max_drop_points')} points on validation and "
            f"gives PyTorch's answer on at least {info.get('min_agreement', 0.9):.0%} of it; "
            f"the test column is reported, not used to choose. The try-it box uses "
            f"{esc(TITLES[info['preferred']])} and file predictions "
            f"{esc(TITLES[info.get('preferred_batch', 'torch')])}: the fastest kept runtimes "
            "when the check ran."
            + (f" Agreeing means {esc(info['same_means'])}." if info.get("same_means") else ""))
    return (f"<div class='ft-onnx'><p><b>ONNX export</b></p><p>{text}</p>"
            f"<table>{head}{''.join(rows)}</table></div>")


MIN_RELIABILITY_ROWS = 200  # below this a reliability plot zigzags by chance
MIN_BIN_COUNT = 10


def calibration_html(results: dict) -> str:
    """Expected calibration error before and after the temperature, with a reliability plot
    (accuracy against confidence per bin; a calibrated model follows the diagonal)."""
    calib = results.get("calibration") or {}
    if not calib:
        return ""
    n = calib.get("n") or 0
    bins = [b for key in ("bins_before", "bins_after") for b in calib.get(key) or []]
    if n < MIN_RELIABILITY_ROWS:
        chart = (f"<p class='ft-reliability-none'>No reliability plot: on {n:,} "
                 f"{esc(calib.get('units', 'examples'))} its bins hold a handful of answers "
                 f"each and zigzag by chance; it needs about {MIN_RELIABILITY_ROWS} to mean "
                 "anything.</p>")
    else:
        # a bin of a few answers is noise: drawn from MIN_BIN_COUNT answers on, each point
        # saying how many it holds
        rows = [{"step": b["confidence"], "value": b["accuracy"], "series": name}
                for name, key in (("before", "bins_before"), ("calibrated", "bins_after"))
                for b in calib.get(key) or [] if (b.get("count") or 0) >= MIN_BIN_COUNT]
        rows += [{"step": x, "value": x, "series": "perfectly calibrated"} for x in (0.0, 1.0)]
        counts = sorted(b.get("count") or 0 for b in bins
                        if (b.get("count") or 0) >= MIN_BIN_COUNT)
        chart = line_chart(pd.DataFrame(rows), "Reliability: how often the model is right (y) "
                           "when it is this confident (x)", x_label="confidence",
                           legend_values=False)
        if counts:
            chart += (f"<p style='color:#555'>Each point is a bin of {counts[0]:,} to "
                      f"{counts[-1]:,} answers; bins of fewer than {MIN_BIN_COUNT} are left "
                      "out.</p>")
    better = calib["ece_after"] <= calib["ece_before"]
    text = (f"Probabilities are calibrated: the model's scores are divided by a temperature "
            f"of {calib['temperature']:g} (fitted on the validation split) so that a 90% answer "
            f"is right about 90% of the time. The expected calibration error (the average gap "
            f"between confidence and accuracy) on the {calib['split']} "
            f"split ({calib['n']:,} {calib['units']}) went from {calib['ece_before']:.3f} to "
            f"{calib['ece_after']:.3f}{'' if better else ' (no better: it was already calibrated)'}"
            ". The try-it box, file predictions and the export use the calibrated "
            "probabilities; predictions do not change.")
    return f"<div class='ft-calibration'><p>{esc(text)}</p>{chart}</div>"


def baselines_html(results: dict) -> str:
    """The model beside simple baselines on the same splits (validation picks nothing here:
    both columns are shown for the user to judge)."""
    base = results.get("baselines") or {}
    metric = results.get("metric") or "macro_f1"
    model_val = (results.get("validation") or {}).get(metric)
    model_test = (results.get("test") or {}).get(metric)
    if not base:
        return ""

    def cell(x):
        # a constant answer has no correlation: said, not left blank
        return "undefined (one answer for all)" if x is None else f"{x:.3f}"

    rows = [f"<tr style='font-weight:bold'><td>This fine-tuned model</td><td>{cell(model_val)}"
            f"</td><td>{cell(model_test)}</td></tr>"]
    for b in base.values():
        rows.append(f"<tr><td>{esc(b['title'])}</td>"
                    f"<td>{cell((b.get('validation') or {}).get(metric))}</td>"
                    f"<td>{cell((b.get('test') or {}).get(metric))}</td></tr>")
    best = max(base.values(), key=lambda b: (b.get("test") or {}).get(metric) or 0)
    line = ""
    top = (best.get("test") or {}).get(metric)
    if top is not None and model_test is not None:
        line = ("<p>On the test split fine-tuning " + standing(
            (model_test - top) * 100, f"the best baseline ({esc(best['title'])})") + ".</p>")
    shown = words.metric_title(metric)
    return ("<div class='ft-baselines'><b>Beside simple baselines</b> (" + esc(shown)
            + ", same splits)<table class='ft-methods'><thead><tr><th>Model</th>"
            "<th>Validation</th><th>Test</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>" + line + "</div>")


def per_class_frame(results: dict) -> pd.DataFrame:
    test = results.get("test") or {}
    per = test.get("per_class") or test.get("per_label") or {}
    # plain headers: "F1" and a count in words rather than "f1" and "support"
    cols = ["label", "precision", "recall", "F1", "how many in the test split"]
    rows = [dict(zip(cols, [str(k), v.get("precision"), v.get("recall"), v.get("f1"),
                            v.get("support")])) for k, v in per.items()]
    return pd.DataFrame(rows, columns=cols)


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
    """The test rows the model got wrong (each task writes its own columns)."""
    wrong = [r for r in rows if not r.get("correct", True)][:limit]
    if not wrong:  # an empty frame would show gradio's "1 2 3" header
        return pd.DataFrame(columns=[f"None: the model got all {len(rows)} test examples right."
                                     if rows else "No test examples were scored."])
    cols = [c for c in wrong[0] if c != "correct"]
    # the page's words for the record's keys (the predictions file keeps the keys)
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in wrong], columns=cols).rename(
        columns={"text_pair": "second text"})


def label_check_html(results: dict) -> str:
    """The label check when it shows no table: nothing flagged, or too weak to flag."""
    info = results.get("label_issues") or {}
    if not info or info.get("flagged"):
        return ""  # the table below says it
    if info.get("unreliable"):
        return message(
            f"Label check: no row is flagged. The check (each training row scored by a model "
            f"that never saw it) agrees with only {info['agreement']:.0%} of your labels, "
            f"below the {info.get('min_agreement', 0.85):.0%} it needs before it can point at "
            "a wrong one; with more data, or a model that learns the task better, it can.",
            "info")
    return message(f"Label check: no suspected label errors among {info['checked']:,} "
                   f"training rows (the check agrees with {info['agreement']:.0%} of the "
                   "given labels).", "ok")


def label_issues_frame(info: dict) -> pd.DataFrame:
    """Training rows whose given label looks wrong, most suspicious first."""
    rows = (info or {}).get("rows") or []
    pairs = any(r.get("pair") for r in rows)
    cols = ["row", "text", *(["second text"] if pairs else []), "given label",
            "suggested label", "chance the given label is right",
            "check right when it suggests this"]

    def pct(x):
        return "" if x is None else f"{x:.0%}" if x >= 0.01 else "<1%"
    return pd.DataFrame([{"row": r["row"], "text": r["text"], "second text": r.get("pair"),
                          "given label": r["given"], "suggested label": r["suggested"],
                          "chance the given label is right": pct(r["given_probability"]),
                          "check right when it suggests this": pct(r.get("check_precision"))}
                         for r in rows], columns=cols)


def label_issues_title(info: dict) -> str:
    if not info:
        return "Suspected label errors"
    sample = (f" (a random {info['checked']:,} of {info['n_train']:,})"
              if info.get("checked", 0) < info.get("n_train", 0) else "")
    shown = len(info.get("rows") or [])
    more = f"; the {shown} most suspicious shown, all in the CSV" if shown < info["flagged"] \
        else ""
    agreement = info.get("agreement")
    agrees = (f" It agrees with {agreement:.0%} of the given labels"
              + ("; below 90% its flags are places to look, not findings." if agreement < 0.9
                 else ".")) if agreement is not None else ""
    return (f"Suspected label errors: {info['flagged']:,} flagged among {info['checked']:,} "
            f"training rows checked{sample}, by a model that never saw each row. Strongest "
            f"first: the given label unlikely and the check reliable on what it suggests"
            f"{more}.{agrees} 'row' is the line in your training file; each is a suspicion to "
            "read, not a verdict.")
