"""The model that comes out of a run: a folder that describes itself, and a zip of it.

RUN_DIR/model/ holds the weights (LoRA merged into the encoder unless an adapter-only export
was asked for), the tokenizer, config.json with the label names, finetuner.json (task, base
model, method, metrics) and a model card README.md with a usage snippet that needs only
transformers (and peft for adapters).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

from finetuner.errors import FinetunerError
from finetuner.models.modeling import hub_reachable
from finetuner.models.pooling import pooled_usage
from finetuner.runs import RunPaths, write_json
from finetuner.tasks import DEFAULT_TASK
from finetuner.tasks.options import TaskOptions

ADAPTER_USAGE = '''from peft import PeftModel
from transformers import {auto}, AutoTokenizer

base = {auto}.from_pretrained("{base}"{head})
model = PeftModel.from_pretrained(base, "{path}").merge_and_unload()
tokenizer = AutoTokenizer.from_pretrained("{path}")'''


def save_model(run: RunPaths, model, tokenizer, cfg, spec, results: dict, report) -> Path:
    from finetuner.models.heads import MEAN, MeanPooled, unwrap

    out = run.model
    out.mkdir(parents=True, exist_ok=True)
    pooling = MEAN if isinstance(model, MeanPooled) else None
    model = unwrap(model)  # a mean-pooled head is saved as its token-level model
    is_peft = hasattr(model, "peft_config")
    adapter_only = is_peft and cfg.method.export_adapter_only
    if is_peft and not adapter_only:
        model = model.merge_and_unload()
    options = TaskOptions.from_run(cfg, report)
    impl = spec.impl()
    if hasattr(impl, "before_save"):  # e.g. regression folds its target scale into the head
        options = TaskOptions.from_dict(impl.before_save(model, options.to_dict()))
    shutil.rmtree(out / "onnx", ignore_errors=True)  # an export of earlier weights
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    base = results.get("base_model") or results.get("model")
    _portable_configs(out, base)
    meta = {
        "task": cfg.task,
        "pipeline_task": spec.pipeline_task,
        # a hub id (the embedded default is sentence-transformers/all-MiniLM-L6-v2) or a
        # folder's own name: never a path on the server that trained it
        "base_model": base,
        "method": cfg.method.method,
        "format": "peft-adapter" if adapter_only else "transformers",
        # "mean": a token-level checkpoint whose text logits are the mean of its tokens'
        # logits over the attention mask (heads.MeanPooled; the card shows the line)
        **({"body_pooling": pooling} if pooling else {}),
        "labels": results.get("labels"),
        "columns": report.columns,
        "max_length": cfg.data.max_length,
        "options": options.to_dict(),
        "metrics": {"test": results.get("test_headline") or _scalars(results.get("test")),
                    "validation": results.get("validation")},
        # probabilities = softmax(logits / temperature), fitted on the validation split
        "temperature": results.get("temperature", 1.0),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "run_id": run.id,
    }
    write_json(out / "finetuner.json", meta)
    (out / "README.md").write_text(model_card(cfg, spec, results, report, meta), "utf-8")
    return out


def _portable_configs(out: Path, base: str | None) -> None:
    """save_pretrained records where the weights came from (a path on this server, for the
    embedded model one inside site-packages); exports name the base portably instead."""
    for name, key in (("adapter_config.json", "base_model_name_or_path"),
                      ("config.json", "_name_or_path")):
        path = out / name
        if not path.exists():
            continue
        raw = json.loads(path.read_text("utf-8"))
        if key in raw or name == "adapter_config.json":
            raw[key] = base
            path.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", "utf-8")


def _scalars(metrics: dict | None) -> dict:
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and k != "n"}


def usage_snippet(meta: dict, path: str = "path/to/model") -> str:
    """How to load the exported model with plain transformers (and peft for adapters)."""
    from finetuner.tasks import get_task

    spec = get_task(meta.get("task") or DEFAULT_TASK)
    snippet = _usage(meta, path, spec)
    if meta.get("body_pooling") == "mean":
        snippet = pooled_usage(snippet, spec.name, path)
    return snippet


def _usage(meta: dict, path: str, spec) -> str:
    labels = meta.get("labels") or []
    if meta.get("format") == "peft-adapter":
        id2label = {i: name for i, name in enumerate(labels)}
        label2id = {v: k for k, v in id2label.items()}
        # tasks without labels (QA) keep the head the base model config gives them
        head = (f", num_labels={len(labels)}, id2label={id2label}, label2id={label2id}"
                if labels else "")
        if spec.problem_type:
            head += f', problem_type="{spec.problem_type}"'
        return ADAPTER_USAGE.format(auto=spec.auto_model, base=meta.get("base_model"),
                                    head=head, path=path)
    return spec.impl().usage_snippet(meta, path)


def model_card(cfg, spec, results: dict, report, meta: dict) -> str:
    """README.md of the exported model: what it is, the data, how it was trained, the held-out
    test scores beside the baselines, the verdict and how to use it."""
    lines = _card_header(cfg, spec, results, meta) + _card_data(report)
    options = TaskOptions.from_dict(meta.get("options"))
    lines += _card_training(cfg, results) + _card_windows(options, meta)
    lines += _card_scores(results) + _card_diagnosis(results.get("diagnosis") or {})
    if meta.get("body_pooling") == "mean":  # the recipes read the text's pooled logits
        lines = [line.replace("model(**enc).logits", "text_logits(model, enc)")
                 .replace("model(**inputs).logits", "text_logits(model, inputs)")
                 for line in lines]
        lines += ["", "## How the model reads a text", "",
                  "The body is a sentence-transformers encoder, trained so that the mean of its "
                  "token vectors is the text's vector. This model keeps that reading: it is "
                  "saved as a token-classification model, and a text's logits are the mean of "
                  "its tokens' logits over the attention mask (`text_logits` below; the same "
                  "as a linear layer on the mean-pooled vector)."]
    lines += ["", "## Usage", "", "```python", usage_snippet(meta), "```", ""]
    return "\n".join(lines)


def _card_header(cfg, spec, results: dict, meta: dict) -> list[str]:
    return ["---", "library_name: transformers", f"pipeline_tag: {spec.pipeline_task}",
            "tags: [finetuner, " + cfg.method.method + "]", "---", "",
            f"# {spec.title} model fine-tuned with finetuner", "",
            f"- Base model: {meta.get('base_model')}",
            f"- Method: {cfg.method.method} ({results['params']['trainable']:,} of "
            f"{results['params']['total']:,} parameters trained)",
            f"- Labels: {', '.join(map(str, results.get('labels') or [])) or 'n/a'}",
            f"- Status: {results['status']}"]


def _card_data(report) -> list[str]:
    lines = ["", "## Data", "", "| split | rows |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in report.rows.items()]
    if report.label_counts.get("train"):
        counts = ", ".join(f"{k}: {v}" for k, v in report.label_counts["train"].items())
        lines += ["", f"Training labels: {counts}"]
    warnings = report.warnings()
    if warnings:
        lines += ["", "Data warnings:"] + [f"- {w}" for w in warnings]
    return lines


def _card_training(cfg, results: dict) -> list[str]:
    t, timing = cfg.training, results["timing"]
    lines = ["", "## Training", "",
             f"- Epochs: {t.epochs} (steps run: {timing.get('steps')}), batch size "
             f"{timing.get('batch_size')}, learning rate {timing.get('learning_rate', 0):g}, "
             f"weight decay {t.weight_decay}, warmup {t.warmup_ratio:.0%}, max length "
             f"{cfg.data.max_length}, seed {t.seed}, precision {results.get('precision')}"]
    if cfg.method.method == "lora":
        m = cfg.method
        lines.append(f"- LoRA: r={m.lora_r}, alpha={m.lora_alpha}, dropout={m.lora_dropout}, "
                     f"targets={m.lora_target_modules or 'chosen by peft'}")
    start = results.get("head_start") or {}
    if start:
        how = ("the mean of the token vectors, as the sentence-transformers body was trained"
               if start.get("pooling") == "mean" else "the head's own input")
        done = ("that fit is the model (head-only)" if start.get("final")
                else "fine-tuning started from it")
        lines.append(f"- Head start: the new head was first fitted on the frozen encoder's "
                     f"features ({how}) to convergence, its regularisation chosen on the "
                     f"validation split (validation {start.get('metric')} "
                     f"{start.get('validation')}); {done}.")
    lines.append(f"- Training time: {timing['train_seconds']} s "
                 f"({timing['train_samples_per_second']} samples/s)")
    return lines


WINDOWS_USAGE = """import torch

