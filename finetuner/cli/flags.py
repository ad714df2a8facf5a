"""The command line's flags: each one names a field of RunConfig, and `config_from_args` turns
parsed flags (and an optional --config file) into a checked RunConfig. Its own module so the
commands and the page's command-line preview read one table without importing each other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.tasks import DEFAULT_TASK, TASKS

# flag -> (section, field, type, help)
FLAGS = {
    "--task": (None, "task", str, f"{' | '.join(TASKS)} (default {DEFAULT_TASK})"),
    "--data": ("data", "train_file", str, "training file (CSV, TSV, JSON, JSONL, Parquet)"),
    "--validation": ("data", "validation_file", str, "optional validation file"),
    "--test": ("data", "test_file", str, "optional test file"),
    "--text-column": ("data", "text_column", str, "text column (detected when omitted)"),
    "--text-pair-column": ("data", "text_pair_column", str, "second text column (pairs)"),
    "--label-column": ("data", "label_column", str, "label column (detected when omitted)"),
    "--validation-split": ("data", "validation_split", float, "held-out share (default 0.1)"),
    "--train-fraction": ("data", "train_fraction", float,
                         "train on this share of the training split (default 1)"),
    "--test-split": ("data", "test_split", float, "held-out share (default 0.1)"),
    "--max-length": ("data", "max_length", int, "max tokens per example (default 128; 384 for qa)"),
    "--doc-stride": ("data", "doc_stride", int, "QA: token overlap of context windows"),
    "--max-answer-length": ("data", "max_answer_length", int, "QA: longest answer in tokens"),
    "--label-separator": ("data", "label_separator", str,
                          "multi-label: character between labels in a cell (detected)"),
    "--long-documents": ("data", "long_documents", str,
                         "auto | windows | truncate: texts longer than --max-length"),
    "--window-pooling": ("data", "window_pooling", str, "mean | max: windows of a long text"),
    "--max-windows": ("data", "max_windows", int, "most windows read per text (default 16)"),
    "--model": ("model", "name_or_path", str, "'default', a model folder or zip, or a hub id"),
    "--method": ("method", "method", str, "full | lora | head (default full)"),
    "--lora-r": ("method", "lora_r", int, "LoRA rank (default 8)"),
    "--lora-alpha": ("method", "lora_alpha", int, "LoRA alpha (default 16)"),
    "--lora-dropout": ("method", "lora_dropout", float, "LoRA dropout (default 0.1)"),
    "--lora-targets": ("method", "lora_target_modules", str, "comma-separated module names"),
    "--epochs": ("training", "epochs", float, "passes over the data (default 3)"),
    "--lr": ("training", "learning_rate", float, "learning rate (default per method)"),
    "--batch-size": ("training", "batch_size", int,
                     "training batch size (default: 32 on CPU, auto on GPU)"),
    "--eval-batch-size": ("training", "eval_batch_size", int, "evaluation batch size"),
    "--weight-decay": ("training", "weight_decay", float, "weight decay (default 0.01)"),
    "--warmup-ratio": ("training", "warmup_ratio", float, "warmup share (default 0.06)"),
    "--evals-per-epoch": ("training", "evals_per_epoch", int, "evaluations per epoch"),
    "--dropout": ("training", "dropout", float,
                  "dropout of the encoder's layers and head (default: the model's own)"),
    "--patience": ("training", "early_stopping_patience", int, "early stopping patience"),
    "--min-steps": ("training", "min_steps", int,
                    "small data: at least this many steps (default 100; 0: off)"),
    "--max-steps": ("training", "max_steps", int, "stop after this many steps"),
    "--seed": ("training", "seed", int, "random seed (default 42)"),
    "--precision": ("training", "precision", str, "auto | fp32 | bf16 | fp16"),
    "--max-memory-mb": ("training", "max_memory_mb", int, "cap on the worker's extra memory"),
    "--gpus": ("training", "processes", int,
               "train this run on N GPUs at once (torchrun + DDP; on a CPU: N gloo "
               "processes); --batch-size stays the global batch"),
    "--report-to": ("training", "report_to", str,
                    "experiment trackers, comma-separated: tensorboard, mlflow, trackio "
                    "(default: none; each writes inside the run folder)"),
}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    raw = RunConfig.load(args.config).to_dict() if args.config else RunConfig().to_dict()
    if not args.config:
        raw["data"]["max_length"] = None  # the task's own default (384 for qa), not 128
    for flag, (section, name, _, _) in FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        if section is None:
            raw[name] = value
        else:
            raw[section][name] = value
    if getattr(args, "adapter_only", False):
        raw["method"]["export_adapter_only"] = True
    if getattr(args, "onnx", False):
        raw["training"]["onnx"] = True
    if getattr(args, "no_pair_loss", False):
        raw["training"]["pair_loss"] = False
    for key in ("train_file", "validation_file", "test_file"):
        if raw["data"].get(key):
            raw["data"][key] = str(Path(raw["data"][key]).expanduser().resolve())
    if not raw["data"].get("train_file"):
        raise FinetunerError("No training data given.", "Pass --data FILE.", code="no_data")
    return RunConfig.from_dict(raw)
