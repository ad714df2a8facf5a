"""Compare methods (or one setting) side by side on identical splits, and name a winner.

A group is a base config and its members: by default head-only, LoRA and full fine-tuning,
each at its own default learning rate; or any methods, optionally crossed with the values of
one setting (learning rate, LoRA rank, epochs, ...). Every member reads the same files with the
same seed, so the splits are identical (`summarize` checks it from the data reports).

`summarize` is pure: per member the best validation score, training time, samples/s, peak
memory, trainable parameters, the train-validation gap and the verdict, and the winner **by
validation score** among the members that fit the budget (minutes of training, MiB of peak
memory), with a sentence on the trade-off. Test scores are reported for every member, marked
as not used for the choice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.evaluation.curves import noise
from finetuner.methods import METHOD_NAMES
from finetuner.results import read_results
from finetuner.runs import FINAL_STATUSES, RunPaths

DEFAULT_METHODS = ("head", "lora", "full")
VARIABLE = {"learning_rate": "training", "lr": "training", "epochs": "training",
            "batch_size": "training", "weight_decay": "training", "warmup_ratio": "training",
            "dropout": "training", "lora_r": "method", "lora_alpha": "method",
            "max_length": "data", "train_fraction": "data"}


ENDED = FINAL_STATUSES  # a member that will not move any more

def parse_vary(text: str | None) -> tuple[str, list] | None:
    """'lr=1e-4,3e-4' -> ('learning_rate', [0.0001, 0.0003])."""
    if not text:
        return None
    name, _, values = text.partition("=")
    name = {"lr": "learning_rate"}.get(name.strip(), name.strip())
    if name not in VARIABLE or not values.strip():
        raise FinetunerError(f"Cannot vary '{text}'.", "Write NAME=V1,V2 with NAME one of "
                             f"{', '.join(sorted(set(VARIABLE) - {'lr'}))}.", code="bad_setting")
    cast = float if name in ("learning_rate", "epochs", "weight_decay", "warmup_ratio",
                             "dropout", "train_fraction") else int
    try:
        return name, [cast(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise FinetunerError(f"The values of '{text}' are not numbers.",
                             code="bad_setting") from None


def members(base: RunConfig, methods: list[str] | None = None,
            vary: tuple[str, list] | None = None) -> list[tuple[str, RunConfig]]:
    """(name, config) per member: each method, crossed with the values of `vary`."""
    methods = list(methods or DEFAULT_METHODS)
    out = []
    for method in methods:
        # LoRA's own settings vary the LoRA member only; the others run once
        lora_only = vary and vary[0].startswith("lora_") and method != "lora"
        for value in (vary[1] if vary and not lora_only else [None]):
            raw = base.to_dict()
            raw["method"]["method"] = method
            if not vary or vary[0] != "learning_rate":
                raw["training"]["learning_rate"] = base.training.learning_rate if \
                    len(methods) == 1 else None  # each method at its own default rate
            name = method
            if vary and value is not None:
                raw[VARIABLE[vary[0]]][vary[0]] = value
                name = f"{method}-{vary[0]}-{value:g}"
            out.append((name, RunConfig.from_dict(raw)))
    if len(out) < 2:
        raise FinetunerError("A comparison needs at least two members.",
                             "Give two or more methods, or two or more values to vary.",
                             code="bad_setting")
    return out


def member_row(name: str, run: RunPaths) -> dict:
    """One member's numbers from its run directory."""
    from finetuner.evaluation.diagnostics import best_row, history_from_events
    from finetuner.runs import read_events, read_json

    results = read_results(run.results) or {}
    config = read_json(run.config) or {}
    metric = results.get("metric") or "macro_f1"
    events = read_events(run.events)[0]
    history = history_from_events(events, metric)
    best = best_row(history, results.get("best_step"))
    timing = results.get("timing") or {}
    peak = results.get("peak_memory_mb") or {}
    report = read_json(run.data_report) or {}
    gap = None
    if best and best.get("train_metric") is not None and best.get("val_metric") is not None:
        gap = round(best["train_metric"] - best["val_metric"], 4)
    return {"name": name, "run": str(run.root), "status": results.get("status"),
            "method": (config.get("method") or {}).get("method"),
            "metric": metric, "validation": best["val_metric"] if best else None,
            "test": (results.get("test") or {}).get(metric),
            "train_seconds": timing.get("train_seconds"),
            "samples_per_second": timing.get("train_samples_per_second"),
            "learning_rate": timing.get("learning_rate"),
            "peak_memory_mb": peak.get("gpu") or peak.get("rss") or peak.get("cpu"),
            "trainable": (results.get("params") or {}).get("trainable"),
            "total": (results.get("params") or {}).get("total"),
            "gap": gap, "verdict": (results.get("diagnosis") or {}).get("verdict"),
            # no training step beat the head fitted on the frozen encoder: the kept model is
            # that head (the same numbers as a head-only member, another verdict on training)
            "kept_start": bool(best and best["step"] == 0 and len(history) > 1
                               and (config.get("method") or {}).get("method") != "head"),
            # (step, validation score, epoch): members with other batch sizes are overlaid
            # by epoch
            "curve": [(h["step"], h["val_metric"], h.get("epoch")) for h in history
                      if h.get("val_metric") is not None],
            "splits": report.get("rows"), "fingerprint": _split_fingerprint(run)}


