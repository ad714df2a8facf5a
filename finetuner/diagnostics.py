"""The verdict on a finished run: healthy, overfitting, underfitting, too little data, or class
imbalance dominating, with the evidence in numbers and concrete remedies.

`diagnose` is a pure function over the logged evaluation history, the final test metrics and
a few facts about the data, so it is unit-tested on synthetic curves and the UI only renders
what it returns. Imports neither torch nor transformers.

History rows look like {"step", "epoch", "train_loss", "eval_loss", "val_metric",
"train_metric"}; `history_from_events` builds them from events.jsonl records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

VERDICTS = ("healthy", "overfitting", "underfitting", "too_little_data", "class_imbalance")
TITLES = {
    "healthy": "Healthy: the model learned the task and holds up on unseen data.",
    "overfitting": "Overfitting: the model memorised the training data and got worse on "
    "unseen data.",
    "underfitting": "Underfitting: the model has not learned the task well, not even on the "
    "data it trained on.",
    "too_little_data": "Too little data: the scores rest on so few examples that they are not "
    "reliable.",
    "class_imbalance": "Class imbalance dominates: the model mostly predicts the common label "
    "and misses the rare one(s).",
}
MORE_DATA = {
    "classification": "Add labelled examples: a few hundred per label is a good start.",
    "ner": "Annotate more sentences: a few hundred per entity type is a good start.",
    "qa": "Add more questions with answers: a few hundred, over many passages, is a good "
          "start.",
}
UNITS = {"classification": "training examples", "ner": "training sentences",
         "qa": "training questions"}
MIN_TRAIN = 100
MIN_PER_CLASS = 8
MIN_VALIDATION = 20


@dataclass
class Diagnosis:
    verdict: str
    title: str
    evidence: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)

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


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3f}"


def diagnose(
    history: list[dict],
    final: dict | None = None,
    data: dict | None = None,
    metric_title: str = "macro-F1",
    method: str | None = None,
    task: str = "classification",
) -> Diagnosis:
    """Judge a run from its curves (`history`), test metrics (`final`) and data facts.

    `data` may hold n_train, n_validation and label_counts (classification).
    """
    final = final or {}
    data = data or {}
    small = _too_little_data(data, UNITS.get(task, "training examples"))
    imbalance = _class_imbalance(final, data)
    over = _overfitting(history, metric_title)
    under = _underfitting(history, metric_title) if not over else None
    best = _best_row(history)
    best_note = []
    if best and history and best is not history[-1]:
        best_note = [f"The best checkpoint (step {best['step']}, epoch {_f(best['epoch'])}, "
                     f"validation {metric_title} {_f(best['val_metric'])}) was kept, not the last."]
    if small:
        evidence = small + (over or []) + (under or [])
        remedies = [MORE_DATA.get(task, MORE_DATA["classification"]),
                    "Meanwhile prefer head-only or LoRA training: fewer weights to fit."]
        return Diagnosis("too_little_data", TITLES["too_little_data"], evidence, remedies)
    if imbalance:
        evidence, rare = imbalance
        remedies = [f"Add examples of {rare}, or down-sample the common label.",
                    "Judge the model by macro-F1 and the per-label recall, not accuracy.",
                    "Check the confusion matrix: if the rare label matters most, review the "
                    "test rows it missed."]
        return Diagnosis("class_imbalance", TITLES["class_imbalance"], evidence, remedies)
    if over:
        remedies = ["Train for fewer epochs or keep early stopping on (the best checkpoint is "
                    "kept either way).",
                    "Raise weight decay (for example 0.1) or lower the learning rate.",
                    "Add more training data."]
        if method == "full":
            remedies.insert(1, "Try LoRA or head-only training: far fewer trainable weights.")
        return Diagnosis("overfitting", TITLES["overfitting"], over + best_note, remedies)
    if under:
        remedies = ["Train for more epochs.", "Raise the learning rate a little."]
        if method == "head":
            remedies.insert(0, "Use LoRA or full fine-tuning: head-only cannot adapt the "
                            "encoder.")
        remedies.append("Check the labels: noisy or inconsistent labels cap what can be "
                        "learned.")
        return Diagnosis("underfitting", TITLES["underfitting"], under, remedies)
    return Diagnosis("healthy", TITLES["healthy"], _healthy(history, metric_title) + best_note,
                     _healthy_remedies(history))


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


def _class_imbalance(final: dict, data: dict) -> tuple[list[str], str] | None:
    per_class = final.get("per_class") or {}
    counts = data.get("label_counts") or {}
    if not per_class or not counts or len(counts) < 2 or "predicted_share" not in final:
        return None
    total = sum(counts.values())
    common, n_common = max(counts.items(), key=lambda kv: kv[1])
    missed = [(name, s["recall"]) for name, s in per_class.items()
              if name != common and s.get("support", 0) >= 3 and s["recall"] < 0.5
              and counts.get(name, 0) * 3 <= n_common]
    share = (final.get("predicted_share") or {}).get(common, 0.0)
    if not missed or n_common / total < 0.5:
        return None
    evidence = [f"'{common}' is {n_common / total:.0%} of the training data and the model "
                f"predicts it for {share:.0%} of test rows."]
    evidence += [f"Recall on '{name}' is {_f(r)}: it finds {r:.0%} of them." for name, r in missed]
    acc, macro = final.get("accuracy"), final.get("macro_f1")
    if acc is not None and macro is not None:
        evidence.append(f"Accuracy {_f(acc)} vs macro-F1 {_f(macro)}: accuracy hides the "
                        "misses.")
    rare = " and ".join(f"'{name}'" for name, _ in missed)
    return evidence, rare


def _best_row(history: list[dict]) -> dict | None:
    scored = [h for h in history if h.get("val_metric") is not None]
    return max(scored, key=lambda h: h["val_metric"]) if scored else None


def _overfitting(history: list[dict], title: str) -> list[str] | None:
    evidence = []
    losses = [h for h in history if h.get("eval_loss") is not None]
    if len(losses) >= 3:
        low = min(range(len(losses)), key=lambda i: losses[i]["eval_loss"])
        rises = 0
        for i in range(low + 1, len(losses)):
            rises = rises + 1 if losses[i]["eval_loss"] > losses[i - 1]["eval_loss"] else 0
        last, best = losses[-1], losses[low]
        grew = last["eval_loss"] >= best["eval_loss"] * 1.1
        t0, t1 = best.get("train_loss"), last.get("train_loss")
        train_fell = t0 is not None and t1 is not None and t1 < t0
        if rises >= 2 and grew and train_fell:
            drop = (t0 - t1) / t0 if t0 else 0.0
            evidence.append(
                f"Validation loss rose {rises} evaluations in a row, from {_f(best['eval_loss'])} "
                f"(step {best['step']}) to {_f(last['eval_loss'])}, while training loss fell "
                f"{drop:.0%} ({_f(t0)} → {_f(t1)})."
            )
    last = history[-1] if history else {}
    tm, vm = last.get("train_metric"), last.get("val_metric")
    if tm is not None and vm is not None and tm >= 0.9 and tm - vm >= 0.1:
        evidence.append(f"Train {title} {_f(tm)} vs validation {_f(vm)} at the last evaluation "
                        f"(a gap of {tm - vm:.2f}).")
    return evidence or None


def _underfitting(history: list[dict], title: str) -> list[str] | None:
    if not history:
        return None
    last = history[-1]
    tm, vm = last.get("train_metric"), last.get("val_metric")
    losses = [h["train_loss"] for h in history if h.get("train_loss") is not None]
    evidence = []
    if tm is not None and tm < 0.7:
        evidence.append(f"Train {title} is only {_f(tm)} (validation {_f(vm)}): the model does "
                        "not fit even the examples it trains on.")
    if len(losses) >= 2 and losses[0] > 0:
        drop = (losses[0] - losses[-1]) / losses[0]
        if drop < 0.1 and (tm is None or tm < 0.8):
            how = f"fell only {drop:.0%}" if drop >= 0.005 else "did not fall"
            evidence.append(f"Training loss {how} ({_f(losses[0])} → {_f(losses[-1])}).")
    return evidence or None


def _healthy(history: list[dict], title: str) -> list[str]:
    if not history:
        return ["No evaluation was logged; only the test metrics are available."]
    best = _best_row(history) or history[-1]
    out = [f"Best validation {title} {_f(best.get('val_metric'))} at step {best['step']}."]
    tm, vm = best.get("train_metric"), best.get("val_metric")
    if tm is not None and vm is not None:
        gap = f"a gap of {tm - vm:.2f}" if tm - vm > 0.005 else "no gap"
        out.append(f"Train {title} {_f(tm)} vs validation {_f(vm)}: {gap}.")
    losses = [h for h in history if h.get("eval_loss") is not None]
    if len(losses) >= 2:
        out.append(f"Validation loss went from {_f(losses[0]['eval_loss'])} to "
                   f"{_f(losses[-1]['eval_loss'])}.")
    return out


def _healthy_remedies(history: list[dict]) -> list[str]:
    scored = [h["val_metric"] for h in history if h.get("val_metric") is not None]
    if len(scored) >= 2 and scored[-1] == max(scored) and scored[-1] > scored[-2]:
        return ["The validation score was still rising at the end: one more epoch may help."]
    return ["Nothing to fix. Check the misclassified examples for label noise."]
