"""What happens around each `transformers.Trainer` step, in small parts that read and test alone.

- `Evaluator`: validation (and a fixed training sample) scored with the task's metrics.
- `ProgressReporter`: "progress" events with the loss, samples per second and the ETA, and the
  time spent evaluating (which neither counts as training).
- `EvaluationPolicy`: when to evaluate (every `eval_every` steps after warmup, and at the end;
  `evaluation_interval` picks `eval_every`) and when patience has run out for early stopping.
- `BestTracker`: the best validation score (ties go to the lower loss), its weights in memory,
  and how many evaluations in a row brought no progress.
- `Checkpointer`: when to ask the Trainer for a checkpoint (every FINETUNER_CHECKPOINT_SECONDS
  of training), the best weights on disk (checkpoints/best.pt) and the state that makes a
  resumed run carry on exactly (checkpoint-N/finetuner_state.pt).
- `RunCallback`: the one TrainerCallback, composing the parts above; it also notices a stop
  request and keeps the history of "eval" events. `resume_point` sets it up to carry on from
  a run's last checkpoint.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback

from finetuner.models import batching
from finetuner.models.batching import StopRequested
from finetuner.models.estimate import evaluation_interval  # noqa: F401 - training reads it here
from finetuner.tasks.options import TaskOptions
from finetuner.training.distributed import any_rank, is_main


def checkpoint_seconds() -> float:
    """Training time between checkpoints (FINETUNER_CHECKPOINT_SECONDS, default 60)."""
    return float(os.environ.get("FINETUNER_CHECKPOINT_SECONDS", "60"))


class Evaluator:
    """Validation (and a fixed training sample) scored with the task's metrics."""

    def __init__(self, spec, impl, labels, splits, feats, amp, collate, *, options: TaskOptions,
                 batch_size: int, interrupt: Callable[[], bool]):
        self.spec, self.impl, self.labels = spec, impl, labels
        self.splits, self.feats, self.amp, self.collate = splits, feats, amp, collate
        self.options, self.batch_size, self.interrupt = options, batch_size, interrupt

    def score(self, model, split: str) -> tuple[dict, list]:
        outputs, loss = batching.run_model(
            model, self.feats[split], self.collate, self.batch_size, self.amp, with_loss=True,
            interrupt=self.interrupt, spec=self.spec,
        )
        metrics = self.impl.metrics(outputs, self.feats[split], self.splits[split], self.labels,
                                    **self.options.hooks())
        metrics["loss"] = None if loss is None else round(loss, 5)
        return metrics, outputs


