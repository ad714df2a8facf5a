"""The Compare & tune tab's views: a comparison (members side by side, their validation curves
overlaid, the winner by validation and the trade-off) and a search (score per trial, the best
so far, how much each setting mattered). Pure functions of `Groups.view`; every name escaped.
"""

from __future__ import annotations

import pandas as pd

from finetuner.server.compare import METHOD_NAMES
from finetuner.ui import words
from finetuner.ui.charts import SERIES_COLORS, esc, line_chart
from finetuner.ui.render import STATUS_TEXT, message

GROUP_STATUS = {"running": "Running", "stopping": "Stopping", "stopped": "Stopped",
                "finished": "Finished", "failed": "Failed"}
PARAM_TITLES = {"learning_rate": "learning rate", "epochs": "epochs", "batch_size": "batch size",
                "warmup_ratio": "warmup share", "weight_decay": "weight decay",
                "dropout": "dropout", "lora_r": "LoRA rank",
                "lora_alpha_ratio": "LoRA alpha / rank"}


def _num(x, spec=".4f") -> str:
    return "" if x is None else format(x, spec)


def status_line(view: dict) -> str:
    meta = view.get("meta") or {}
    status = meta.get("status")
    if view["kind"] == "runs":
        return ""
    what = {"compare": "Comparison", "curve": "Learning curve"}.get(view["kind"], "Search")
    text = f"{what} '{meta.get('name', '')}': {GROUP_STATUS.get(status, status)}."
    if view["kind"] in ("compare", "curve"):
        members = view["summary"]["members"]
        done = sum(r["status"] in ("completed", "stopped", "failed", "interrupted")
                   for r in members)
        text += f" {done} of {len(members) + len(view.get('waiting') or [])} members finished."
        if view.get("waiting"):
            text += (" Not yet queued (your queue is full): "
                     + ", ".join(METHOD_NAMES.get(n, n) for n in view["waiting"]) + ".")
    else:
        s = view["summary"]
        budget = meta.get("budget") or {}
        finished = sum(t["state"] in ("complete", "pruned", "fail") for t in s["trials"])
        text += f" {finished} of {budget.get('trials')} trials finished"
        if budget.get("minutes"):
            text += f", {s['minutes']:.1f} of {budget['minutes']:g} minutes used"
        text += "."
    if meta.get("error"):
        return message(f"{text} {meta['error']}", "error")
    return message(text, "ok" if status == "finished" else "info")


def compare_html(view: dict) -> str:
    """The winner by validation and the trade-off sentence; test scores labelled."""
    s = view["summary"]
    if not s["members"]:
        return "<p>The members are waiting in the queue.</p>"
    parts = []
    if not s["identical_splits"]:
        parts.append(message("The members did not use identical splits: their scores cannot "
                             "be compared.", "warning"))
    if s["winner"] is not None and s.get("tied"):
        parts.append(f"<p class='ft-winner'><b>Best validation score, tied within noise:"
                     f"</b> {esc(s['sentence'])}</p>")
    elif s["winner"] is not None:
        parts.append(f"<p class='ft-winner'><b>Winner by validation score:</b> "
                     f"{esc(METHOD_NAMES.get(s['winner'], s['winner']))}. "
                     f"{esc(s['sentence'])}</p>")
    else:  # not every member has ended yet, or none finished within the budget
        parts.append(f"<p class='ft-winner-pending'>{esc(s['sentence'])}</p>")
    budget = s.get("budget") or {}
    limits = [f"{budget['minutes']:g} min of training" if budget.get("minutes") else "",
              f"{budget['memory_mb']:g} MiB of peak memory" if budget.get("memory_mb") else ""]
    if any(limits):
        parts.append(f"<p>Budget: {esc(', '.join(x for x in limits if x))}.</p>")
    parts.append("<p style='color:#555'>The winner is chosen on the validation split only. "
                 "Test scores are shown for every member but were not used for the choice.</p>")
    return "".join(parts)


