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

from dataclasses import asdict, dataclass, field

from .curves import Curves, _f, _learnable_by_baseline, _overconfidence, best_row, noise

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
LABEL_NOISE_SHARE = 0.05  # flagged share of the checked training rows worth a note


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
    The rules are tried in order; the first that holds gives the verdict.
    """
    validation = validation or {}
    data = data or {}
    spec = _spec(task)
    best = best_row(history, best_step)
    # guessing is defined for labels to pick; finding entities or answer spans by chance
    # scores about 0
    chance = chance_scores(data.get("validation_counts") or data.get("label_counts"), metric) \
        if spec.guessable else chance_scores(None)
    curves = Curves(history, best, data.get("n_validation"), metric_title,
                    max(chance.values()), chance)
    notes = _overconfidence(history, best, curves)
    for rule in (_rule_too_little_data, _rule_no_signal, _rule_class_imbalance,
                 _rule_overfitting):
        found = rule(curves, validation, data, spec, method)
        if found:
            return Diagnosis(found[0], TITLES[found[0]], found[1], found[2], notes)
    verdict, evidence, remedies = _rule_fit(curves, method)
    return Diagnosis(verdict, TITLES[verdict], evidence, remedies, notes)


def _rule_too_little_data(curves: Curves, validation, data, spec, method):
    small = _too_little_data(data, spec.units)
    if small:
        return ("too_little_data", small + (curves.gap_evidence() or []),
                [spec.more_data, "Meanwhile prefer head-only or LoRA training: fewer weights "
                 "to fit."])
    return None


def _rule_no_signal(curves: Curves, validation, data, spec, method):
    if not curves.at_chance():
        return None
    evidence = curves.chance_evidence()
    learnable = _learnable_by_baseline(data.get("baselines") or {}, curves)
    if learnable:  # the labels do follow from the texts: the training did not learn
        return ("no_signal", evidence + [learnable],
                ["Raise the learning rate (for example 3 to 10 times) or train for more "
                 "epochs: the training barely moved the model.",
                 "Check the learning rate and warmup in Advanced settings: a rate far below "
                 "the default learns nothing in a few epochs.",
                 "If the labels are not balanced, judge by macro-F1 and check the rare labels' "
                 "examples."])
    return ("no_signal", evidence,
            ["Check the labels: are they shuffled, or misaligned with the texts (a sorted "
             "column, an off-by-one row)?",
             "Check that the label can be predicted from the text at all: could a person tell "
             "it from the text alone?",
             "If both hold, raise the learning rate or train longer."])


def _rule_class_imbalance(curves: Curves, validation, data, spec, method):
    imbalance = _class_imbalance(validation, data)
    if not imbalance:
        return None
    evidence, rare = imbalance
    return ("class_imbalance", evidence,
            [f"Add examples of {rare}, or down-sample the common label.",
             "Judge the model by macro-F1 and the per-label recall, not accuracy.",
             "Check the confusion matrix: if the rare label matters most, review the rows it "
             "missed."])


def _rule_overfitting(curves: Curves, validation, data, spec, method):
    over = curves.overfitting()
    if not over:
        return None
    remedies = ["Train for fewer epochs or keep early stopping on (the best checkpoint is kept "
                "either way).",
                "Raise weight decay (for example 0.1) or lower the learning rate.",
                "Add more training data: it is the surest cure."]
    if method == "full":
        remedies.insert(1, "Try LoRA or head-only training: far fewer trainable weights.")
    return "overfitting", over + curves.kept(), remedies


def _rule_fit(curves: Curves, method: str | None) -> tuple[str, list[str], list[str]]:
    """Underfitting, still improving, or healthy: how far the model got and where it was
    heading when training ended."""
    under, rising = curves.underfitting(), curves.still_improving()
    more_epochs = ("Train for more epochs (or raise the epochs and keep early stopping on): ")
    if under and rising:  # far from fitting and still climbing: the cure is more training
        return ("still_improving", rising + under,
                [more_epochs + "the scores were still climbing and far from their ceiling.",
                 "If more epochs are costly, raise the learning rate a little."])
    if under:
        remedies = ["Train for more epochs.", "Raise the learning rate a little."]
        if method == "head":
            remedies.insert(0, "Use LoRA or full fine-tuning: head-only cannot adapt the "
                            "encoder.")
        remedies.append("Check the labels: noisy or inconsistent labels cap what can be "
                        "learned.")
        return "underfitting", under + (rising or []), remedies
    if rising:
        return ("still_improving", rising + curves.summary(),
                [more_epochs + "the validation score had not levelled off."])
    return ("healthy", curves.summary() + curves.kept(),
            ["Nothing to fix. Look through the worst-predicted test examples for label "
             "noise."])


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