class ProgressReporter:
    """Progress events. Samples per second are measured over the window since the previous
    event, the ETA from the average training step so far plus the evaluations still due;
    time spent evaluating is taken out of both."""

    def __init__(self, events, batch_size: int, eval_every: int,
                 clock: Callable[[], float] = time.perf_counter):
        self.events, self.batch_size, self.eval_every, self.clock = (
            events, batch_size, eval_every, clock)
        self.t0 = clock()
        self.last_log = (0, self.t0, 0.0)  # step, time and eval_seconds at the last event
        self.last_loss: float | None = None
        self.eval_seconds = 0.0
        self.evals = 0

    def evaluated(self, seconds: float) -> None:
        self.eval_seconds += seconds
        self.evals += 1

    def rate_and_eta(self, step: int, max_steps: int, now: float) -> tuple[float, float]:
        """(samples per second since the last event, seconds left) at `step` of `max_steps`."""
        step0, t0, eval0 = self.last_log
        train_time = max(1e-9, now - self.t0 - self.eval_seconds)
        window = max(1e-9, now - t0 - (self.eval_seconds - eval0))
        rate = (step - step0) * self.batch_size / window
        avg_step = train_time / max(1, step)
        evals_left = max(0, (max_steps - step) // self.eval_every)
        eval_avg = self.eval_seconds / self.evals if self.evals else 0.0
        return rate, (max_steps - step) * avg_step + evals_left * eval_avg

    def log(self, state, logs: dict) -> dict | None:
        """A "progress" event for a Trainer log with a loss in it, else None."""
        if "loss" not in logs:
            return None
        self.last_loss = float(logs["loss"])
        now = self.clock()
        rate, eta = self.rate_and_eta(state.global_step, state.max_steps, now)
        self.last_log = (state.global_step, now, self.eval_seconds)
        return self.events.emit(
            "progress", step=state.global_step, total_steps=state.max_steps,
            epoch=round(state.epoch or 0, 4), loss=round(self.last_loss, 5),
            learning_rate=logs.get("learning_rate"), grad_norm=logs.get("grad_norm"),
            samples_per_second=round(rate, 1), eta_seconds=round(eta, 1),
            elapsed_seconds=round(now - self.t0, 1),
        )

    def state_dict(self) -> dict:
        return {"last_loss": self.last_loss, "eval_seconds": self.eval_seconds,
                "evals": self.evals}

    def load_state_dict(self, saved: dict) -> None:
        self.last_loss, self.eval_seconds, self.evals = (
            saved["last_loss"], saved["eval_seconds"], saved["evals"])


class EvaluationPolicy:
    """Evaluate every `eval_every` steps once warmup is over (a learning rate near 0 tells us
    nothing), and always at the last step. Stop early after `patience` evaluations without
    progress (0 or None: never), but never before one full epoch (early curves are noisy) nor
    before step `min_steps` (loop.plan_run: the floor of steps for small data, or the epochs
    asked for when they end first): on 1,000 SST-2 sentences, runs cut at 32-40 of their 100
    steps scored 0.745 and 0.786 where the whole schedule gave 0.794 and 0.806
    (bench/RESULTS.md, "Early stopping and the floor of steps")."""

    def __init__(self, eval_every: int, warmup_steps: int = 0, patience: int | None = None,
                 min_steps: int = 0):
        self.eval_every, self.warmup_steps = eval_every, warmup_steps
        self.patience = patience or 10**9
        self.min_steps = min_steps

    def due(self, step: int, max_steps: int) -> bool:
        warm = step > self.warmup_steps or step >= max_steps
        return warm and (step % self.eval_every == 0 or step >= max_steps)

    def stop_early(self, bad_evals: int, epoch: float | None, step: int = 0) -> bool:
        return bad_evals >= self.patience and (epoch or 0) >= 1 and step >= self.min_steps


def snapshot(model) -> dict:
    """Copies of the trainable weights."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


class BestTracker:
    """The best validation result so far and its weights. Results compare by (metric, -loss),
    a missing value counting as 0: on an equal metric the lower validation loss wins, and the
    first of exact ties stays. An evaluation that neither improves the metric nor brings the
    loss 1% below its best so far is a bad one; any progress resets the count."""

    def __init__(self, metric: str):
        self.metric = metric
        self.best_value: tuple[float, float] | None = None
        self.best_state: dict | None = None
        self.best_step = 0
        self.bad_evals = 0
        self.best_loss: float | None = None

    def key(self, val: dict) -> tuple[float, float]:
        return (val.get(self.metric) or 0.0, -(val.get("loss") or 0.0))

    def update(self, val: dict, step: int, model) -> bool:
        """Take one evaluation's validation metrics; True when they are the best so far (then
        the model's weights are copied)."""
        key = self.key(val)
        improved = self.best_value is None or key > self.best_value
        learning = self._loss_fell(val.get("loss"))
        if improved:
            self.best_value, self.best_step, self.bad_evals = key, step, 0
            self.best_state = snapshot(model)
        elif not learning and self.best_step > 0:
            # patience runs from training's own best: a start that is already good (a
            # fitted head scored at step 0) is kept if nothing beats it, but does not cut
            # fine-tuning short while it finds its feet
            self.bad_evals += 1
        else:  # still learning: a metric such as entity F1 can sit at 0 while the loss falls
            self.bad_evals = 0
        return improved

    def _loss_fell(self, loss: float | None) -> bool:
        """True when the validation loss is 1% below its best so far (then it becomes the best)."""
        if loss is None:
            return False
        fell = self.best_loss is None or loss < 0.99 * self.best_loss
        self.best_loss = min(loss, self.best_loss if self.best_loss is not None else loss)
        return fell

    def restore(self, model) -> None:
        """Copy the best weights back into the model (nothing when there were none)."""
        if self.best_state is None:
            return
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.best_state.items():
                params[name].copy_(value)

    def state_dict(self) -> dict:
        return {"best_step": self.best_step, "bad_evals": self.bad_evals,
                "best_loss": self.best_loss, "best_state": self.best_state,
                "best_value": list(self.best_value) if self.best_value else None}

    def load_state_dict(self, saved: dict) -> None:
        self.best_step, self.bad_evals, self.best_loss = (
            saved["best_step"], saved["bad_evals"], saved["best_loss"])
        self.best_value = tuple(saved["best_value"]) if saved["best_value"] else None
        self.best_state = saved["best_state"]

    def load_best(self, saved: dict) -> None:
        """The best weights alone, as `Checkpointer.read_best` gives them."""
        self.best_state = saved["state"]
        self.best_step = int(saved["step"])
        self.best_value = tuple(saved["value"])


class Checkpointer:
    """Checkpoints at most every `every_seconds` (default: checkpoint_seconds(), read when
    asked) of training, so short runs never pay for one and a long run loses little when
    interrupted; nothing when not `enabled`. Writes are atomic (a .tmp file, then a rename)."""

    STATE_FILE = "finetuner_state.pt"

    def __init__(self, folder: Path, enabled: bool, every_seconds: float | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.folder, self.enabled, self.every_seconds, self.clock = (
            Path(folder), enabled, every_seconds, clock)
        self.last_save = clock()

    def due(self) -> bool:
        """True (and the clock restarts) when a checkpoint should be written now."""
        now = self.clock()
        every = checkpoint_seconds() if self.every_seconds is None else self.every_seconds
        if self.enabled and now - self.last_save >= every:
            self.last_save = now
            return True
        return False

    def write_best(self, tracker: BestTracker) -> None:
        """Keep the best weights on disk too, so a resumed run still knows them."""
        if not self.enabled or tracker.best_state is None or not is_main():
            return
        self.folder.mkdir(exist_ok=True)
        tmp = self.folder / "best.pt.tmp"
        torch.save({"state": tracker.best_state, "step": tracker.best_step,
                    "value": list(tracker.best_value)}, tmp)
        tmp.replace(self.folder / "best.pt")

    def read_best(self) -> dict | None:
        path = self.folder / "best.pt"
        return torch.load(path, weights_only=True) if path.exists() else None

    @classmethod
    def write_state(cls, checkpoint: Path, saved: dict) -> None:
        """The callback's state beside a checkpoint the Trainer wrote (none if it did not)."""
        if checkpoint.is_dir() and is_main():
            tmp = checkpoint / f"{cls.STATE_FILE}.tmp"
            try:
                torch.save(saved, tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk: give back what the write took
                raise
            tmp.replace(checkpoint / cls.STATE_FILE)

    @classmethod
    def read_state(cls, checkpoint: Path) -> dict | None:
        path = checkpoint / cls.STATE_FILE
        return torch.load(path, weights_only=True) if path.exists() else None


def _headline(metrics: dict) -> dict:
    """Scalars only: per-class tables stay out of the per-evaluation events."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "n"}


class RunCallback(TrainerCallback):
    """Progress events, periodic evaluation, best-weights snapshot, early stop, stop request,
    checkpoints and exact resume, by composing the parts above."""

    # the evaluation and early-stopping state that travels with each checkpoint
    STATE_FIELDS = ("best_step", "bad_evals", "best_loss", "last_loss", "eval_seconds", "evals",
                    "stopped_early")

    def __init__(self, events, should_stop: Callable[[], bool], evaluator: Evaluator | None, *,
                 metric: str, batch_size: int, eval_every: int, warmup_steps: int = 0,
                 patience: int | None = None, checkpoints: Path, save_checkpoints: bool = False,
                 every_seconds: float | None = None, evaluate_start: bool = False,
                 min_steps: int = 0):
        self.events, self.should_stop, self.evaluator = events, should_stop, evaluator
        # score the model before its first step (a head fitted by a probe is already a
        # model: the kept checkpoint is then never worse on validation than the probe)
        self.evaluate_start = evaluate_start
        self.progress = ProgressReporter(events, batch_size, eval_every)
        self.policy = EvaluationPolicy(eval_every, warmup_steps, patience, min_steps)
        self.tracker = BestTracker(metric)
        self.checkpointer = Checkpointer(checkpoints, save_checkpoints, every_seconds)
        self.stopped_early = False
        self.stop_requested = False
        self.history: list[dict] = []  # the "eval" events
        self.first_step = 0  # > 0 when resumed from a checkpoint

    # -- read by train() and finish()
    metric = property(lambda self: self.tracker.metric)
    best_step = property(lambda self: self.tracker.best_step)
    best_state = property(lambda self: self.tracker.best_state)
    best_value = property(lambda self: self.tracker.best_value)
    bad_evals = property(lambda self: self.tracker.bad_evals)
    best_loss = property(lambda self: self.tracker.best_loss)
    last_loss = property(lambda self: self.progress.last_loss)
    eval_seconds = property(lambda self: self.progress.eval_seconds)
    evals = property(lambda self: self.progress.evals)

    def on_train_begin(self, args, state, control, **kw):
        if self.evaluate_start and self.first_step == 0 and not self.history:
            self.evaluate(kw["model"], state)
        return control

    def on_log(self, args, state, control, logs=None, **kw):
        self.progress.log(state, logs or {})

    def on_step_end(self, args, state, control, **kw):
        if any_rank(self.should_stop()):  # every rank stops at the same step
            self.stop_requested = True
            control.should_training_stop = True
            return control
        if self.policy.due(state.global_step, state.max_steps):
            self.evaluate(kw["model"], state)
            self.maybe_checkpoint(control)
            if self.policy.stop_early(self.tracker.bad_evals, state.epoch, state.global_step):
                self.stopped_early = True
                self.events.emit("early_stop", step=state.global_step, best_step=self.best_step,
                                 patience=self.policy.patience)
                control.should_training_stop = True
        return control

    def evaluate(self, model, state) -> None:
        """Score validation (and the training sample), track the best, emit an "eval" event."""
        t = time.perf_counter()
        try:
            val, _ = self.evaluator.score(model, "validation")
            train = self.evaluator.score(model, "train_sample")[0] if self.evaluator.feats[
                "train_sample"] else {}
        except StopRequested:
            self.stop_requested = True
            return
        self.progress.evaluated(time.perf_counter() - t)
        improved = self.tracker.update(val, state.global_step, model)
        event = self.events.emit(
            "eval", step=state.global_step, epoch=round(state.epoch or 0, 4),
            train_loss=self.last_loss, eval_loss=val.get("loss"),
            validation=_headline(val), train=_headline(train), metric=self.metric,
            best=improved, seconds=round(time.perf_counter() - t, 2),
        )
        self.history.append(event)

    def maybe_checkpoint(self, control) -> None:
        """Ask the Trainer for a checkpoint when one is due, with the best weights on disk."""
        due = self.checkpointer.due()
        if any_rank(due):  # the Trainer saves on every rank together
            if not due:
                self.checkpointer.last_save = self.checkpointer.clock()
            self.persist_best()
            control.should_save = True

    def persist_best(self) -> None:
        self.checkpointer.write_best(self.tracker)

    def restore_best(self, model) -> None:
        self.tracker.restore(model)

    # -- exact resume
    def state_dict(self) -> dict:
        return {**self.tracker.state_dict(), **self.progress.state_dict(),
                "stopped_early": self.stopped_early}

    def on_save(self, args, state, control, **kw):
        """After the Trainer wrote checkpoint-N (weights, optimizer, scheduler, RNG states),
        write this callback's state beside them, so a resumed run carries on exactly."""
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.checkpointer.write_state(folder, self.state_dict())
        return control

    def load_state(self, checkpoint: Path) -> bool:
        saved = self.checkpointer.read_state(checkpoint)
        if saved is None:
            return False
        self.tracker.load_state_dict(saved)
        self.progress.load_state_dict(saved)
        self.stopped_early = saved["stopped_early"]
        return True

    def resume(self, checkpoint: Path, events: list[dict]) -> None:
        """Carry on from checkpoint-N: patience, best loss and counters as they were at that
        step (or, for a checkpoint from before the state file existed, the best weights
        alone), and the "eval" events up to N from the run's `events`."""
        if not self.load_state(checkpoint):
            saved = self.checkpointer.read_best()
            if saved is not None:
                self.tracker.load_best(saved)
        step = int(checkpoint.name.split("-")[-1])
        self.history = [e for e in events if e.get("type") == "eval" and e["step"] <= step]
        self.first_step = step


def resume_point(run, callback: RunCallback) -> Path | None:
    """The checkpoint to continue from when this run (RunPaths) is being resumed, its RESUME
    marker then consumed and the callback carrying on from it; else None."""
    marker = run.root / "RESUME"
    if not marker.exists():
        return None
    marker.unlink()
    from finetuner.runs import latest_checkpoint, read_events

    checkpoint = latest_checkpoint(run)
    if checkpoint is not None:
        callback.resume(checkpoint, read_events(run.events)[0])
    return checkpoint