def curve_html(view: dict) -> str:
    """What more data would buy, in one sentence, and how to read the plot."""
    curve = view.get("curve") or {}
    if not view["summary"]["members"]:
        return "<p>The points are waiting in the queue.</p>"
    parts = [f"<p class='ft-curve-sentence'><b>What more data would buy:</b> "
             f"{esc(curve.get('sentence', ''))}</p>",
             "<p style='color:#555'>Each point is the same settings trained on a share of the "
             "training split (the smaller shares inside the larger ones) and scored on the "
             "same validation split; the band is the noise of the validation size, the dashed "
             "line a saturating fit carried one doubling further. The test split plays no "
             "part.</p>"]
    return "".join(parts)


def curve_chart(view: dict) -> str:
    """Best validation score against training examples, its noise band and the fit."""
    from finetuner.server.learning_curve import predict
    from finetuner.ui.charts import band_chart

    curve = view.get("curve") or {}
    points = [(p["n"], p["score"], p["band"]) for p in curve.get("points") or []]
    fit = []
    if curve.get("fit") and points:
        lo, hi = points[0][0], curve["predicted"]["n"]
        fit = [(n, predict(curve["fit"], n)) for n in
               (lo * (hi / lo) ** (i / 12) for i in range(13))]
    metric = (view["summary"]["members"] or [{}])[0].get("metric", "score")
    title = words.metric_title(metric)
    return band_chart(points, fit, f"Validation {title} by training examples",
                      "training examples", f"validation {title}")


def compare_frame(view: dict) -> pd.DataFrame:
    s = view["summary"]
    rows = []
    for r in s["members"]:
        name = METHOD_NAMES.get(r["name"], r["name"])
        rows.append({
            "member": name + (
                (" (best score, tied)" if s.get("tied") else " (winner)")
                if r["name"] == s["winner"] else " (tied)" if r["name"] in (s.get("tied") or [])
                else ""),
            "status": STATUS_TEXT.get(r["status"], r["status"] or ""),
            **({"training examples": f"{(r.get('splits') or {}).get('train') or 0:,}"}
               if view["kind"] == "curve" else {}),
            f"best validation {words.metric_title(r['metric'])}": _num(r["validation"]),
            "test (not used for the choice)": _num(r["test"]),
            "training time": "" if r["train_seconds"] is None else f"{r['train_seconds']:.0f} s",
            words.term("samples_per_second"): _num(r["samples_per_second"], ".1f")
            if r["samples_per_second"] else "no steps (one pass)"
            if r["status"] == "completed" and r.get("method") == "head" else "",
            words.term("peak_memory"): "" if r["peak_memory_mb"] is None
            else f"{r['peak_memory_mb']:,.0f} MiB",
            words.term("trainable"): "" if r["trainable"] is None else f"{r['trainable']:,}",
            words.term("gap"): _num(r["gap"], "+.3f"),
            "verdict": (r["verdict"] or "").replace("_", " ") + (
                "; kept its starting head (no step beat it)" if r.get("kept_start") else ""),
            "run": r["run"]})
    return pd.DataFrame(rows)


def compare_chart(view: dict) -> str:
    """Every member's validation curve in one plot, by epoch (members may differ in batch
    size, so steps would not line up)."""
    rows = []
    for r in view["summary"]["members"]:
        name = METHOD_NAMES.get(r["name"], r["name"])
        for point in r.get("curve") or []:
            step, value = point[0], point[1]
            epoch = point[2] if len(point) > 2 and point[2] is not None else step
            rows.append({"step": epoch, "value": value, "series": name})
    if rows:  # a member scored once (head-only fitted in one pass): a level line, not a dot
        last = max(r["step"] for r in rows)  # hidden under the others' first points
        for name in {r["series"] for r in rows}:
            mine = [r for r in rows if r["series"] == name]
            if len(mine) == 1 and last > mine[0]["step"]:
                rows.append({**mine[0], "step": last})
    metric = (view["summary"]["members"] or [{}])[0].get("metric", "score")
    return line_chart(pd.DataFrame(rows), f"Validation {words.metric_title(metric)} of each "
                      "member",
                      x_label="epoch", legend_values="best")


