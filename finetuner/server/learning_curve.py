"""What more data would buy: one configuration trained on nested 25 / 50 / 100% subsets of the
training split (`data.train_fraction`; the same validation split for every point), then the
validation score against the number of training examples, with the noise band of the
validation size, a saturating fit, and one sentence: what doubling the data would likely gain,
or that the curve is flat.

The fit is a power law on the error, `1 - score = a * n ** -b` (b >= 0: more data never hurts
in the fit), the usual shape of learning curves (Hestness et al. 2017, "Deep Learning Scaling
is Predictable, Empirically"); it is fitted by least squares in log-log space on the points,
and extrapolated one doubling only. Pure functions of the members' rows (`compare.member_row`).
A learning curve is a comparison group whose members vary `train_fraction`; the groups and the
CLI run it, this module names its members and reads its result.
"""

from __future__ import annotations

import math

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.evaluation.curves import noise
from finetuner.server.compare import ENDED
from finetuner.server.compare import members as compare_members

FRACTIONS = (0.25, 0.5, 1.0)


def parse_fractions(text: str | None) -> list[float]:
    if not text:
        return list(FRACTIONS)
    try:
        values = sorted({float(v) for v in str(text).split(",") if v.strip()})
    except ValueError:
        values = []
    if len(values) < 2 or not all(0 < v <= 1 for v in values):
        raise FinetunerError(f"Cannot read the fractions '{text}'.",
                             "Give two or more shares of the training data between 0 and 1, "
                             "for example 0.25,0.5,1.", code="bad_setting")
    return values


def members(base: RunConfig, fractions=FRACTIONS) -> list[tuple[str, RunConfig]]:
    """The chosen configuration once per fraction, named by its share of the data."""
    planned = compare_members(base, [base.method.method],
                              ("train_fraction", [float(f) for f in fractions]))
    return [(name_of(config.data.train_fraction), config) for _, config in planned]


def name_of(fraction: float) -> str:
    return f"{fraction * 100:g}% of the training data"


def analyse(rows: list[dict], metric_title: str, expected: int | None = None) -> dict:
    """Points (training examples, best validation score, noise band), the fit and the
    sentence; the sentence waits until every point (`expected`) has ended."""
    ended = [r for r in rows if r.get("status") in ENDED]
    points = []
    for r in rows:
        n = (r.get("splits") or {}).get("train")
        if r.get("validation") is None or not n or r.get("status") not in ("completed",
                                                                            "stopped"):
            continue
        n_val = (r.get("splits") or {}).get("validation")
        points.append({"name": r["name"], "run": r.get("run"), "n": int(n),
                       "score": float(r["validation"]),
                       "band": noise(r["validation"], n_val), "n_val": n_val})
    points.sort(key=lambda p: p["n"])
    out = {"points": points, "fit": None, "predicted": None, "flat": None, "sentence": ""}
    total = max(expected or 0, len(rows))
    if len(ended) < total:
        out["sentence"] = (f"The curve is drawn as its points finish ({len(ended)} of {total} "
                           "so far); what more data would buy is said when all have.")
        return out
    if len({p["n"] for p in points}) < 2:
        out["sentence"] = ("Fewer than two points finished with a validation score, so there "
                           "is no curve to read: look at the members' own runs.")
        return out
    missing = [r["name"] for r in rows if r.get("status") in ENDED
               and r["name"] not in {p["name"] for p in points}]
    fit = fit_power_law([(p["n"], p["score"]) for p in points])
    last, before = points[-1], points[-2]
    n2 = 2 * last["n"]
    predicted = predict(fit, n2)
    gain = max(0.0, predicted - last["score"]) if fit else 0.0
    delta = last["score"] - before["score"]
    band = math.hypot(last["band"], before["band"])
    # flat: the fit sees under a point to gain and the last step gained nothing beyond noise
    flat = gain < 0.01 and delta <= band
    rows_text = f"{last['n_val']:,} validation rows" if last["n_val"] else "the validation split"
    title = metric_title
    if last["score"] >= 0.995:
        sentence = (f"Validation {title} is already {last['score']:.3f} with {last['n']:,} "
                    "training examples: more data cannot raise it much. (Check that the "
                    "validation rows are not easier than real use.)")
    elif flat:
        sentence = (f"The curve is flat: from {before['n']:,} to {last['n']:,} training "
                    f"examples, validation {title} moved {delta * 100:+.1f} points, within the "
                    f"±{band * 100:.1f} points of noise of {rows_text}. More examples like "
                    "these are unlikely to help much; a larger model, cleaner labels or "
                    "examples of the cases it gets wrong may.")
    else:
        sentence = (f"Doubling the training data (from {last['n']:,} to {n2:,} examples) "
                    f"would likely raise validation {title} by about {gain * 100:.1f} points "
                    f"(to about {min(predicted, 1.0):.3f}), from a saturating fit of "
                    f"{len(points)} points; the last step, from {before['n']:,} examples, "
                    f"gained {delta * 100:+.1f} points (noise ±{band * 100:.1f}).")
        if delta <= band:
            sentence += (f" With {rows_text}, a step that small is within the noise: read the "
                         "estimate as a direction, not a promise, or validate on more rows.")
    if missing:  # said first: the curve is read from the points that did finish
        sentence = (f"Not every point finished ({', '.join(missing)}: see its run); read from "
                    f"the {len(points)} that did. ") + sentence
    out.update(fit=fit, predicted={"n": n2, "score": predicted, "gain": gain}, flat=flat,
               sentence=sentence, missing=missing)
    return out


def fit_power_law(points: list[tuple[int, float]]) -> dict | None:
    """1 - score = a * n ** -b by least squares on log(error) against log(n), b >= 0."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(1.0 - s, 1e-4)) for _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    b = max(0.0, -slope)  # error that grows with data is noise: read as flat
    log_a = my + b * mx
    return {"a": math.exp(log_a), "b": b}


def predict(fit: dict | None, n: int) -> float:
    if not fit:
        return float("nan")
    return 1.0 - fit["a"] * n ** (-fit["b"])
