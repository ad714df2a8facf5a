"""One training run, in order: data → model → train with evaluations → best checkpoint → test
→ diagnosis → export. Called by the worker process; writes events as it goes.

`transformers.Trainer` does the optimisation (fused AdamW, warmup + linear decay, bf16 autocast
where the CPU/GPU runs it fast, length-grouped batches). Callbacks (callbacks.py) map its
steps to events, run our own evaluations (sorted by length, no padding waste), keep the best
weights in memory, checkpoint, and stop early or on request. The test split is touched once,
after training, by the best checkpoint chosen on validation.

`train` is the recipe: prepare → plan → build the trainer → train → finish.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from transformers import PrinterCallback, Trainer, TrainingArguments

from . import batching, calibration, diagnostics, export, modeling
from .batching import StopRequested, pick_precision
from .callbacks import Evaluator, RunCallback, evaluation_interval, resume_point
from .config import RunConfig
from .results import Results
from .runs import EventWriter, RunPaths, write_json
from .tasks import get_task


@dataclass
class Context:
    run: RunPaths
    config: RunConfig
    events: EventWriter
    should_stop: Callable[[], bool]


class ListDataset(Dataset):
    def __init__(self, features: list[dict]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


def task_options(cfg: RunConfig, report=None) -> dict:
    """Settings some tasks need beyond max_length (QA windows and answer length), plus any the
    task learned from its data (`report.extra["options"]`, e.g. QA's allow_no_answer)."""
    learned = (report.extra.get("options") or {}) if report is not None else {}
    return {"doc_stride": cfg.data.doc_stride, "max_answer_length": cfg.data.max_answer_length,
            **learned}


@dataclass
class Prepared:
    """Everything the training loop needs, built once per run."""

    spec: object
    impl: object
    source: object
    tokenizer: object
    data: object
    model: object
    params: dict
    splits: dict
    feats: dict
    options: dict
    collate: Callable


def prepare(ctx: Context) -> Prepared:
    """Data → model → features, with events at each step."""
    cfg, events = ctx.config, ctx.events
    spec = get_task(cfg.task)
    impl = spec.impl()
    events.emit("status", state="preparing", message="Reading and checking the data")
    source = modeling.source_of(cfg.model)
    tokenizer = modeling.load_tokenizer(source, split_words=spec.split_words)
    data = impl.prepare(cfg, count_tokens=modeling.token_counter(source))
    write_json(ctx.run.data_report, data.report.to_dict())
    events.emit("data", rows=data.report.rows, labels=data.labels,
                warnings=data.report.warnings())
    events.emit("status", state="loading_model", message=f"Loading {source.display}")
    torch.manual_seed(cfg.training.seed)
    model, params = modeling.build_model(spec, source, data.labels, cfg.method)
    events.emit("model", source=source.display, method=cfg.method.method, params=params)
    rng = random.Random(cfg.training.seed)
    sample = rng.sample(data.train, min(cfg.training.train_eval_samples, len(data.train)))
    splits = {"train": data.train, "validation": data.validation, "test": data.test,
              "train_sample": sample}
    label2id = {name: i for i, name in enumerate(data.labels)}
    options = task_options(cfg, data.report)
    feats = {name: impl.featurize(ex, tokenizer, cfg.data.max_length, label2id, **options)
             for name, ex in splits.items()}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    collate = batching.collator(tokenizer.pad_token_id or 0, device, cap=cfg.data.max_length)
    return Prepared(spec, impl, source, tokenizer, data, model, params, splits, feats, options,
                    collate)


class _Trainer(Trainer):
    """The Trainer with an epoch-seeded training order (batching.EpochSampler): the same seed
    gives the same batches, and a resumed run continues with exactly the batches it would
    have seen."""

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return batching.EpochSampler(
            [len(f["input_ids"]) for f in dataset.features],
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            grouped=self.args.train_sampling_strategy == "group_by_length")


def training_args(ctx: Context, total_steps: int, amp, bs: int, lr: float) -> TrainingArguments:
    cfg = ctx.config
    gpu = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(ctx.run.root / "checkpoints"),
        per_device_train_batch_size=bs,
        num_train_epochs=cfg.training.epochs,
        max_steps=total_steps,
        learning_rate=lr,
        weight_decay=cfg.training.weight_decay,
        warmup_steps=cfg.training.warmup_ratio,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",
        bf16=amp is torch.bfloat16,
        fp16=amp is torch.float16,  # with the Trainer's gradient scaler
        use_cpu=not gpu,
        eval_strategy="no",
        save_strategy="no",  # RunCallback.maybe_checkpoint asks for checkpoints
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=max(1, min(50, total_steps // 100)),
        report_to="none",
        disable_tqdm=True,
        seed=cfg.training.seed,
        data_seed=cfg.training.seed,
        train_sampling_strategy="group_by_length" if cfg.training.group_by_length else "random",
        remove_unused_columns=False,
        # on a GPU, batches are built by two worker processes while the GPU computes
        dataloader_num_workers=2 if gpu else 0,
        dataloader_pin_memory=gpu,
        dataloader_persistent_workers=gpu,
    )


def auto_batch_size(model, features: list[dict], collate, amp, device) -> int:
    """32 on a CPU. On a GPU the largest of 256/128/64/32/16/8 whose longest batch trains
    within 85% of the memory (optimizer state included), with at least 20 steps an epoch."""
    if device.type != "cuda":
        return 32
    limit = max(8, 2 ** int(math.log2(max(8, len(features) // 20))))
    longest = sorted(features, key=lambda f: len(f["input_ids"]))[-256:]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = torch.cuda.get_device_properties(device).total_memory
    model.to(device).train()
    for bs in (256, 128, 64, 32, 16, 8):
        if bs > limit:
            continue
        try:
            torch.cuda.reset_peak_memory_stats(device)
            batch = {k: v.to(device) for k, v in collate(longest[-bs:]).items()}
            with batching.autocast(amp, device):
                loss = model(**batch).loss
            loss.backward()
            peak = torch.cuda.max_memory_allocated(device)
        except torch.OutOfMemoryError:
            peak = None
        finally:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
        if peak is not None and peak + 8 * trainable < 0.85 * total:
            return bs
    return 8


@dataclass
class Plan:
    """How this run trains, worked out once from the config, the data and the device."""

    device: torch.device
    amp: object
    batch_size: int
    learning_rate: float
    total_steps: int
    eval_every: int
    warmup_steps: int
    eval_batch_size: int


def plan_run(ctx: Context, p: Prepared) -> Plan:
    """Device, precision, batch size (measured on a GPU when not set), learning rate, steps."""
    cfg, t = ctx.config, ctx.config.training
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = pick_precision(t.precision, device)
    bs = t.batch_size or auto_batch_size(p.model, p.feats["train"], p.collate, amp, device)
    lr = cfg.learning_rate(bs, p.params.get("total"))
    eval_bs = max(t.eval_batch_size, 4 * bs) if device.type == "cuda" else t.eval_batch_size
    steps_per_epoch = math.ceil(len(p.feats["train"]) / bs)
    total_steps = t.max_steps or max(1, math.ceil(steps_per_epoch * t.epochs))
    eval_every = evaluation_interval(steps_per_epoch, total_steps, t.evals_per_epoch)
    return Plan(device, amp, bs, lr, total_steps, eval_every,
                math.ceil(t.warmup_ratio * total_steps), eval_bs)


def build_trainer(ctx: Context, p: Prepared, plan: Plan) -> tuple[Trainer, Evaluator, RunCallback]:
    t = ctx.config.training
    evaluator = Evaluator(p.spec, p.impl, p.data.labels, p.splits, p.feats, plan.amp, p.collate,
                          options=p.options, batch_size=plan.eval_batch_size,
                          interrupt=ctx.should_stop)
    callback = RunCallback(
        ctx.events, ctx.should_stop, evaluator, metric=p.spec.primary_metric,
        batch_size=plan.batch_size, eval_every=plan.eval_every, warmup_steps=plan.warmup_steps,
        patience=t.early_stopping_patience, checkpoints=ctx.run.root / "checkpoints",
        save_checkpoints=t.checkpoints)
    args = training_args(ctx, plan.total_steps, plan.amp, plan.batch_size, plan.learning_rate)
    trainer = _Trainer(model=p.model, args=args, train_dataset=ListDataset(p.feats["train"]),
                       data_collator=p.collate, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # our events are the log
    return trainer, evaluator, callback


def run_training(ctx: Context, p: Prepared, plan: Plan, trainer: Trainer,
                 callback: RunCallback) -> float:
    """Train (resumed from the last checkpoint when asked), evaluate once if nothing did, and
    put the best weights back. Returns the seconds it took."""
    resume_from = resume_point(ctx.run, callback)
    ctx.events.emit(
        "status", state="training",
        message=f"Resuming from step {resume_from.name.split('-')[-1]}" if resume_from
        else "Training", total_steps=plan.total_steps, eval_every=plan.eval_every,
        precision=batching.precision_name(plan.amp), learning_rate=plan.learning_rate,
        batch_size=plan.batch_size, device=str(plan.device))
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    train_seconds = time.perf_counter() - t0
    if not callback.history and not callback.stop_requested:
        callback.evaluate(p.model, trainer.state)
    callback.restore_best(p.model)
    return train_seconds


def _timing(ctx: Context, p: Prepared, plan: Plan, trainer: Trainer, callback: RunCallback,
            train_seconds: float) -> dict:
    bs, done = plan.batch_size, trainer.state.global_step - callback.first_step
    pure = max(1e-9, train_seconds - callback.eval_seconds)
    return {"train_seconds": round(train_seconds, 2),
            "eval_seconds": round(callback.eval_seconds, 2),
            "train_samples_per_second": round(min(done * bs, len(p.feats["train"]) * (
                ctx.config.training.epochs)) / pure, 1),
            "steps": trainer.state.global_step, "total_steps": plan.total_steps,
            "batch_size": bs, "learning_rate": plan.learning_rate,
            "device": _device_name(plan.device)}


def train(ctx: Context) -> dict:
    """prepare → plan → build the trainer → train → finish."""
    random.seed(ctx.config.training.seed)
    torch.manual_seed(ctx.config.training.seed)
    p = prepare(ctx)
    plan = plan_run(ctx, p)
    trainer, evaluator, callback = build_trainer(ctx, p, plan)
    train_seconds = run_training(ctx, p, plan, trainer, callback)
    stopped = callback.stop_requested or ctx.should_stop()
    timing = _timing(ctx, p, plan, trainer, callback, train_seconds)
    results = finish(ctx, p, evaluator, callback, timing, stopped, plan.amp)
    shutil.rmtree(ctx.run.root / "checkpoints", ignore_errors=True)  # the model is saved
    return results


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"


def _baselines(task: str, prepared, events) -> dict:
    """Majority / TF-IDF (classification) or memorised entities (NER) on the same splits; a
    baseline that fails never fails the run."""
    from . import baselines

    events.emit("status", state="baselines", message="Scoring simple baselines")
    try:
        return baselines.for_task(task, prepared)
    except Exception as exc:  # noqa: BLE001
        print(f"baselines skipped: {type(exc).__name__}: {exc}", flush=True)
        return {}


def _label_issues(ctx, model, prepared, feats, collate, evaluator, amp) -> dict | None:
    """Suspected label errors among the training rows; a check that fails never fails the
    run."""
    from . import labelnoise

    ctx.events.emit("status", state="label_check", message="Looking for suspected label errors")
    try:
        return labelnoise.check(model, prepared.train, feats["train"], prepared.labels, collate,
                                evaluator.batch_size, amp, ctx.run.root,
                                seed=ctx.config.training.seed, interrupt=ctx.should_stop)
    except StopRequested:
        return None
    except Exception as exc:  # noqa: BLE001
        print(f"label check skipped: {type(exc).__name__}: {exc}", flush=True)
        return None


def _validation_detail(evaluator, model) -> tuple[dict, list | None]:
    """Full validation metrics (per label, predicted shares) and outputs of the restored best
    weights."""
    if not evaluator.feats["validation"]:
        return {}, None
    try:
        return evaluator.score(model, "validation")
    except Exception:  # noqa: BLE001 - a stop during this pass: judge from the curves alone
        return {}, None


def finish(ctx: Context, p: Prepared, evaluator: Evaluator, callback: RunCallback,
           timing: dict, stopped: bool, amp) -> Results:
    """After training, in order: score (validation detail, the test split once, calibration,
    test predictions), judge (baselines, label errors, the verdict), save (model, zip)."""
    cfg = ctx.config
    scored = _score(ctx, p, evaluator, callback, stopped)
    judged = _judge(ctx, p, evaluator, callback, stopped, amp, scored["val_detail"])
    best = [h for h in callback.history if h["step"] == callback.best_step]
    results = Results(
        status="stopped" if stopped else "completed", task=cfg.task,
        method=cfg.method.method, model=p.source.display, base_model=p.source.portable,
        labels=p.data.labels, metric=p.spec.primary_metric, test=scored["test"],
        validation=(best or callback.history or [{}])[-1].get("validation"),
        diagnosis=judged["diagnosis"], params=p.params, timing=timing,
        best_step=callback.best_step, early_stopped=callback.stopped_early,
        precision=batching.precision_name(amp), data=p.data.report.rows,
        baselines=judged["baselines"], calibration=scored["calibration"],
        temperature=scored["temperature"], label_issues=judged["label_issues"],
        thresholds=evaluator.options.get("thresholds"))  # multi-label: tuned on validation
    if scored["test"] is None:
        results["note"] = "Stopped before the end: test metrics were skipped to stop quickly."
    if callback.best_state is not None or not stopped:
        ctx.events.emit("status", state="saving", message="Saving the model")
        export.save_model(ctx.run, p.model, p.tokenizer, cfg, p.spec, results, p.data.report)
        results["model_dir"] = str(ctx.run.model)
        results["model_zip"] = str(export.make_zip(ctx.run))
    else:
        results["note"] = "Stopped before the first evaluation: no model was saved."
    return results


def _score(ctx: Context, p: Prepared, evaluator: Evaluator, callback: RunCallback,
           stopped: bool) -> dict:
    """The kept checkpoint on validation (detail for the verdict, outputs for the
    temperature), the test split scored once, calibration, and the test predictions file."""
    feats = p.feats
    # a stop must end within seconds: the extra passes run only when they are quick
    quick = not stopped or _quick_enough(callback, len(feats["test"]), len(feats["validation"]))
    val_detail, val_outputs = _validation_detail(evaluator, p.model) if quick else ({}, None)
    test_metrics = test_outputs = calib = None
    temperature = 1.0
    if val_outputs is not None and hasattr(p.impl, "tune"):
        # settings learned on validation (multi-label thresholds) before the test is scored
        tuned = p.impl.tune(val_outputs, feats["validation"], p.data.validation, p.data.labels,
                            **evaluator.options)
        evaluator.options.update(tuned)
        p.data.report.extra.setdefault("options", {}).update(tuned)
    if quick:
        ctx.events.emit("status", state="testing", message="Scoring the held-out test split")
        test_metrics, test_outputs = _score_test(evaluator, p.model)
    pairs, units = calibration.pairs_for(p.spec)
    if val_outputs is not None and pairs is not None:
        calib = calibration.calibrate(
            pairs(val_outputs, feats["validation"]),
            pairs(test_outputs, feats["test"]) if test_outputs is not None else None, units)
        temperature = (calib or {}).get("temperature", 1.0)
    if test_outputs is not None:
        rows = p.impl.prediction_rows(calibration.scale_outputs(test_outputs, temperature),
                                      feats["test"], p.data.test, p.data.labels,
                                      **evaluator.options)
        _write_jsonl(ctx.run.predictions, rows)
    return {"val_detail": val_detail, "test": test_metrics, "calibration": calib,
            "temperature": temperature}


def _judge(ctx: Context, p: Prepared, evaluator: Evaluator, callback: RunCallback,
           stopped: bool, amp, val_detail: dict) -> dict:
    """Baselines, suspected label errors and the verdict. The verdict reads the validation
    split at the kept checkpoint, never the test split; its inputs are kept in
    diagnosis_input.json (recorded real runs become test fixtures)."""
    cfg, spec, prepared = ctx.config, p.spec, p.data
    counts = prepared.report.label_counts
    data_facts = {"n_train": len(prepared.train), "n_validation": len(prepared.validation),
                  "label_counts": counts.get("train") or {},
                  # chance is defined for labels to guess; entities and spans score ~0
                  "validation_counts": (counts.get("validation") or {})
                  if spec.guessable else {}}
    base = _baselines(cfg.task, prepared, ctx.events) if not stopped else {}
    data_facts["baselines"] = {b["title"]: (b.get("validation") or {}).get(spec.primary_metric)
                               for b in base.values()}
    label_issues = None
    # windows of long texts are not rows: the check reads one feature per training row
    if spec.label_errors and not stopped and len(p.feats["train"]) == len(prepared.train):
        label_issues = _label_issues(ctx, p.model, prepared, p.feats, p.collate, evaluator, amp)
        data_facts["label_issues"] = {k: label_issues[k] for k in ("checked", "flagged", "share")
                                      } if label_issues else None
    inputs = {"events": callback.history, "validation": val_detail, "data": data_facts,
              "metric_title": spec.metric_title, "method": cfg.method.method, "task": cfg.task,
              "best_step": callback.best_step, "metric": spec.primary_metric}
    diagnosis = diagnostics.from_inputs(inputs)
    (ctx.run.root / "diagnosis_input.json").write_text(json.dumps(inputs, default=float))
    return {"diagnosis": diagnosis.to_dict(), "baselines": base, "label_issues": label_issues}


def _quick_enough(callback: RunCallback, n_test: int, n_val: int) -> bool:
    """After a stop, score the test split only if it takes well under a second or two."""
    if not callback.evals or not n_val:
        return False
    per_row = callback.eval_seconds / callback.evals / max(1, n_val)
    return per_row * n_test < 1.5


def _score_test(evaluator: Evaluator, model) -> tuple[dict | None, list | None]:
    try:
        metrics, outputs = evaluator.score(model, "test")
    except StopRequested:
        return None, None
    return metrics, outputs


def _write_jsonl(path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
