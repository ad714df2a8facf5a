"""The verdict on a finished run, with the evidence in numbers and concrete remedies.

Verdicts: healthy, still improving, overfitting (including memorising), underfitting, learned
nothing (at chance), too little data, class imbalance. `diagnose` is a pure function over the
logged evaluation history, the validation metrics of the kept checkpoint and a few facts about
the data, so it is unit-tested on synthetic and on recorded real curves and the UI only renders
what it returns. It never reads the test split: test metrics are for the user, not for choices.

The rules read the validation *metric* and the clean training-sample metric (scored without
dropout at each evaluation), judged against the noise that the validation size implies (a
binomial interval: two standard errors) and against chance (the majority class and random
guessing). A rising validation loss while the metric holds is over-confidence, reported as a
note, not as overfitting. Imports neither torch nor transformers.

History rows look like {"step", "epoch", "train_loss", "eval_loss", "val_metric",
"train_metric"}; `history_from_events` builds them from events.jsonl records.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

VERDICTS = ("healthy", "still_improving", "overfitting", "underfitting", "no_signal",
            "too_little_data", "class_imbalance")
TITLES = {
    "healthy": "Healthy: the model learned the task and holds up on unseen data.",
    "still_improving": "Still improving: the model was getting better on unseen data when "
    "training ended.",
    "overfitting": "Overfitting: the model memorised the training data and does worse on "
    "unseen data.",
    "underfitting": "Underfitting: the model has not learned the task well, not even on the "
    "data it trained on.",
    "no_signal": "Learned nothing: the model scores no better than guessing on unseen data.",
    "too_little_data": "Too little data: the scores rest on so few examples that they are not "
    "reliable.",
    "class_imbalance": "Class imbalance dominates: the model mostly predicts the common label "
    "and misses the rare one(s).",
}
MIN_TRAIN = 100
MIN_PER_CLASS = 8
MIN_VALIDATION = 20
MEMORISED = 0.98  # a training score this close to perfect, with a real gap, is memorising
LABEL_NOISE_SHARE = 0.05  # flagged share of the checked training rows worth a note
UNDERFIT_SHARE = 0.5  # closes less than half the way from chance to a perfect training score


@dataclass
class Diagnosis:
    verdict: str
    title: str
    evidence: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth knowing, not the verdict

    def to_dict(self) -> dict:
        return asdict(self)


def history_from_events(events: list[dict], metric: str) -> list[dict]:
    rows = []
    for event in events:
        if event.get("type") != "eval":
            continue
        rows.append({
            "step": event.get("step"),
            "epoch": event.get("epoch"),
            "train_loss": event.get("train_loss"),
            "eval_loss": event.get("eval_loss"),
            "val_metric": (event.get("validation") or {}).get(metric),
            "train_metric": (event.get("train") or {}).get(metric),
        })
    return rows


def label_noise_note(info: dict | None) -> str | None:
    """A note when many training rows look mislabelled (labelnoise.check's counts)."""
    if not info or info.get("share", 0) < LABEL_NOISE_SHARE or info.get("flagged", 0) < 5:
        return None
    return (f"{info['flagged']:,} of the {info['checked']:,} training rows checked "
            f"({info['share']:.0%}) look mislabelled: a model that never saw them disagrees "
            "confidently with their given label. Review them in Results ('Suspected label "
            "errors'): noisy labels cap what any model can learn.")


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3f}"


def noise(value: float | None, n: int | None) -> float:
    """Two binomial standard errors of a score measured on n examples (at least 0.01)."""
    if value is None or not n:
        return 0.05
    p = min(max(value, 0.0), 1.0)
    return max(0.01, 2 * math.sqrt(max(p * (1 - p), 0.25 / n) / n))


