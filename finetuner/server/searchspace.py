"""What a search varies: the space around the method's own defaults, the base config's own
settings as a point of it, and a trial's config from sampled values (a trial never scores
the test split and keeps no model)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.methods import CPU_BATCH_SIZE, default_learning_rate
from finetuner.models.modeling import source_of
from finetuner.tasks import get_task


def space(base: RunConfig) -> dict:
    """What is searched, around the method's own defaults: learning rate (log scale, 4x
    each way), epochs, batch size, warmup, weight decay, dropout and, for LoRA, rank and alpha."""
    lr = default_learning_rate(base.method.method,
                               full_factor=get_task(base.task).full_lr_factor)
    # a factor of 4 each way: on 1,000 SST-2 sentences a decade below the default (1e-5 for
    # full fine-tuning) learned nothing in 5 epochs, and 4 of 10 trials went there
    out = {"learning_rate": ("log", lr / 4, min(0.5, lr * 4)),
           "epochs": ("int", 1, max(2, math.ceil(base.training.epochs * 2))),
           "batch_size": ("choice", [16, 32, 64]),
           "warmup_ratio": ("float", 0.0, 0.2),
           "weight_decay": ("float", 0.0, 0.1),
           "dropout": ("float", 0.0, 0.3)}
    if base.method.method == "lora":
        out["lora_r"] = ("choice", [4, 8, 16, 32])
        out["lora_alpha_ratio"] = ("choice", [1, 2, 4])  # alpha = ratio x rank
    return out


def defaults(base: RunConfig, ranges: dict) -> dict:
    """The base config's own settings, as a point of the space (those inside it)."""
    t, m = base.training, base.method
    point = {"learning_rate": t.learning_rate or default_learning_rate(
                 m.method, full_factor=get_task(base.task).full_lr_factor),
             "epochs": int(round(t.epochs)), "batch_size": t.batch_size or CPU_BATCH_SIZE,
             "warmup_ratio": t.warmup_ratio, "weight_decay": t.weight_decay,
             "dropout": t.dropout if t.dropout is not None else _model_dropout(base),
             "lora_r": m.lora_r, "lora_alpha_ratio": m.lora_alpha / max(1, m.lora_r)}
    out = {}
    for name, (kind, *args) in ranges.items():
        value = point.get(name)
        if value is None:
            continue  # not known (a model that names no dropout): the sampler draws it
        inside = value in args[0] if kind == "choice" else args[0] <= value <= args[1]
        if inside:
            out[name] = value
    return out


def _model_dropout(base: RunConfig) -> float | None:
    """The model's own hidden dropout, read from its config.json (None when unknown)."""
    try:
        config = json.loads((Path(source_of(base.model).path) / "config.json").read_text())
    except Exception:  # noqa: BLE001 - a hub id offline, an unreadable folder: not known
        return None
    value = config.get("hidden_dropout_prob", config.get("dropout"))
    return float(value) if isinstance(value, (int, float)) else None


SECTION = {"learning_rate": "training", "epochs": "training", "batch_size": "training",
           "warmup_ratio": "training", "weight_decay": "training", "dropout": "training",
           "lora_r": "method"}


def suggest(trial, base: RunConfig, ranges: dict) -> RunConfig:
    """The trial's config: the base with the sampled settings (a trial never tests, never
    saves a model)."""
    values = {}
    for name, (kind, *args) in ranges.items():
        if kind == "log":
            values[name] = trial.suggest_float(name, args[0], args[1], log=True)
        elif kind == "float":
            values[name] = trial.suggest_float(name, args[0], args[1])
        elif kind == "int":
            values[name] = trial.suggest_int(name, args[0], args[1])
        else:
            values[name] = trial.suggest_categorical(name, args[0])
    return configure(base, values, trial=True)


def configure(base: RunConfig, values: dict, trial: bool) -> RunConfig:
    raw = base.to_dict()
    for name, value in values.items():
        if name == "lora_alpha_ratio":
            raw["method"]["lora_alpha"] = int(value) * int(values.get("lora_r",
                                                                      raw["method"]["lora_r"]))
        else:
            raw[SECTION[name]][name] = value
    raw["training"]["score_test"] = not trial
    raw["training"]["save_model"] = not trial
    return RunConfig.from_dict(raw)
