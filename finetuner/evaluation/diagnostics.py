"""The verdict on a finished run, with the evidence in numbers and concrete remedies.

Verdicts: worse than a simple baseline, healthy, still improving, overfitting (including
memorising), underfitting, learned nothing (at chance), too little data, class imbalance. A
model that trails the best simple baseline on validation by more than the noise gets the
baseline verdict whatever else is true: it must never be handed back in silence; what the other
rules found is kept below it as the second finding. `diagnose` is a pure function over the
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

from finetuner.evaluation.curves import (
    Curves,
    _f,
    _overconfidence,
    best_row,
)
from finetuner.evaluation.rules import (
    never_predicted_note,
    rule_class_imbalance,
    rule_fit,
    rule_no_signal,
    rule_overfitting,
    rule_too_little_data,
)
from finetuner.methods import METHOD_NAMES
from finetuner.tasks import DEFAULT_TASK

VERDICTS = ("behind_baseline", "healthy", "still_improving", "overfitting", "underfitting",
            "no_signal", "too_little_data", "class_imbalance")
TITLES = {
    "behind_baseline": "Worse than a simple baseline: a cheap model does better on unseen data "
    "than this fine-tuned one, so do not use it as it is.",
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
LABEL_NOISE_SHARE = 0.05  # flagged share of the checked training rows worth a note


@dataclass
class Diagnosis:
    verdict: str
    title: str
    evidence: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth knowing, not the verdict
    # behind_baseline only: the verdict the other rules gave, and the numbers of the loss
    finding: str | None = None
    baseline: dict = field(default_factory=dict)

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


def diagnose(
    history: list[dict],
    validation: dict | None = None,
    data: dict | None = None,
    metric_title: str = "macro-F1",
    method: str | None = None,
    task: str = DEFAULT_TASK,
    best_step: int | None = None,
    metric: str = "macro_f1",
) -> Diagnosis:
    """Judge a run (the rules of `_diagnose`), then set it beside the simple baselines on the
    validation split (data["baselines"]: {title: validation score}). Trailing the best one by
    more than the noise overrides every other verdict; a tie within the noise is said as a
    first line of evidence and leaves the verdict alone."""
    data = data or {}
    spec = _spec(task)
    curves = _curves(history, data, metric_title, spec, best_step, metric)
    d = _diagnose(curves, validation or {}, data, spec, method)
    # flags from a model that learned little say little about the labels
    noisy = label_noise_note(data.get("label_issues")) if d.verdict not in (
        "no_signal", "too_little_data", "underfitting") else None
    if noisy:
        d.notes.append(noisy)
    gap = baseline_gap(curves, data.get("baselines") or {},
                       spec.higher_is_better.get(metric, True))
    if gap and gap["behind"]:
        d = _behind_baseline(d, gap, curves, spec, method)
    elif gap and d.verdict not in ("no_signal", "too_little_data"):
        _as_good_as(d, gap, curves)
    return _training_notes(d, curves, data, method)


def _training_notes(d: Diagnosis, curves: Curves, data: dict, method: str | None
                    ) -> Diagnosis:
    """What the settings did to the run: no step beat the head it started from (the kept
    model is that head), or Max steps ended training before its epochs."""
    later = [h for h in curves.history if h["step"] > 0 and h.get("val_metric") is not None]
    if curves.best and curves.best["step"] == 0 and later and method != "head":
        d.notes.insert(0, f"No training step improved on the starting point (step 0: the new "
                          f"head fitted on the frozen encoder, validation {curves.title} "
                          f"{curves.best['val_metric']:.2f}); the kept model is that head, so "
                          f"the {METHOD_NAMES.get(method, 'fine-tuning')} steps did not help on "
                          "this data.")
    cut = data.get("max_steps_cut")
    if cut and d.verdict in ("underfitting", "still_improving", "behind_baseline",
                             "no_signal"):
        d.remedies.insert(0, f"Training stopped at the Max steps you set ({cut:,}) before its "
                             "epochs ran: raise Max steps or set it to 0, then judge again.")
    return d


def baseline_gap(curves: Curves, baselines: dict, higher_is_better: bool = True) -> dict | None:
    """The best baseline beside the kept checkpoint on validation: both scores, the gap
    (positive: the baseline is ahead, whichever way the metric runs) and its noise band.

    The band is two standard errors of the difference of two scores on this validation size
    (each score's binomial band, `noise`, added in quadrature): a gap inside it is a tie, never
    a loss. `behind` also needs a baseline that itself clearly beats guessing (as
    `_learnable_by_baseline` judges): losing to a guess is `no_signal`'s business."""
    sign = 1 if higher_is_better else -1
    scored = [(t, v) for t, v in baselines.items() if v is not None]
    if not scored or not curves.best or curves.best.get("val_metric") is None:
        return None
    title, value = max(scored, key=lambda tv: sign * tv[1])
    vm = curves.best["val_metric"]
    band = math.hypot(curves.band(vm), curves.band(value))
    gap = sign * (value - vm)
    informative = not higher_is_better or value > curves.floor + 2 * curves.band(value)
    return {"title": title, "value": value, "model": vm, "gap": gap, "band": band,
            "n_validation": curves.n_val, "metric_title": curves.title,
            "train": curves.best.get("train_metric"), "sign": sign,
            "behind": gap > band and informative}


def _as_good_as(d: Diagnosis, gap: dict, curves: Curves) -> None:
    """A baseline level with the model within the noise (or ahead, but hardly above guessing
    itself): the first evidence and remedy say so; the verdict stays."""
    vm, v = gap["model"], gap["value"]
    if gap["gap"] < -gap["band"] / 2:
        return
    tie = gap["gap"] <= gap["band"]
    d.evidence.insert(0, f"A simple baseline does {'as well' if tie else 'better'}: "
                         f"'{gap['title']}' scores {_f(v)} validation {curves.title}, the "
                         f"fine-tuned model {_f(vm)}, "
                         + (f"a difference within the ±{_f(gap['band'])} that {curves.n_val} "
                            "validation rows allow." if tie else
                            "though neither scores much above guessing."))
    d.remedies.insert(0, "For this data the simple baseline is as good and far cheaper to "
                         "run; keep it in mind."
                      + (" Fine-tuning may pull ahead with more epochs, data or a higher "
                         "learning rate." if vm < 0.98 else ""))
    # "nothing to fix" would contradict the line above
    d.remedies[:] = [r for r in d.remedies if not r.startswith("Nothing to fix")]


def _behind_baseline(found: Diagnosis, gap: dict, curves: Curves, spec, method) -> Diagnosis:
    """The verdict when a simple baseline wins: its numbers first, then what to try first;
    what the other rules found follows as the second finding (evidence and remedies), so
    nothing they saw is lost."""
    evidence = _behind_evidence(gap, curves)
    evidence.append(f"Second finding: {found.title}")
    evidence += found.evidence
    numbers = {k: gap[k] for k in ("title", "value", "model", "gap", "band", "n_validation",
                                   "metric_title")}
    return Diagnosis("behind_baseline", TITLES["behind_baseline"], evidence,
                     _behind_remedies(found, gap, spec, method), list(found.notes),
                     finding=found.verdict, baseline=numbers)


def _behind_evidence(gap: dict, curves: Curves) -> list[str]:
    out = [f"'{gap['title']}' scores {_f(gap['value'])} validation {curves.title}, the "
           f"fine-tuned model {_f(gap['model'])}: {100 * gap['gap']:.0f} points behind, more "
           f"than the ±{100 * gap['band']:.0f} points of noise that {curves.n_val} validation "
           "rows allow."]
    tm = gap["train"]
    if tm is None:
        return out
    if _under_trained(gap, None):
        out.append(f"Even on the rows it trained on the model scores only {_f(tm)}, less than "
                   "the baseline scores on rows it never saw: it has not learned the task yet.")
    else:
        out.append(f"On the rows it trained on the model scores {_f(tm)}: it learned them, but "
                   "carries less over to new texts than the baseline does.")
    return out


def _under_trained(gap: dict, verdict: str | None) -> bool:
    """Has the model not even fitted its training rows as well as the baseline does unseen
    ones? Then more (or stronger) training is the likely fix, not more data."""
    if gap["train"] is None:
        return verdict in ("no_signal", "underfitting", "still_improving", "too_little_data")
    return gap["sign"] * (gap["train"] - gap["value"]) < 0


def _behind_remedies(found: Diagnosis, gap: dict, spec, method) -> list[str]:
    """The likeliest fix first: stronger training when the model did not even fit its own
    rows as well as the baseline fits new ones, else the baseline itself and more data; then
    the second finding's remedies that say something new."""
    use_base = (f"Until a fine-tuned model beats it, do not use this one: the simple "
                f"'{gap['title']}' is more accurate on this data and far cheaper to run.")
    if not _under_trained(gap, found.verdict):
        first = [use_base, spec.more_data]
    elif found.verdict == "no_signal":  # its own first remedy: a far higher rate
        first = [found.remedies[0], use_base]
    elif method == "head":
        first = ["Switch to full fine-tuning (or LoRA): head-only training cannot adapt the "
                 "model to the task, and here it stays below a simple baseline.", use_base]
    else:
        first = ["Raise the learning rate (2 to 5 times, in Advanced settings) and train for "
                 "more epochs (for example twice as many): the model has not learned enough "
                 "yet.", use_base, spec.more_data]
    covered = ("Train for more epochs", "Raise the learning rate", "Use LoRA or full",
               "Nothing to fix", "Meanwhile prefer", "For this data the simple baseline",
               "If more epochs are costly")
    rest = [r for r in found.remedies if not r.startswith(covered) and r not in first]
    return first + rest[:2]


def warning(diagnosis: dict | None, see: str = "the Results tab") -> str:
    """The one-line warning Try it and the model card show for a behind_baseline verdict
    ("" for any other), numbers included when the run recorded them; `see` says where the
    remedies are."""
    d = diagnosis or {}
    if d.get("verdict") != "behind_baseline":
        return ""
    b = d.get("baseline") or {}
    if b.get("value") is None or b.get("model") is None:
        return ("This model does worse than a simple baseline on the validation data: do not "
                f"rely on its answers; {see} says what to try.")
    return (f"This model does worse than a simple baseline: validation "
            f"{b.get('metric_title', 'score')} {_f(b['model'])} against {_f(b['value'])} for "
            f"'{b.get('title')}', {100 * b.get('gap', 0):.0f} points behind on "
            f"{b.get('n_validation')} validation rows. Do not rely on its answers; {see} says "
            "what to try.")


def _spec(task: str):
    from finetuner.tasks import TASKS

    return TASKS.get(task) or TASKS[DEFAULT_TASK]


def from_inputs(inputs: dict) -> Diagnosis:
    """The verdict from a run's recorded diagnosis_input.json (events, validation detail of the
    kept checkpoint, data facts): what training computes and what the fixtures replay."""
    history = history_from_events(inputs.get("events") or [], inputs.get("metric", "macro_f1"))
    return diagnose(history, inputs.get("validation") or {}, inputs.get("data") or {},
                    inputs.get("metric_title", "macro-F1"), inputs.get("method"),
                    inputs.get("task", DEFAULT_TASK), best_step=inputs.get("best_step"),
                    metric=inputs.get("metric", "macro_f1"))


def _curves(history: list[dict], data: dict, metric_title: str, spec, best_step: int | None,
            metric: str) -> Curves:
    """The run's curves with its kept checkpoint, noise band and what guessing scores."""
    best = best_row(history, best_step)
    # guessing is defined for labels to pick; finding entities or answer spans by chance
    # scores about 0
    chance = chance_scores(data.get("validation_counts") or data.get("label_counts"), metric) \
        if spec.guessable else chance_scores(None)
    return Curves(history, best, data.get("n_validation"), metric_title,
                  max(chance.values()), chance)


def _diagnose(curves: Curves, validation: dict, data: dict, spec, method: str | None
              ) -> Diagnosis:
    """Judge a run from its curves, the kept checkpoint's validation metrics and data facts.

    `data` may hold n_train, n_validation, label_counts (training) and validation_counts.
    The rules are tried in order; the first that holds gives the verdict.
    """
    notes = _overconfidence(curves.history, curves.best, curves)
    unheard = never_predicted_note(validation, data)
    if unheard:
        notes.append(unheard)
    for rule in (rule_too_little_data, rule_no_signal, rule_class_imbalance,
                 rule_overfitting):
        found = rule(curves, validation, data, spec, method)
        if found:
            return Diagnosis(found[0], TITLES[found[0]], found[1], found[2], notes)
    verdict, evidence, remedies = rule_fit(curves, method)
    return Diagnosis(verdict, TITLES[verdict], evidence, remedies, notes)
