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
        named = f"the baseline '{base['title']}' ({value:.3f})"
        out.append(f"Fine-tuning {standing((model_value - value) * 100, named)} on the "
                   f"{split} split.")
    return out


def standing(points: float, baseline: str) -> str:
    """The model beside a baseline, `points` ahead (negative: behind), as printed to one
    decimal: "beats X by 1.2 points", "trails X by 0.4 points", or "ties X" (never "trails
    X by 0.0 points" when both scored the same)."""
    if round(points, 1) > 0:
        return f"beats {baseline} by {points:.1f} points"
    if round(points, 1) < 0:
        return f"trails {baseline} by {-points:.1f} points"
    return f"ties {baseline}"
