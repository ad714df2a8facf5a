"""One training run, in order: data → model → train with evaluations → best checkpoint → test
→ diagnosis → export. Called by the worker process; writes events as it goes.

`transformers.Trainer` does the optimisation (fused AdamW, warmup + linear decay, bf16 autocast
where the CPU/GPU runs it fast, length-grouped batches). Callbacks (callbacks.py) map its
steps to events, run our own evaluations (sorted by length, no padding waste), keep the best
weights in memory, checkpoint, and stop early or on request. The test split is touched once,
after training, by the best checkpoint chosen on validation.

`train` is the recipe: prepare → plan → build the trainer → train → finish (finishing.py:
score the test split once, judge, save). Experiment trackers (trackers.py), when the config
names any, are opened first and closed by `finish` with the final metrics and the verdict.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from transformers import PrinterCallback, Trainer, TrainingArguments

from finetuner.config import RunConfig
from finetuner.methods import CPU_BATCH_SIZE
from finetuner.models import batching, heads, modeling
from finetuner.models.batching import pick_precision
from finetuner.models.estimate import schedule_steps, train_sample_size
from finetuner.runs import write_json
from finetuner.tasks import get_task
from finetuner.tasks.options import TaskOptions
from finetuner.tasks.pipeline import split_digest, subsample
from finetuner.training import distributed, trackers
from finetuner.training.callbacks import Evaluator, RunCallback, evaluation_interval, resume_point
from finetuner.training.finishing import finish
from finetuner.training.runstate import Context, Prepared  # noqa: F401 - the worker names training.Context


class ListDataset(Dataset):
    def __init__(self, features: list[dict]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


def prepare(ctx: Context) -> Prepared:
    """Data → model → features, with events at each step."""
    cfg, events = ctx.config, ctx.events
    spec = get_task(cfg.task)
    impl = spec.impl()
    events.emit("status", state="preparing", message="Reading and checking the data")
    source = modeling.source_of(cfg.model)
    tokenizer = modeling.load_tokenizer(source, split_words=spec.split_words)
    data = impl.prepare(cfg, count_tokens=modeling.token_counter(source))
    data.report.extra["split_digest"] = split_digest(data)  # runs on identical splits match
    if cfg.data.train_fraction < 1.0:  # a learning curve's point: after the digest, so the
        # points share their validation split (and their digest) with the full run
        full = len(data.train)
        data.train = subsample(data.train, cfg.data.train_fraction, cfg.training.seed)
        data.report.rows["train"] = len(data.train)
        data.report.extra.update(train_fraction=cfg.data.train_fraction, train_full=full)
        if "train" in data.report.label_counts and all(
                isinstance(e.get("label"), (str, list)) for e in data.train):

            counts = Counter(n for e in data.train for n in (
                [e["label"]] if isinstance(e["label"], str) else e["label"]))
            data.report.label_counts["train"] = {n: counts.get(n, 0)
                                                 for n in data.report.label_counts["train"]}
    if distributed.is_main():  # one writer of the run directory
        write_json(ctx.run.data_report, data.report.to_dict())
    events.emit("data", rows=data.report.rows, labels=data.labels,
                warnings=data.report.warnings())
    rng = random.Random(cfg.training.seed)
    sample = rng.sample(data.train, train_sample_size(
        len(data.train), len(data.validation), cfg.training.train_eval_samples))
    splits = {"train": data.train, "validation": data.validation, "test": data.test,
              "train_sample": sample}
    label2id = {name: i for i, name in enumerate(data.labels)}
    options = TaskOptions.from_run(cfg, data.report)
    feats = {name: impl.featurize(ex, tokenizer, cfg.data.max_length, label2id,
                                  **options.hooks())
             for name, ex in splits.items()}
    device = distributed.device()  # cuda:LOCAL_RANK under torchrun on GPUs
    collate = batching.collator(tokenizer.pad_token_id or 0, device, cap=cfg.data.max_length)
    events.emit("status", state="loading_model", message=f"Loading {source.display}")
    torch.manual_seed(cfg.training.seed)
    resuming = _resuming(ctx)
    pooling = _pooling_of_run(ctx, source, resuming)
    probe: dict = _earlier_head_start(ctx) if resuming else {}

    def head_start(model) -> None:  # linear probe first, then fine-tune (heads.py)
        if not spec.sentence_level or resuming:  # a resumed run loads its checkpoint
            return
        events.emit("status", state="loading_model",
                    message="Fitting the new head on the frozen encoder")
        probe.update(heads.fit_head(model.to(device), spec, impl, feats, splits, data.labels,
                                    options, collate, pick_precision(cfg.training.precision,
                                                                     device),
                                    seed=cfg.training.seed,
                                    # where the probe is the model (head-only on a
                                    # mean-pooled body)
                                    cross_check=cfg.method.method == "head"
                                    and isinstance(model, heads.MeanPooled)) or {})

    model, params = modeling.build_model(spec, source, data.labels, cfg.method,
                                         dropout=cfg.training.dropout, head_start=head_start,
                                         pooling=pooling)
    if probe and not resuming:
        probe["pooling"] = "mean" if isinstance(model, heads.MeanPooled) else "first"
        # a linear head on a mean-pooled body, fitted to convergence by the probe, leaves
        # head-only training nothing to do (not so where the head has more new layers, as
        # ModernBERT's dense + norm before its classifier)
        probe["final"] = (cfg.method.method == "head" and isinstance(model, heads.MeanPooled)
                          and params["trainable"] == probe.get("head_params"))
        events.emit("head_start", **probe)
    events.emit("model", source=source.display, method=cfg.method.method, params=params)
    return Prepared(spec, impl, source, tokenizer, data, model, params, splits, feats, options,
                    collate, probe)


def _resuming(ctx: Context) -> bool:
    """True when train() will carry on from a checkpoint (callbacks.resume_point)."""
    if not (ctx.run.root / "RESUME").exists():
        return False
    from finetuner.runs import latest_checkpoint

    return latest_checkpoint(ctx.run) is not None


def _pooling_of_run(ctx: Context, source, resuming: bool) -> str:
    """How this run reads its body, decided once at its first start and kept in the run
    folder, so a resumed run builds the model its checkpoints were written from (a run
    started before the choice was recorded was built with the architecture's own head)."""
    path = ctx.run.root / "pooling.json"
    if path.exists():
        return json.loads(path.read_text("utf-8")).get("pooling") or heads.FIRST
    pooling = heads.FIRST if resuming else heads.body_pooling(source.path)
    if distributed.is_main():
        write_json(path, {"pooling": pooling})
    return pooling


def _earlier_head_start(ctx: Context) -> dict:
    """The probe a resumed run did at its first start (it is not fitted again: the
    checkpoint's weights replace it), for results.json and the card."""
    from finetuner.runs import read_events

    events = [e for e in read_events(ctx.run.events)[0] if e.get("type") == "head_start"]
    return {k: v for k, v in events[-1].items() if k not in ("type", "time")} if events else {}


class _Trainer(Trainer):
    """The Trainer with an epoch-seeded training order (batching.EpochSampler): the same seed
    gives the same batches, and a resumed run continues with exactly the batches it would
    have seen. Multi-label training weighs each label's positives (`pos_weight`)."""

    pos_weight: torch.Tensor | None = None
    pair_weight: float = 0.0
    pair_linear: torch.nn.Module | None = None  # the head's last layer: its input is paired

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.pos_weight is None and not self.pair_weight:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        captured: list = []
        hook = self.pair_linear.register_forward_pre_hook(
            lambda _m, args: captured.append(args[0])) if self.pair_weight else None
        try:  # a hook, not output_hidden_states: that would keep (and upcast) every layer
            outputs = model(**inputs)
        finally:
            if hook is not None:
                hook.remove()
        if self.pos_weight is not None:
            weight = self.pos_weight.to(outputs.logits.device)
            loss = heads.sequence_loss(outputs.logits.float(), labels,
                                       "multi_label_classification", pos_weight=weight)
        else:
            loss = heads.sequence_loss(outputs.logits.float(), labels, None)
        if self.pair_weight and captured:
            loss = loss + self.pair_weight * heads.pair_loss(
                captured[-1], inputs["attention_mask"], labels)
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return batching.EpochSampler(
            [len(f["input_ids"]) for f in dataset.features],
            # the global batch: with DDP each rank takes its share of the same batches a
            # single process would see (accelerate shards them consecutively)
            self.args.train_batch_size * self.args.gradient_accumulation_steps
            * max(1, self.args.world_size),
            self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            grouped=self.args.train_sampling_strategy == "group_by_length")


def training_args(ctx: Context, total_steps: int, amp, bs: int, lr: float) -> TrainingArguments:
    """`bs` is the global batch; with several processes each takes bs / processes."""
    cfg = ctx.config
    gpu = torch.cuda.is_available()
    world = distributed.world_size()
    # average_tokens_across_devices off: with it the Trainer multiplies the loss of every
    # model whose forward takes **kwargs by the number of processes, although a classifier's
    # loss is already a per-batch mean (the gradient and the logged loss came out doubled)
    ddp = {"ddp_backend": "nccl" if gpu else "gloo", "ddp_find_unused_parameters": False,
           "average_tokens_across_devices": False} if world > 1 else {}
    return TrainingArguments(
        output_dir=str(ctx.run.root / "checkpoints"),
        per_device_train_batch_size=max(1, bs // world),
        **ddp,
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
        # transformers' own tracker integrations, only when the config names trackers
        **(ctx.reporter.training_args() if ctx.reporter else {"report_to": "none"}),
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


PAIR_WEIGHT = 1.0
PAIR_LOSS_MAX_ROWS = 5000


def pair_loss_applies(cfg: RunConfig, p: Prepared) -> bool:
    """Small-data classification also learns SetFit's objective on every pair of each batch
    (heads.pair_loss), in the same forward pass: many more signals per example than the
    cross-entropy alone, which is what makes SetFit strong on a few hundred examples. Not
    for head-only training (the encoder does not move), nor for large data, where the
    cross-entropy has signal enough, nor across several processes."""
    # several processes would each pair only their share of the batch (another loss than
    # one process's); small data gains nothing from them anyway
    return (cfg.training.pair_loss and p.spec.pair_loss
            and cfg.method.method != "head"
            and len(p.data.train) <= PAIR_LOSS_MAX_ROWS and not distributed.distributed())


def positive_weights(features: list[dict], cap: float = 10.0) -> torch.Tensor:
    """Multi-label: each label's positives weigh sqrt(negatives / positives), from 1 to `cap`,
    so that rare labels are not learnt away as 'never' (the loss of always answering no is
    small when a label is on 2% of the texts)."""
    y = torch.tensor([f["labels"] for f in features], dtype=torch.float32)
    pos = y.sum(0).clamp(min=1.0)
    return torch.sqrt((len(y) - pos).clamp(min=1.0) / pos).clamp(1.0, cap)


def auto_batch_size(model, features: list[dict], collate, amp, device) -> int:
    """32 on a CPU. On a GPU the largest of 256/128/64/32/16/8 whose longest batch trains
    within 85% of the memory (optimizer state included), with at least 20 steps an epoch."""
    if device.type != "cuda":
        return CPU_BATCH_SIZE
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
    # early stopping waits this long: the floor of steps for small data, or the epochs asked
    # for when they come first (on large data the floor is a small part of the first epoch)
    stop_after: int = 0


def plan_run(ctx: Context, p: Prepared) -> Plan:
    """Device, precision, batch size (measured on a GPU when not set), learning rate, steps."""
    cfg, t = ctx.config, ctx.config.training
    device = distributed.device()
    amp = pick_precision(t.precision, device)
    bs = t.batch_size or auto_batch_size(p.model, p.feats["train"], p.collate, amp, device)
    lr = cfg.learning_rate(bs, p.params.get("total"))
    eval_bs = max(t.eval_batch_size, 4 * bs) if device.type == "cuda" else t.eval_batch_size
    steps_per_epoch = math.ceil(len(p.feats["train"]) / bs)
    total_steps = schedule_steps(steps_per_epoch, t.epochs, t.max_steps, t.min_steps)
    if (p.head_start or {}).get("final"):
        total_steps = 0  # the probe is the head-only model (heads.py)
    eval_every = max(1, evaluation_interval(steps_per_epoch, total_steps, t.evals_per_epoch))
    stop_after = min(t.min_steps, schedule_steps(steps_per_epoch, t.epochs, t.max_steps, 0))
    return Plan(device, amp, bs, lr, total_steps, eval_every,
                math.ceil(t.warmup_ratio * total_steps), eval_bs, stop_after)


def build_trainer(ctx: Context, p: Prepared, plan: Plan) -> tuple[Trainer, Evaluator, RunCallback]:
    t = ctx.config.training
    # several processes: each evaluates the whole validation split (same weights, same
    # numbers) and none cuts an evaluation short alone; the stop is agreed at the next step
    evaluator = Evaluator(p.spec, p.impl, p.data.labels, p.splits, p.feats, plan.amp, p.collate,
                          options=p.options, batch_size=plan.eval_batch_size,
                          interrupt=ctx.should_stop if not distributed.distributed()
                          else (lambda: False))
    callback = RunCallback(
        ctx.events, ctx.should_stop, evaluator, metric=p.spec.primary_metric,
        batch_size=plan.batch_size, eval_every=plan.eval_every, warmup_steps=plan.warmup_steps,
        patience=t.early_stopping_patience, checkpoints=ctx.run.root / "checkpoints",
        save_checkpoints=t.checkpoints, evaluate_start=bool(p.head_start),
        min_steps=plan.stop_after)
    args = training_args(ctx, plan.total_steps, plan.amp, plan.batch_size, plan.learning_rate)
    trainer = _Trainer(model=p.model, args=args, train_dataset=ListDataset(p.feats["train"]),
                       data_collator=p.collate, callbacks=[callback])
    trainer.remove_callback(PrinterCallback)  # our events are the log
    if p.spec.problem_type == "multi_label_classification":
        trainer.pos_weight = positive_weights(p.feats["train"])
    if pair_loss_applies(ctx.config, p):
        trainer.pair_linear = heads.head_linear(p.model, len(p.data.labels), p.spec.head_modules)
        trainer.pair_weight = PAIR_WEIGHT if trainer.pair_linear is not None else 0.0
    if ctx.reporter is not None:
        ctx.reporter.attach(trainer, {
            "batch_size": plan.batch_size, "learning_rate": plan.learning_rate,
            "total_steps": plan.total_steps, "eval_every": plan.eval_every,
            "precision": batching.precision_name(plan.amp), "device": str(plan.device),
            "model": p.source.display, "trainable_params": p.params.get("trainable"),
            "total_params": p.params.get("total")})
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
    if plan.total_steps:
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
    # the head fitted before the first step is part of training (all of it for a head-only
    # run on a mean-pooled body); samples/s stay the training loop's own
    probe = float((p.head_start or {}).get("seconds") or 0.0)
    return {"train_seconds": round(train_seconds + probe, 2), "probe_seconds": round(probe, 2),
            "eval_seconds": round(callback.eval_seconds, 2),
            # a step takes len/steps_per_epoch examples on average (the last batch is short)
            "train_samples_per_second": round(done * len(p.feats["train"]) / max(1, math.ceil(
                len(p.feats["train"]) / bs)) / pure, 1),
            "steps": trainer.state.global_step, "total_steps": plan.total_steps,
            "batch_size": bs, "learning_rate": plan.learning_rate,
            "processes": distributed.world_size(),
            "per_device_batch_size": max(1, bs // distributed.world_size()),
            "device": _device_name(plan.device)}


def train(ctx: Context) -> dict:
    """(open the trackers) → prepare → plan → build the trainer → train → finish."""
    random.seed(ctx.config.training.seed)
    torch.manual_seed(ctx.config.training.seed)
    # first of all: a tracker library that is missing fails the run here, in one sentence
    # (rank 0 alone reports, as it alone writes the run directory)
    ctx.reporter = trackers.Reporter.open(ctx) if distributed.is_main() else None
    try:
        p = prepare(ctx)
        plan = plan_run(ctx, p)
        trainer, evaluator, callback = build_trainer(ctx, p, plan)
        train_seconds = run_training(ctx, p, plan, trainer, callback)
        if not distributed.is_main():
            return {"status": "rank-done"}  # rank 0 scores, judges and saves
        stopped = callback.stop_requested or ctx.should_stop()
        timing = _timing(ctx, p, plan, trainer, callback, train_seconds)
        results = finish(ctx, p, evaluator, callback, timing, stopped, plan.amp)
    finally:
        if ctx.reporter is not None:
            ctx.reporter.close("FAILED")  # a no-op once finish() reported
    shutil.rmtree(ctx.run.root / "checkpoints", ignore_errors=True)  # the model is saved
    return results


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores)"
