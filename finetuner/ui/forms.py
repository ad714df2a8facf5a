"""The form's fields and choices, and reading its values (paths, columns, numbers)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.methods import DEFAULT_METHOD, METHOD_TITLES, METHODS
from finetuner.models.packaged import mpnet_installed
from finetuner.tasks import TASKS

NONE = "(none)"



def examples_dir(beside: Path | None = None) -> Path:
    """The example files: beside the package in a checkout (or an editable install), else
    FINETUNER_EXAMPLES or ./examples (a plain `pip install .` copies only the package)."""
    beside = beside or Path(__file__).resolve().parent.parent.parent / "examples"
    for folder in (beside, Path(os.environ.get("FINETUNER_EXAMPLES") or "examples")):
        if folder.is_dir():
            return folder.resolve()
    return beside


EXAMPLES_DIR = examples_dir()
# picker title: (file in examples/, task); only the files this install has
EXAMPLES = {title: (name, spec.name) for spec in TASKS.values()
            for title, name in spec.ui.examples if (EXAMPLES_DIR / name).is_file()}
MODEL_CHOICES = [("Embedded default: all-MiniLM-L6-v2 (offline, 22.7M parameters)", "default"),
                 ("Base size: all-mpnet-base-v2 (offline, 110M parameters; more accurate, "
                  "about 5x slower per training step)", "mpnet"),
                 ("A model folder on this server", "folder"),
                 ("A Hugging Face hub id (needs internet)", "hub"),
                 ("Upload a model (.zip with safetensors weights)", "zip"),
                 ("One of your models (trained or uploaded here)", "mine")]
METHOD_CHOICES = [(METHOD_TITLES[m], m) for m in METHODS]
# form field -> (RunConfig section, field, reader): the one map from the page to the config.
# An empty field (or 0 where 0 means "not set") is left out, so RunConfig's own default
# applies: no default is written twice.
SETTINGS = {
    "val_split": ("data", "validation_split", float),
    "test_split": ("data", "test_split", float),
    "max_length": ("data", "max_length", int),
    "long_documents": ("data", "long_documents", str),
    "window_pooling": ("data", "window_pooling", str),
    "label_separator": ("data", "label_separator", str),
    "lora_r": ("method", "lora_r", int),
    "lora_alpha": ("method", "lora_alpha", int),
    "lora_dropout": ("method", "lora_dropout", float),
    "lora_targets": ("method", "lora_target_modules", str),
    "epochs": ("training", "epochs", float),
    "lr": ("training", "learning_rate", float),
    "batch_size": ("training", "batch_size", int),
    "weight_decay": ("training", "weight_decay", float),
    "warmup_ratio": ("training", "warmup_ratio", float),
    "evals_per_epoch": ("training", "evals_per_epoch", int),
    "patience": ("training", "early_stopping_patience", int),
    "seed": ("training", "seed", int),
    "precision": ("training", "precision", str),
    "max_steps": ("training", "max_steps", int),
    "report_to": ("training", "report_to", list),
    "onnx": ("training", "onnx", bool),
}
# 0 on the page: pick the default (a negative number is refused by the config, by name)
ZERO_IS_UNSET = {"lr", "batch_size", "max_steps"}
# the column pickers: one per RunConfig.data field that a task reads (TaskUI.columns), in the
# order the tasks list them
COLUMN_FIELDS = tuple(dict.fromkeys(c.field for spec in TASKS.values() for c in spec.ui.columns))
FORM_FIELDS = ("task", "train_file", "val_file", "test_file", *COLUMN_FIELDS, "model_choice",
               "model_path", "model_zip", "model_own", "method",
               *SETTINGS, "adapter_only")


def settings_from_form(form: dict) -> dict:
    """{section: {field: value}} for the settings the form sets (see SETTINGS)."""
    out: dict = {"data": {}, "method": {}, "training": {}}
    for key, (section, name, cast) in SETTINGS.items():
        raw = form.get(key)
        if cast is list:  # ticked boxes; none ticked: the default (report nowhere)
            value = [str(v) for v in raw] if raw else None
        elif cast is bool:  # a ticked box; unticked: the default
            value = True if raw else None
        elif cast is str:
            value = (str(raw).strip() or None) if raw is not None else None
        else:
            value = _num(raw, cast, None)
            if value is not None and key in ZERO_IS_UNSET and value == 0:
                value = None
        if value is not None:
            out[section][name] = value
    return out


def on_page(exc: FinetunerError, labels: dict[str, str]) -> str:
    """The error's sentence for the page: a setting's check names the setting by its label
    there ("Learning rate is 2. ..."), not by its name in the config (learning_rate).
    `labels`: form field -> its label on the page."""
    text = exc.text
    if exc.code == "bad_setting":
        for key, (_, name, _) in SETTINGS.items():
            if labels.get(key) and re.match(rf"{re.escape(name)}\b", text):
                return labels[key] + text[len(name):]
    return text


def method_of(form: dict) -> str:
    """The form's method, or the default one when the radio is empty."""
    return form.get("method") or DEFAULT_METHOD


def defaults():
    """RunConfig's defaults, for the widgets' initial values."""
    return RunConfig()


def _path(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    return str(getattr(value, "name", value))


NOT_YOURS = ("That file is not one of your uploads, or no longer on the server ({kept}, and "
             "all are cleared when the server restarts); upload it again.")


def _col(value) -> str | None:
    return None if value in (None, "", NONE) else str(value)


def _num(value, cast=float, default=None):
    if value is None or value == "":
        return default
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise FinetunerError(f"'{value}' is not a number.", "Enter a number.",
                             code="bad_number") from None


def model_choices() -> list[tuple[str, str]]:
    """The model picker: the base-size model only where its packages are installed."""

    return [c for c in MODEL_CHOICES if c[1] != "mpnet" or mpnet_installed()]