def _split_fingerprint(run: RunPaths) -> str | None:
    """Which examples went to which split (tasks.pipeline.split_digest), from the report."""
    from finetuner.runs import read_json

    report = read_json(run.data_report) or {}
    return (report.get("extra") or {}).get("split_digest")


def summarize(rows: list[dict], max_minutes: float | None = None,
              max_memory_mb: float | None = None, expected: int | None = None) -> dict:
    """The winner by validation within the budget, and the trade-off in a sentence; named
    only once every member (`expected` of them, waiting ones included) has ended."""
    def fits(r: dict) -> bool:
        if r["validation"] is None or r["status"] not in ("completed", "stopped"):
            return False
        if max_minutes is not None and (r["train_seconds"] or 0) > max_minutes * 60:
            return False
        return max_memory_mb is None or (r["peak_memory_mb"] or 0) <= max_memory_mb

    eligible = [r for r in rows if fits(r)]
    out = {"members": rows, "budget": {"minutes": max_minutes, "memory_mb": max_memory_mb},
           "winner": None, "sentence": "", "identical_splits":
           len({r["fingerprint"] for r in rows if r["fingerprint"]}) <= 1}
    ended = [r for r in rows if r["status"] in ENDED]
    total = max(expected or 0, len(rows))
    if len(ended) < total:
        out["sentence"] = (f"The winner is named when every member has ended ({len(ended)} of "
                           f"{total} so far).")
        return out
    if not eligible:
        out["sentence"] = ("No member finished within the budget: loosen it, or look at the "
                           "members' own results.")
        return out
    win = max(eligible, key=lambda r: (r["validation"], -(r["train_seconds"] or 0)))
    out["winner"] = win["name"]
    over = [r for r in rows if r not in eligible and r["validation"] is not None
            and r["status"] in ("completed", "stopped")]
    # the members' validation predictions, for a paired test of the winner's lead
    from finetuner.evaluation import paired

    records = {r["name"]: paired.read(r["run"]) for r in eligible}
    out["sentence"] = trade_off(win, [r for r in eligible if r is not win], over, records)
    # the members the data cannot tell from the winner: the table marks them, not a lone winner
    out["tied"] = [r["name"] for r in eligible
                   if r is not win and _lead(win, r, records)["tied"]]
    return out


def _title(row: dict) -> str:
    return METHOD_NAMES.get(row["name"], row["name"])


def noise_band(a: dict, b: dict) -> tuple[float, int | None]:
    """How far apart two members' validation scores may be by chance alone: two standard
    errors of the difference of two scores on the same validation rows (binomial, each at
    least 0.01; unpaired, so on the safe side), and the number of validation rows."""

    n = (a.get("splits") or {}).get("validation") or (b.get("splits") or {}).get("validation")
    return math.hypot(noise(a["validation"], n), noise(b["validation"], n)), n


def _lead(win: dict, other: dict, records: dict) -> dict:
    """Is `win`'s lead over `other` beyond chance? A paired bootstrap on the members' own
    validation predictions when both kept them on the same rows
    (finetuner.evaluation.paired), else the unpaired band of the validation size."""
    from finetuner.evaluation import paired

    a, b = records.get(win["name"]), records.get(other["name"])
    test = paired.paired_test(a, b) if a and b else None
    if test is not None:
        return {"tied": test["p"] >= 0.05, "paired": test, "n": test["rows"]}
    band, n = noise_band(win, other)
    return {"tied": win["validation"] - other["validation"] <= band, "band": band, "n": n}


def _evidence(lead: dict) -> str:
    rows = f"{lead['n']:,} validation rows" if lead["n"] else "the validation split"
    if "paired" in lead:
        t = lead["paired"]
        return (f"a paired test on the same {rows}: p = {t['p']:.2f}, the difference is "
                f"between {t['low'] * 100:+.1f} and {t['high'] * 100:+.1f} points with 95% "
                "confidence")
    return f"the noise of {rows} (a lead under {lead['band'] * 100:.1f} points can be chance)"