def search_frame(view: dict) -> pd.DataFrame:
    s = view["summary"]
    rows = []
    best = (s.get("final") or {}).get("trial")
    for t in s["trials"]:
        state = {"complete": "completed", "fail": "failed or stopped"}.get(t["state"],
                                                                           t["state"])
        row = {"trial": "0 (your settings)" if t["trial"] == 0 else t["trial"], "state": state,
               f"validation {words.metric_title(s['metric'])}": _num(t["value"]),
               "best so far": _num(t["best_so_far"]),
               "last reported": _num(t["last_reported"])}
        for k, v in (t["params"] or {}).items():
            row[PARAM_TITLES.get(k, k)] = f"{v:.3g}" if isinstance(v, float) else v
        row["chosen"] = "yes" if t["trial"] == best else ""
        rows.append(row)
    return pd.DataFrame(rows)


def search_chart(view: dict) -> str:
    s = view["summary"]
    rows = []
    for t in s["trials"]:
        if t["value"] is not None:
            rows.append({"step": t["trial"], "value": t["value"], "series": "trial"})
        if t["best_so_far"] is not None:
            rows.append({"step": t["trial"], "value": t["best_so_far"],
                         "series": "best so far"})
    return line_chart(pd.DataFrame(rows), f"Validation {s['metric']} per trial",
                      x_label="trial", legend_values=True)


def search_html(view: dict) -> str:
    s = view["summary"]
    parts = []
    final = s.get("final") or {}
    if final.get("status") == "completed":
        parts.append(
            f"<p class='ft-winner'><b>Chosen settings:</b> trial {final['trial']}"
            f"{' (your own settings)' if final['trial'] == 0 else ''}, "
            f"validation {esc(words.metric_title(s['metric']))} "
            f"{_num(final.get('validation'))}; trained once more as a normal run, because "
            "trials keep no model and never look at the test split. Its test score "
            f"({_num(final.get('test'))}) is the search's only test score. Open it from Your "
            "runs, or try it.</p>")
    elif s.get("final_run"):
        parts.append("<p>Training the chosen settings as a normal run…</p>")
    elif s.get("stopped"):
        parts.append("<p>Stopped: nothing was trained at the end. Continue the search to "
                     "carry on from its stored trials.</p>")
    pruned = any("pruned" in str(t.get("state") or t.get("status") or "").lower()
                 for t in s["trials"])
    parts.append("<p style='color:#555'>Every trial is scored on the validation split only"
                 + ("; a pruned trial was stopped early because it was behind the others at "
                    "the same point of training." if pruned else ".") + "</p>")
    importance = s.get("importance") or {}
    if importance:
        top = max(importance.values()) or 1.0
        bars = "".join(
            f"<tr><td>{esc(PARAM_TITLES.get(k, k))}</td><td style='width:60%'>"
            f"<div style='background:{SERIES_COLORS[0]};height:10px;width:"
            f"{100 * v / top:.0f}%'></div></td><td>{v:.2f}</td></tr>"
            for k, v in sorted(importance.items(), key=lambda kv: -kv[1]))
        parts.append("<div class='ft-importance'><b>How much each setting mattered</b> "
                     "(Optuna's importance over the completed trials; 1.0 in all)"
                     f"<table class='ft-methods'>{bars}</table></div>")
    elif s.get("completed", 0) < s.get("importance_needs", 5):
        parts.append(f"<p>How much each setting mattered is shown from "
                     f"{s.get('importance_needs', 5)} completed trials on ("
                     f"{s.get('completed', 0)} so far): fewer say nothing reliable.</p>")
    else:
        parts.append("<p>The completed trials score the same: no setting can be said to "
                     "matter more than another yet.</p>")
    if view.get("log"):
        parts.append(f"<pre style='font-size:.85em'>{esc(view['log'])}</pre>")
    return "".join(parts)
