"""The form's fields and choices, and reading its values (paths, columns, numbers)."""

from __future__ import annotations

from pathlib import Path

from ..errors import FinetunerError

NONE = "(none)"

EXAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "examples"
EXAMPLES = {  # label: (file in examples/, task)
    "Film and product reviews (sentiment)": ("sentiment.csv", "classification"),
    "Text messages (spam, imbalanced)": ("spam.jsonl", "classification"),
    "News headlines (4 topics)": ("topics.tsv", "classification"),
    "Sentence pairs (entailment)": ("pairs.csv", "classification"),
    "News sentences with names (entities, CoNLL)": ("ner.conll", "ner"),
    "Questions about short passages (QA)": ("qa.jsonl", "qa"),
}
MODEL_CHOICES = [("Embedded default: all-MiniLM-L6-v2 (offline, 22.7M parameters)", "default"),
                 ("A model folder on this server", "folder"),
                 ("A Hugging Face hub id (needs internet)", "hub"),
                 ("Upload a model (.zip with safetensors weights)", "zip"),
                 ("One of your models (trained or uploaded here)", "mine")]
METHOD_CHOICES = [("Full fine-tuning", "full"), ("LoRA (adapters)", "lora"),
                  ("Head only (frozen encoder)", "head")]
METHOD_TITLES = {value: title for title, value in METHOD_CHOICES}
FORM_FIELDS = ("task", "train_file", "val_file", "test_file", "text_col", "pair_col",
               "label_col", "model_choice", "model_path", "model_zip", "model_own", "method",
               "epochs", "lr", "batch_size", "max_length", "weight_decay", "warmup_ratio",
               "evals_per_epoch", "patience", "seed", "precision", "max_steps", "val_split",
               "test_split", "lora_r", "lora_alpha", "lora_dropout", "lora_targets", "adapter_only")


def _path(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    return str(getattr(value, "name", value))


NOT_YOURS = "That file is not one of your uploads; upload it again."


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