def trade_off(win: dict, others: list[dict], over_budget: list[dict],
              records: dict | None = None) -> str:
    """'LoRA wins on validation macro_f1 (0.874). head-only is 5.2 points behind at 0.31x its
    training time.' or, when the data cannot tell them apart, 'full fine-tuning and LoRA are
    tied within noise (...); LoRA trains in 0.3x the time.' `records`: the members' validation
    records by name (finetuner.evaluation.paired), for a paired test."""
    records = records or {}
    m = win["metric"]
    parts = [f"{_title(win)} has the best validation {m} ({win['validation']:.3f})."]
    cheaper = [r for r in others
               if (r["train_seconds"] or 0) < 0.9 * (win["train_seconds"] or 0)]
    leads = {r["name"]: _lead(win, r, records) for r in others}
    tied = [r for r in others if leads[r["name"]]["tied"]]
    if tied:
        # the cheapest member the data cannot tell from the winner is the useful news
        close = min(tied, key=lambda r: r["train_seconds"] or 0)
        ratio = (close["train_seconds"] or 0) / max(1e-9, win["train_seconds"] or 0)
        titles = [_title(win)] + [_title(r) for r in tied]
        names = ", ".join(titles[:-1]) + " and " + titles[-1]
        parts = [f"{names} are tied within {_evidence(leads[close['name']])}; {_title(win)} "
                 f"scored highest ({win['validation']:.3f})."]
        if ratio < 0.9:
            parts.append(f"{_title(close)} trains in {ratio:.2f}x the time: as good for less.")
    elif cheaper or others:
        close = max(cheaper, key=lambda r: r["validation"]) if cheaper else \
            max(others, key=lambda r: r["validation"])
        lead = leads[close["name"]]
        why = (f"beyond chance on a paired test of the same {lead['n']:,} validation rows, "
               f"p = {lead['paired']['p']:.3f}" if "paired" in lead else
               "beyond the noise of the validation size")
        behind = (win["validation"] - close["validation"]) * 100
        if cheaper:
            ratio = (close["train_seconds"] or 0) / max(1e-9, win["train_seconds"] or 0)
            parts.append(f"{_title(close)} is {behind:.1f} points behind ({why}) at "
                         f"{ratio:.2f}x its training time.")
        else:
            parts.append(f"The runner-up, {_title(close)}, is {behind:.1f} points behind "
                         f"({why}) and no faster to train.")
    else:
        parts.append("No other member finished within the budget.")
    for r in over_budget:
        parts.append(f"{_title(r)} ({r['validation']:.3f}) was left out: over the budget.")
    return " ".join(parts)


def table(summary: dict) -> str:
    """The comparison as a Markdown table (the CLI prints it)."""
    head = ("| member | validation | test (not used for the choice) | train s | samples/s | "
            "peak MiB | trainable | train-val gap | verdict |")
    lines = [head, "|" + "---|" * 9]
    for r in summary["members"]:
        star = " (winner)" if r["name"] == summary["winner"] else ""

        def f(x, spec=".4f"):
            return "" if x is None else format(x, spec)
        lines.append(f"| {r['name']}{star} | {f(r['validation'])} | {f(r['test'])} | "
                     f"{f(r['train_seconds'], '.1f')} | {f(r['samples_per_second'], '.1f')} | "
                     f"{f(r['peak_memory_mb'], '.0f')} | {f(r['trainable'], ',')} | "
                     f"{f(r['gap'], '+.3f')} | {r['verdict'] or ''} |")
    return "\n".join(lines) + "\n\n" + summary["sentence"]


def run_group(folder: Path, base: RunConfig, launcher, methods=None, vary=None,
              max_minutes=None, max_memory_mb=None, log=print, planned=None) -> dict:
    """Queue every member (one after another with the CLI's launcher), wait for all, and
    write comparison.json in `folder`. `planned`: the (name, config) members, when not
    methods crossed with `vary` (a learning curve's)."""
    from finetuner.server.follow import follow

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs = []
    for name, config in planned or members(base, methods, vary):
        rate = config.training.learning_rate
        log(f"member {name}: {METHOD_NAMES[config.method.method]}, "
            + (f"learning rate {rate:g}" if rate else "its default learning rate"))
        run = launcher.submit(config, name)
        try:
            follow(run)
        except KeyboardInterrupt:
            launcher.stop(run)
            raise
        if launcher.wait is not None:
            launcher.wait(run)
        runs.append((name, run))
        r = member_row(name, run)
        score = "n/a" if r["validation"] is None else f"{r['validation']:.4f}"
        log(f"member {name}: {r['status']}, best validation {r['metric']} {score}")
    rows = [member_row(name, run) for name, run in runs]
    summary = summarize(rows, max_minutes, max_memory_mb)
    (folder / "comparison.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