# tokenizer and model loaded as in Usage below; text: one whole document
enc = tokenizer(text, truncation=True, max_length={max_length}, stride={stride},
                return_overflowing_tokens=True, padding=True, return_tensors="pt")
enc.pop("overflow_to_sample_mapping")
with torch.no_grad():
    logits = model(**enc).logits[:{max_windows}].{pool}(dim=0){values}  # the document's logits"""


def _card_windows(options: TaskOptions, meta: dict) -> list[str]:
    """Long documents: how the model read them, and how to read them the same way."""
    if not options.windows:
        return []
    max_length = int(meta.get("max_length") or 128)
    stride = min(int(options.window_overlap), max(0, max_length // 2 - 2))
    pool = "max" if options.pooling == "max" else "mean"
    n = int(options.max_windows)
    return ["", "## Long documents", "",
            f"Texts longer than {max_length} tokens were read in overlapping windows of "
            f"{max_length} tokens ({stride} tokens of overlap, at most {n} windows per "
            f"document), and the windows' logits were pooled by their {pool} into one "
            "prediction per document, in training, in the scores above and in finetuner's "
            "own prediction. A plain pipeline reads only the first window; to read whole "
            "documents as this model was scored:", "", "```python",
            WINDOWS_USAGE.format(max_length=max_length, stride=stride, max_windows=n, pool=pool,
                                 values=".values" if pool == "max" else ""), "```"]


def _card_scores(results: dict) -> list[str]:
    test = _scalars(results.get("test"))
    lines = ["", "## Held-out test metrics", ""]
    if test:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in test.items() if k != "loss"]
    else:
        lines.append("Not computed (the run was stopped early).")
    calib = results.get("calibration") or {}
    if calib:
        lines += ["", "## Calibrated probabilities", "",
                  f"Divide the logits by the temperature **{calib['temperature']:g}** (fitted on "
                  "the validation split) before the softmax: "
                  "`probs = torch.softmax(model(**inputs).logits / "
                  f"{calib['temperature']:g}, dim=-1)`. Predictions (the argmax) do not change. "
                  f"Expected calibration error on the {calib['split']} split "
                  f"({calib['n']:,} {calib['units']}): {calib['ece_before']:.3f} before, "
                  f"{calib['ece_after']:.3f} after. The temperature is also in "
                  "finetuner.json (`temperature`)."]
    metric = results.get("metric") or "macro_f1"
    base = results.get("baselines") or {}
    if base and test.get(metric) is not None:
        lines += ["", "## Beside simple baselines (same test split)", "",
                  f"| model | test {metric} |", "|---|---|",
                  f"| this model | {test.get(metric)} |"]
        lines += [f"| {b['title']} | {(b.get('test') or {}).get(metric)} |"
                  for b in base.values()]
    return lines


def _card_diagnosis(diag: dict) -> list[str]:
    if not diag:
        return []
    lines = ["", "## Diagnosis", ""] + _card_warning(diag) + [f"**{diag['title']}**", ""]
    lines += [f"- {e}" for e in diag.get("evidence", [])]
    if diag.get("remedies"):
        lines += ["", "What to try:"] + [f"- {r}" for r in diag["remedies"]]
    return lines


def _card_warning(diag: dict) -> list[str]:
    """A prominent warning first in the diagnosis when a simple baseline beats the model:
    whoever picks the model up from its card must not miss it."""
    from finetuner.evaluation.diagnostics import warning

    text = warning(diag, see="the diagnosis below")
    return [f"> **Warning:** {text}", ""] if text else []


def make_zip(run: RunPaths, dest: str | Path | None = None) -> Path:
    """Zip RUN_DIR/model into `dest` (default RUN_DIR/model.zip)."""
    if not (run.model / "config.json").exists() and not (
            run.model / "adapter_config.json").exists():

        raise FinetunerError(f"Run {run.id} has no saved model to export.",
                             "Finish (or stop after the first evaluation) a training first.",
                             code="no_model")
    dest = Path(dest) if dest else run.root / "model.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for path in sorted(run.model.rglob("*")):
            rel = path.relative_to(run.model)
            if path.is_file() and not any(part.endswith(".part") for part in rel.parts):
                # weights hardly compress: store them (instant); deflate the small text files
                method = zipfile.ZIP_STORED if path.suffix in (".safetensors", ".onnx",
                                                               ".data") else \
                    zipfile.ZIP_DEFLATED
                zf.write(path, Path("model") / path.relative_to(run.model), compress_type=method)
    tmp.replace(dest)
    return dest


def read_meta(model_dir: str | Path) -> dict:
    try:
        return json.loads((Path(model_dir) / "finetuner.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def push_to_hub(run: RunPaths, repo_id: str, token: str, private: bool = True) -> str:
    """Upload RUN_DIR/model (weights, tokenizer, model card) to the hub; returns its URL.

    The token is used for this call only: it is never written to the run, the events or logs.
    """


    repo_id = (repo_id or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo_id):
        raise FinetunerError(f"'{repo_id}' is not a hub repository id.",
                             "Write it as your-name/model-name.", code="bad_repo")
    if not (token or "").strip():
        raise FinetunerError("No hub token given.",
                             "Create a write token in your Hugging Face settings and paste it.",
                             code="no_token")
    if not (run.model / "finetuner.json").exists():
        raise FinetunerError("This run has no saved model to publish.", code="no_model")
    if not hub_reachable():
        raise FinetunerError("The Hugging Face hub is not reachable from this server.",
                             "Download the model zip and upload it from a connected machine.",
                             code="hub_unreachable")
    from huggingface_hub import HfApi

    api = HfApi(token=token.strip())
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(run.model), repo_id=repo_id,
                          commit_message="Upload model fine-tuned with finetuner",
                          ignore_patterns=["onnx.part/*"])  # an export still being made
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types
        text = str(exc).replace(token.strip(), "***")
        raise FinetunerError(f"The hub refused the upload: {text[:300]}",
                             "Check that the token has write access to that repository.",
                             code="hub_error") from None
    return f"{os.environ.get('HF_ENDPOINT', 'https://huggingface.co')}/{repo_id}"
