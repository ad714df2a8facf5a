"""The evidence a verdict rests on, read from a run's evaluation curves.

Owns `Curves`: one run's history with the kept checkpoint, the validation size's noise band
and what guessing scores, and the sentences each verdict quotes (the train-validation gap,
a validation score that fell while the training score rose, a model that does not fit its own
training rows, a score still climbing at the end, over-confidence, a baseline that learned
what the fine-tuning did not). Pure functions of numbers; `diagnostics` picks the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MEMORISED = 0.98  # a training score this close to perfect, with a real gap, is memorising
MIN_LOSS_RISE = 0.01  # a validation loss rise smaller than this is not worth a note
LARGE_GAP = 0.25  # train this far above validation (and beyond noise): overfitting anyway
UNDERFIT_SHARE = 0.5  # closes less than half the way from chance to a perfect training score


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3f}"


def noise(value: float | None, n: int | None) -> float:
    """Two binomial standard errors of a score measured on n examples (at least 0.01)."""
    if value is None or not n:
        return 0.05
    p = min(max(value, 0.0), 1.0)
    return max(0.01, 2 * math.sqrt(max(p * (1 - p), 0.25 / n) / n))


def best_row(history: list[dict], best_step: int | None = None) -> dict | None:
    """The checkpoint training kept: the given step, else the highest validation score with
    ties broken by the lower validation loss, the first such, exactly as training does."""
    scored = [h for h in history if h.get("val_metric") is not None]
    if best_step is not None:
        for h in scored:
            if h["step"] == best_step:
                return h
    if not scored:
        return None
    return max(scored, key=lambda h: (h["val_metric"], -(h.get("eval_loss") or 0.0)))


@dataclass
class Curves:
    history: list[dict]
    best: dict | None
    n_val: int | None
    title: str
    floor: float
    chance: dict

    def band(self, value: float | None) -> float:
        return noise(value, self.n_val)

    def at_chance(self) -> bool:
        if not self.best or self.floor <= 0:
            return False
        vm = self.best["val_metric"]
        return vm <= self.floor + self.band(vm)

    def chance_evidence(self) -> list[str]:
        vm = self.best["val_metric"]
        out = [f"Best validation {self.title} {_f(vm)}: always answering the most common label "
               f"scores {_f(self.chance['majority'])} and guessing at random "
               f"{_f(self.chance['random'])}; the difference is within the ±{_f(self.band(vm))} "
               f"that {self.n_val} validation rows allow."]
        tm = self.best.get("train_metric")
        if tm is not None and tm > vm + self.band(vm):
            out.append(f"Yet train {self.title} reached {_f(tm)}: the model memorised the "
                       "training rows without finding anything that carries over, as it does "
                       "with labels that do not follow from the texts.")
        return out

    def gap(self, row: dict | None) -> tuple[float, float] | None:
        """(train - validation, its noise) at a row, or None."""
        if not row or row.get("train_metric") is None or row.get("val_metric") is None:
            return None
        tm, vm = row["train_metric"], row["val_metric"]
        return tm - vm, max(self.band(vm), 0.02)

    def gap_evidence(self) -> list[str]:
        gap = self.gap(self.best)
        if not gap or gap[0] <= gap[1]:
            return []
        return [f"Train {self.title} {_f(self.best['train_metric'])} vs validation "
                f"{_f(self.best['val_metric'])} (a gap of {gap[0]:.2f})."]

    def overfitting(self) -> list[str] | None:
        if not self.best or len(self.history) < 2:
            return None
        last = self.history[-1]
        evidence = []
        vb, vl = self.best["val_metric"], last.get("val_metric")
        tb, tl = self.best.get("train_metric"), last.get("train_metric")
        train_up = tb is not None and tl is not None and tl >= tb
        if vl is not None and vb - vl > self.band(vb) and train_up:
            evidence.append(
                f"Validation {self.title} fell from {_f(vb)} (step {self.best['step']}) to "
                f"{_f(vl)} at the end, more than the ±{_f(self.band(vb))} noise of "
                f"{self.n_val} validation rows, while train {self.title} rose to {_f(tl)}.")
        if evidence or self.still_improving():
            # a train-validation gap while validation still rises to its best at the end is
            # the model generalising less than it fits, not memorising at the cost of unseen
            # data: more training helped every time, so "train fewer epochs" would be wrong
            return evidence or None
        for row, when in ((last, "at the last evaluation"), (self.best, "at the kept step")):
            gap = self.gap(row)
            if gap and gap[0] > gap[1] and (row["train_metric"] >= MEMORISED
                                            or gap[0] >= LARGE_GAP):
                # the loss in a sentence of its own: "train 1.00, training loss 0.50 vs
                # validation 0.84" read as a loss of 0.50 set against a score of 0.84
                loss = f" (training loss then {_f(row.get('train_loss'))})" if row.get(
                    "train_loss") is not None else ""
                evidence.append(
                    f"Train {self.title} {_f(row['train_metric'])} vs validation "
                    f"{self.title} {_f(row['val_metric'])} {when}{loss}: a gap of "
                    f"{gap[0]:.2f}, beyond the ±{_f(gap[1])} noise. The model memorised its "
                    f"training rows; on new data expect about {_f(row['val_metric'])}, not "
                    f"{_f(row['train_metric'])}.")
                break
        return evidence or None

    def underfitting(self) -> list[str] | None:
        row = self.best or (self.history[-1] if self.history else None)
        if not row or row.get("train_metric") is None:
            return None
        tm, vm = row["train_metric"], row.get("val_metric")
        target = self.floor + UNDERFIT_SHARE * (1 - self.floor)
        if tm >= target:
            return None
        if self.floor <= 0:  # entities, spans: nothing to guess
            return [f"Train {self.title} is only {_f(tm)} (validation {_f(vm)}): the model "
                    "does not fit even the examples it trains on, less than half of a perfect "
                    "score."]
        return [f"Train {self.title} is only {_f(tm)} (validation {_f(vm)}; guessing scores "
                f"{_f(self.floor)}): the model does not fit even the examples it trains on, "
                f"it closed {max(0.0, (tm - self.floor) / (1 - self.floor)):.0%} of the way "
                "from guessing to a perfect score."]

    def still_improving(self) -> list[str] | None:
        scored = _without_end_repeat([h for h in self.history if h.get("val_metric") is not None],
                                     self.best)
        if len(scored) < 2 or not self.best:
            return None
        last, first = scored[-1], scored[0]
        near_end = self.best is last or (self.best is scored[-2] and self.best["val_metric"]
                                         - last["val_metric"] <= self.band(last["val_metric"]))
        # rising: the end beats everything before the last two evaluations by more than
        # half the noise band (a plateau that wobbles is not a rise)
        earlier = max(h["val_metric"] for h in scored[:-2]) if len(scored) > 2 else \
            first["val_metric"]
        rise = self.best["val_metric"] - earlier
        if not near_end:
            return None
        where = (f"The best validation {self.title} ({_f(self.best['val_metric'])}) came at "
                 f"step {self.best['step']} (epoch {_f(self.best['epoch'])}), at or next to the "
                 "last evaluation")
        if rise > 0.5 * self.band(self.best["val_metric"]):
            return [f"{where}, {rise:.2f} above the evaluations before."]
        # a slow rise hides in the noise of the metric; a new best score at the very end (not a
        # tie: that is a plateau) with the validation loss still falling to a new low shows it
        losses = [h.get("eval_loss") for h in scored]
        new_best = self.best is last and last["val_metric"] > max(
            h["val_metric"] for h in scored[:-1])
        if new_best and len(scored) >= 4 and None not in losses and \
                losses[-1] < 0.98 * min(losses[:-2]):
            return [f"{where}, and the validation loss was still falling: "
                    f"{_f(min(losses[:-2]))} before, {_f(losses[-1])} at the end."]
        return None

    def summary(self) -> list[str]:
        if not self.history:
            return ["No evaluation was logged; only the final scores are available."]
        best = self.best or self.history[-1]
        out = [f"Best validation {self.title} {_f(best.get('val_metric'))} at step "
               f"{best['step']}."]
        gap = self.gap(best)
        if gap:
            what = f"a gap of {gap[0]:.2f}" if gap[0] > 0.005 else "no gap"
            within = " (within noise)" if abs(gap[0]) <= gap[1] else ""
            out.append(f"Train {self.title} {_f(best['train_metric'])} vs validation "
                       f"{_f(best['val_metric'])}: {what}{within}.")
        if self.floor > 0:
            out.append(f"Guessing would score {_f(self.floor)}: answering at random "
                       f"{_f(self.chance['random'])}, always the most common label "
                       f"{_f(self.chance['majority'])} (it misses every other label).")
        return out

    def kept(self) -> list[str]:
        """A sentence when the kept checkpoint scored better than the last evaluation (a tie,
        such as the end's own evaluation of the same weights, says nothing)."""
        last = self.history[-1] if self.history else None
        if self.best and last and self.best is not last and (
                last.get("val_metric") is None
                or last["val_metric"] < self.best["val_metric"]):
            return [f"The best checkpoint (step {self.best['step']}, epoch "
                    f"{_f(self.best['epoch'])}, validation {self.title} "
                    f"{_f(self.best['val_metric'])}) was kept, not the last."]
        return []


def _without_end_repeat(scored: list[dict], best: dict | None) -> list[dict]:
    """The evaluations without the one training adds at its very end when that comes a few
    steps after a scheduled one (2,074 steps with an evaluation every 518: at 2,072 and 2,074,
    the same weights twice), so that "the last evaluations" are distinct points of the curve.
    Of the two, the kept checkpoint's stays."""
    if len(scored) < 3:
        return scored
    steps = [h["step"] for h in scored]
    spacing = sorted(b - a for a, b in zip(steps, steps[1:]))[(len(steps) - 1) // 2]
    if steps[-1] - steps[-2] < 0.1 * spacing:
        return scored[:-2] + [scored[-1]] if scored[-1] is best else scored[:-1]
    return scored


def _learnable_by_baseline(baselines: dict, ctx: Curves) -> str | None:
    """A baseline well above chance on validation shows the labels follow from the texts."""
    scored = [(t, v) for t, v in baselines.items() if v is not None]
    if not scored or not ctx.best:
        return None
    title, value = max(scored, key=lambda tv: tv[1])
    if value <= ctx.floor + 2 * ctx.band(value):
        return None
    return (f"Yet '{title}' scores {_f(value)} validation {ctx.title}: the labels do follow "
            "from the texts, so the fine-tuning itself failed to learn them (most often a "
            "learning rate too low, or too few steps).")


def _overconfidence(history: list[dict], best: dict | None, ctx: Curves) -> list[str]:
    """Validation loss rising while the metric holds: the model grows over-confident."""
    losses = [h for h in history if h.get("eval_loss") is not None]
    if len(losses) < 3 or not best:
        return []
    low = min(range(len(losses)), key=lambda i: losses[i]["eval_loss"])
    last = losses[-1]
    rise = last["eval_loss"] - losses[low]["eval_loss"]
    # a tenth more and at least 0.01: near-zero losses (a solved task) rising from 0.0002 to
    # 0.0004 would read "rose from 0.000 to 0.000"
    if low == len(losses) - 1 or last["eval_loss"] < losses[low]["eval_loss"] * 1.1 or \
            rise < MIN_LOSS_RISE:
        return []
    vm = last.get("val_metric")
    if vm is None or best["val_metric"] - vm > ctx.band(best["val_metric"]):
        return []
    return [f"Validation loss rose from {_f(losses[low]['eval_loss'])} (step "
            f"{losses[low]['step']}) to {_f(last['eval_loss'])} while validation "
            f"{ctx.title} held ({_f(vm)} at the end, best {_f(best['val_metric'])}): the model "
            "grew over-confident rather than worse. The kept checkpoint was chosen by the "
            f"{ctx.title}, not by the loss."]
