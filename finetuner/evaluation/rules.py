"""The verdict's rules, tried in order by `diagnostics._diagnose`: too little data, no signal
(at chance), class imbalance, overfitting, then how the curves fit (healthy, still improving,
underfitting). Each takes the run's curves, the kept checkpoint's validation metrics and the
data facts and returns (verdict, evidence, remedies) or None; plus the multi-label note on
labels never predicted. Pure functions; no torch."""

from __future__ import annotations

from finetuner.english import plural
from finetuner.evaluation.curves import Curves, _f, _learnable_by_baseline
from finetuner.tasks import NO_LABEL

MIN_TRAIN = 100
MIN_PER_CLASS = 8
MIN_VALIDATION = 20


def never_predicted_note(validation: dict, data: dict) -> str | None:
    """Multi-label: labels that occur in the validation split but that the kept model never
    predicts there, named with their training counts (usually too rare to learn), instead
    of leaving them silently out of every answer."""
    per_label = (validation or {}).get("per_label") or {}
    counts = data.get("label_counts") or {}
    silent = [name for name, row in per_label.items()
              if isinstance(row, dict) and row.get("support") and not row.get("predicted")
              and "predicted" in row]
    if not silent:
        return None
    named = ", ".join(f"'{n}' ({counts.get(n, 0)} training example"
                      f"{'' if counts.get(n, 0) == 1 else 's'})" for n in silent[:8])
    more = f" and {len(silent) - 8} more" if len(silent) > 8 else ""
    return (f"Never predicted on the validation split, although it holds them: {named}{more}. "
            "Labels with few training examples are too rare to learn: add examples of them, "
            "or merge or drop them; the model will not answer them as it is.")


COMPARE = ("Compare methods (Model & method, 'Not sure? Compare methods', or the command "
           "python -m finetuner compare)")


def rule_too_little_data(curves: Curves, validation, data, spec, method):
    small = _too_little_data(data, spec.units)
    if small:
        # not "prefer head-only or LoRA": on 64 to 1,000 SST-2 sentences head-only scored
        # below full fine-tuning from the fitted head and LoRA at most level with it
        # (bench/RESULTS.md); a comparison measures it on the user's data
        return ("too_little_data", small + (curves.gap_evidence() or []),
                [spec.more_data, COMPARE + " to see which method does best on data this "
                 "small: it trains each on the same splits and picks by validation."])
    return None


def rule_no_signal(curves: Curves, validation, data, spec, method):
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


def rule_class_imbalance(curves: Curves, validation, data, spec, method):
    imbalance = _class_imbalance(validation, data)
    if not imbalance:
        return None
    evidence, rare = imbalance
    return ("class_imbalance", evidence,
            [f"Add examples of {rare}, or down-sample the common label.",
             "Judge the model by macro-F1 and the per-label recall, not accuracy.",
             "Check the confusion matrix: if the rare label matters most, review the rows it "
             "missed."])


def rule_overfitting(curves: Curves, validation, data, spec, method):
    over = curves.overfitting()
    if not over:
        return None
    kept = curves.kept()
    regularise = "Raise weight decay (for example 0.1) or lower the learning rate."
    if kept:  # fewer epochs would only give back the checkpoint that is already kept
        remedies = ["Add more training data: it is the surest cure. Fewer epochs would not "
                    "help: the kept checkpoint is the one that scored best on validation.",
                    regularise]
    else:
        remedies = ["Train for fewer epochs or keep early stopping on (the best checkpoint is "
                    "kept either way).", regularise,
                    "Add more training data: it is the surest cure."]
    if method == "full":  # a suggestion to measure, not a promise: on a few hundred SST-2
        # sentences LoRA and head-only scored below full fine-tuning (bench/RESULTS.md)
        remedies.insert(1, COMPARE + " to see whether LoRA, with far fewer trainable "
                        "weights, does better on your data: it often does not on small data.")
    return "overfitting", over + kept, remedies


def rule_fit(curves: Curves, method: str | None) -> tuple[str, list[str], list[str]]:
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
    # rows without a label (multi-label) are no label of their own
    counts = {k: v for k, v in (data.get("label_counts") or {}).items() if k != NO_LABEL}
    if counts:
        label, n = min(counts.items(), key=lambda kv: kv[1])
        if n < MIN_PER_CLASS:
            what = ("entity", "entities") if unit == "training sentences" else \
                ("training example", "training examples")
            out.append(f"Label '{label}' has only {plural(n, *what)}.")
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