def chance_scores(counts: dict | None, metric: str = "macro_f1") -> dict:
    """What guessing scores on a split with these label counts: always the majority label,
    and uniform random guessing. Tasks without labels to guess (entities, spans) score ~0."""
    counts = {k: v for k, v in (counts or {}).items() if v}
    total = sum(counts.values())
    if not total or len(counts) < 2:
        return {"majority": 0.0, "random": 0.0}
    k = len(counts)
    p = max(counts.values()) / total
    if metric == "accuracy":
        return {"majority": p, "random": 1 / k}
    shares = [v / total for v in counts.values()]
    majority = (2 * p / (1 + p)) / k  # F1 of the majority label; the others score 0
    rand = sum(2 * q * (1 / k) / (q + 1 / k) for q in shares) / k
    return {"majority": majority, "random": rand}


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


def diagnose(*args, **kwargs) -> Diagnosis:
    """Judge a run (see `_diagnose`), then say plainly when fine-tuning does not beat a simple
    baseline on the validation split (data["baselines"]: {title: validation score})."""
    d = _diagnose(*args, **kwargs)
    data = (args[2] if len(args) > 2 else kwargs.get("data")) or {}
    # flags from a model that learned little say little about the labels
    noisy = label_noise_note(data.get("label_issues")) if d.verdict not in (
        "no_signal", "too_little_data", "underfitting") else None
    if noisy:
        d.notes.append(noisy)
    history = args[0] if args else kwargs.get("history") or []
    best = best_row(history, kwargs.get("best_step"))
    title = args[3] if len(args) > 3 else kwargs.get("metric_title", "macro-F1")
    if not best or d.verdict in ("no_signal", "too_little_data"):
        return d
    vm = best["val_metric"]
    beaten_by = [(t, v) for t, v in (data.get("baselines") or {}).items()
                 if v is not None and vm <= v + noise(vm, data.get("n_validation")) / 2]
    if beaten_by:
        t, v = max(beaten_by, key=lambda tv: tv[1])
        better = v > vm + noise(vm, data.get("n_validation"))
        d.evidence.insert(0, f"A simple baseline does {'better' if better else 'as well'}: "
                             f"'{t}' scores {_f(v)} validation {title}, the fine-tuned model "
                             f"{_f(vm)}.")
        d.remedies.insert(0, "For this data the simple baseline is as good and far cheaper to "
                             "run; keep it in mind."
                          + (" Fine-tuning may pull ahead with more epochs, data or a higher "
                             "learning rate." if vm < 0.98 else ""))
    return d


def _spec(task: str):
    from .tasks import TASKS

    return TASKS.get(task) or TASKS["classification"]


def from_inputs(inputs: dict) -> Diagnosis:
    """The verdict from a run's recorded diagnosis_input.json (events, validation detail of the
    kept checkpoint, data facts): what training computes and what the fixtures replay."""
    history = history_from_events(inputs.get("events") or [], inputs.get("metric", "macro_f1"))
    return diagnose(history, inputs.get("validation") or {}, inputs.get("data") or {},
                    inputs.get("metric_title", "macro-F1"), inputs.get("method"),
                    inputs.get("task", "classification"), best_step=inputs.get("best_step"),
                    metric=inputs.get("metric", "macro_f1"))


