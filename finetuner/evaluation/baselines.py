"""Cheap baselines scored beside every fine-tuned model, so a score means something.

Each task module that has them provides `baselines(train, validation, test, labels)` (majority
and TF-IDF + logistic regression for classification, memorised entities for NER, ...): this
room runs them and says how the model compares. Each baseline reports its validation score
(which the diagnosis may compare against: choices use validation only) and its test score
(shown beside the model's, used for nothing).
"""

from __future__ import annotations

from finetuner.tasks import get_task


def for_task(task: str, prepared) -> dict:
    """The task's baselines (its module's optional `baselines` hook) on its prepared splits
    ({} for tasks without one)."""
    hook = getattr(get_task(task).impl(), "baselines", None)
    if hook is None:
        return {}
    return hook(prepared.train, prepared.validation, prepared.test, prepared.labels)


def comparison(baselines: dict, metric: str, model_value: float | None,
               split: str = "validation") -> list[str]:
    """Sentences setting the model beside each baseline on one split."""
    out = []
    for base in baselines.values():
        value = (base.get(split) or {}).get(metric)
        if value is None or model_value is None:
            continue
        diff = (model_value - value) * 100
        verb = "beats" if diff > 0.05 else "trails" if diff < -0.05 else "ties"
        out.append(f"Fine-tuning {verb} the baseline '{base['title']}' "
                   f"({value:.3f}) by {abs(diff):.1f} points on the {split} split.")
    return out