def _diagnose(
    history: list[dict],
    validation: dict | None = None,
    data: dict | None = None,
    metric_title: str = "macro-F1",
    method: str | None = None,
    task: str = "classification",
    best_step: int | None = None,
    metric: str = "macro_f1",
) -> Diagnosis:
    """Judge a run from its curves, the kept checkpoint's validation metrics and data facts.

    `data` may hold n_train, n_validation, label_counts (training) and validation_counts.
    """
    validation = validation or {}
    data = data or {}
    n_val = data.get("n_validation")
    best = best_row(history, best_step)
    # guessing is defined for labels to pick; finding entities or answer spans by chance
    # scores about 0
    chance = chance_scores(data.get("validation_counts") or data.get("label_counts"), metric) \
        if _spec(task).guessable else chance_scores(None)
    floor = max(chance.values())
    ctx = _Context(history, best, n_val, metric_title, floor, chance)
    notes = _overconfidence(history, best, ctx)
    spec = _spec(task)
    small = _too_little_data(data, spec.units)
    if small:
        evidence = small + (ctx.gap_evidence() or [])
        remedies = [spec.more_data,
                    "Meanwhile prefer head-only or LoRA training: fewer weights to fit."]
        return Diagnosis("too_little_data", TITLES["too_little_data"], evidence, remedies, notes)
    if ctx.at_chance():
        evidence = ctx.chance_evidence()
        learnable = _learnable_by_baseline(data.get("baselines") or {}, ctx)
        if learnable:  # the labels do follow from the texts: the training did not learn
            evidence.append(learnable)
            return Diagnosis("no_signal", TITLES["no_signal"], evidence,
                             ["Raise the learning rate (for example 3 to 10 times) or train "
                              "for more epochs: the training barely moved the model.",
                              "Check the learning rate and warmup in Advanced settings: a rate "
                              "far below the default learns nothing in a few epochs.",
                              "If the labels are not balanced, judge by macro-F1 and check the "
                              "rare labels' examples."], notes)
        return Diagnosis("no_signal", TITLES["no_signal"], evidence,
                         ["Check the labels: are they shuffled, or misaligned with the texts "
                          "(a sorted column, an off-by-one row)?",
                          "Check that the label can be predicted from the text at all: could "
                          "a person tell it from the text alone?",
                          "If both hold, raise the learning rate or train longer."], notes)
    imbalance = _class_imbalance(validation, data)
    if imbalance:
        evidence, rare = imbalance
        remedies = [f"Add examples of {rare}, or down-sample the common label.",
                    "Judge the model by macro-F1 and the per-label recall, not accuracy.",
                    "Check the confusion matrix: if the rare label matters most, review the "
                    "rows it missed."]
        return Diagnosis("class_imbalance", TITLES["class_imbalance"], evidence, remedies, notes)
    over = ctx.overfitting()
    if over:
        remedies = ["Train for fewer epochs or keep early stopping on (the best checkpoint is "
                    "kept either way).",
                    "Raise weight decay (for example 0.1) or lower the learning rate.",
                    "Add more training data: it is the surest cure."]
        if method == "full":
            remedies.insert(1, "Try LoRA or head-only training: far fewer trainable weights.")
        return Diagnosis("overfitting", TITLES["overfitting"], over + ctx.kept(), remedies, notes)
    under = ctx.underfitting()
    rising = ctx.still_improving()
    if under and rising:  # far from fitting and still climbing: the cure is more training
        return Diagnosis("still_improving", TITLES["still_improving"], rising + under,
                         ["Train for more epochs (or raise the epochs and keep early stopping "
                          "on): the scores were still climbing and far from their ceiling.",
                          "If more epochs are costly, raise the learning rate a little."],
                         notes)
    if under:
        remedies = ["Train for more epochs.", "Raise the learning rate a little."]
        if method == "head":
            remedies.insert(0, "Use LoRA or full fine-tuning: head-only cannot adapt the "
                            "encoder.")
        remedies.append("Check the labels: noisy or inconsistent labels cap what can be "
                        "learned.")
        return Diagnosis("underfitting", TITLES["underfitting"], under + (rising or []),
                         remedies, notes)
    if rising:
        return Diagnosis("still_improving", TITLES["still_improving"], rising + ctx.summary(),
                         ["Train for more epochs (or raise the epochs and keep early stopping "
                          "on): the validation score had not levelled off."], notes)
    return Diagnosis("healthy", TITLES["healthy"], ctx.summary() + ctx.kept(),
                     ["Nothing to fix. Look through the worst-predicted test examples for "
                      "label noise."],
                     notes)


@dataclass
class _Context:
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
        for row, when in ((last, "at the last evaluation"), (self.best, "at the kept step")):
            gap = self.gap(row)
            if gap and gap[0] > gap[1] and row["train_metric"] >= MEMORISED:
                loss = f", training loss {_f(row.get('train_loss'))}" if row.get(
                    "train_loss") is not None else ""
                evidence.append(
                    f"Train {self.title} {_f(row['train_metric'])}{loss} vs validation "
                    f"{_f(row['val_metric'])} {when}: a gap of {gap[0]:.2f}, beyond the "
                    f"±{_f(gap[1])} noise. The model memorised its training rows; on new "
                    f"data expect about {_f(row['val_metric'])}, not "
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
        scored = [h for h in self.history if h.get("val_metric") is not None]
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
        if self.best and self.history and self.best is not self.history[-1]:
            return [f"The best checkpoint (step {self.best['step']}, epoch "
                    f"{_f(self.best['epoch'])}, validation {self.title} "
                    f"{_f(self.best['val_metric'])}) was kept, not the last."]
        return []


def _learnable_by_baseline(baselines: dict, ctx: _Context) -> str | None:
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


def _overconfidence(history: list[dict], best: dict | None, ctx: _Context) -> list[str]:
    """Validation loss rising while the metric holds: the model grows over-confident."""
    losses = [h for h in history if h.get("eval_loss") is not None]
    if len(losses) < 3 or not best:
        return []
    low = min(range(len(losses)), key=lambda i: losses[i]["eval_loss"])
    last = losses[-1]
    if low == len(losses) - 1 or last["eval_loss"] < losses[low]["eval_loss"] * 1.1:
        return []
    vm = last.get("val_metric")
    if vm is None or best["val_metric"] - vm > ctx.band(best["val_metric"]):
        return []
    return [f"Validation loss rose from {_f(losses[low]['eval_loss'])} (step "
            f"{losses[low]['step']}) to {_f(last['eval_loss'])} while validation "
            f"{ctx.title} held ({_f(vm)} at the end, best {_f(best['val_metric'])}): the model "
            "grew over-confident rather than worse. The kept checkpoint was chosen by the "
            f"{ctx.title}, not by the loss."]


def _too_little_data(data: dict, unit: str = "training examples") -> list[str]:
    out = []
    n_train = data.get("n_train")
    if n_train is not None and n_train < MIN_TRAIN:
        out.append(f"Only {n_train} {unit} (fewer than {MIN_TRAIN}).")
    counts = data.get("label_counts") or {}
    if counts:
        label, n = min(counts.items(), key=lambda kv: kv[1])
        if n < MIN_PER_CLASS:
            what = "entities" if unit == "training sentences" else "training examples"
            out.append(f"Label '{label}' has only {n} {what}.")
    n_val = data.get("n_validation")
    if n_val is not None and n_val < MIN_VALIDATION:
        out.append(f"The validation split has {n_val} rows, so one example moves the score by "
                   f"{100 / max(n_val, 1):.0f} points.")
    return out


def _class_imbalance(validation: dict, data: dict) -> tuple[list[str], str] | None:
    """Judged on the validation split of the kept checkpoint (never on the test split)."""
    per_class = validation.get("per_class") or {}
    counts = data.get("label_counts") or {}
    if not per_class or not counts or len(counts) < 2 or "predicted_share" not in validation:
        return None
    total = sum(counts.values())
    common, n_common = max(counts.items(), key=lambda kv: kv[1])
    missed = [(name, s["recall"]) for name, s in per_class.items()
              if name != common and s.get("support", 0) >= 3 and s["recall"] < 0.5
              and counts.get(name, 0) * 3 <= n_common]
    share = (validation.get("predicted_share") or {}).get(common, 0.0)
    if not missed or n_common / total < 0.5:
        return None
    evidence = [f"'{common}' is {n_common / total:.0%} of the training data and the model "
                f"predicts it for {share:.0%} of validation rows."]
    evidence += [f"Recall on '{name}' is {_f(r)}: it finds {r:.0%} of them." for name, r in missed]
    acc, macro = validation.get("accuracy"), validation.get("macro_f1")
    if acc is not None and macro is not None:
        evidence.append(f"Accuracy {_f(acc)} vs macro-F1 {_f(macro)}: accuracy hides the "
                        "misses.")
    rare = " and ".join(f"'{name}'" for name, _ in missed)
    return evidence, rare
