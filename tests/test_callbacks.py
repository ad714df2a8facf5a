"""The training callback's parts alone: no model to train, fake Trainer state and clocks."""

from __future__ import annotations

import types

import pytest
import torch
from transformers import TrainerControl

from finetuner.training.callbacks import (
    BestTracker,
    Checkpointer,
    EvaluationPolicy,
    ProgressReporter,
    RunCallback,
    evaluation_interval,
    resume_point,
)


class Events:
    def __init__(self):
        self.events = []

    def emit(self, type_, **fields):
        event = {"type": type_, **fields}
        self.events.append(event)
        return event

    def of(self, type_):
        return [e for e in self.events if e["type"] == type_]


class Clock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


class ScriptedEvaluator:
    """Validation results in the order given, one per evaluation."""

    def __init__(self, results):
        self.results = list(results)
        self.feats = {"train_sample": []}

    def score(self, model, split):
        return dict(self.results.pop(0)), []


def state(step, max_steps=100, epoch=None):
    return types.SimpleNamespace(global_step=step, max_steps=max_steps,
                                 epoch=step / 10 if epoch is None else epoch)


def test_ties_on_the_metric_go_to_the_lower_loss_and_exact_ties_keep_the_first():
    model = torch.nn.Linear(2, 1)
    tracker = BestTracker("accuracy")
    assert tracker.update({"accuracy": 0.8, "loss": 0.5}, 10, model)
    assert tracker.update({"accuracy": 0.8, "loss": 0.4}, 20, model)  # same metric, lower loss
    assert not tracker.update({"accuracy": 0.8, "loss": 0.4}, 30, model)  # exact tie: first
    assert not tracker.update({"accuracy": 0.8, "loss": 0.45}, 40, model)
    assert tracker.update({"accuracy": 0.9, "loss": 0.9}, 50, model)  # the metric comes first
    assert (tracker.best_step, tracker.best_value) == (50, (0.9, -0.9))
    assert tracker.key({"loss": None}) == (0.0, 0.0)  # missing values count as 0


def test_the_best_weights_are_a_copy_and_come_back():
    model = torch.nn.Linear(2, 1)
    tracker = BestTracker("accuracy")
    tracker.update({"accuracy": 0.5, "loss": 1.0}, 5, model)
    kept = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    tracker.restore(model)
    assert torch.equal(model.weight, kept)
    BestTracker("accuracy").restore(model)  # nothing kept: nothing changes


def test_a_falling_loss_counts_as_progress_and_resets_patience():
    model = torch.nn.Linear(2, 1)
    tracker = BestTracker("f1")
    tracker.update({"f1": 0.5, "loss": 1.0}, 1, model)
    assert not tracker.update({"f1": 0.4, "loss": 1.2}, 2, model)
    assert tracker.bad_evals == 1
    assert not tracker.update({"f1": 0.4, "loss": 0.995}, 3, model)  # less than 1% below best
    assert tracker.bad_evals == 2 and tracker.best_loss == 0.995
    assert not tracker.update({"f1": 0.4, "loss": 0.98}, 4, model)  # 1% below: still learning
    assert tracker.bad_evals == 0 and tracker.best_loss == 0.98 and tracker.best_step == 1
    tracker.update({"f1": 0.4, "loss": None}, 5, model)  # no loss: no sign of learning
    assert tracker.bad_evals == 1


def test_evaluations_are_due_after_warmup_every_n_steps_and_at_the_end():
    policy = EvaluationPolicy(eval_every=5, warmup_steps=6)
    assert [s for s in range(1, 23) if policy.due(s, 22)] == [10, 15, 20, 22]
    assert EvaluationPolicy(eval_every=5, warmup_steps=50).due(22, 22)  # the end always
    assert evaluation_interval(100, 300, 4) == 25
    assert evaluation_interval(3, 12, 4) == 3  # tiny data: not every step


def test_early_stop_after_patience_evaluations_without_progress_but_not_before_an_epoch():
    policy = EvaluationPolicy(eval_every=5, patience=2)
    assert not policy.stop_early(1, 3.0)
    assert policy.stop_early(2, 3.0)
    assert not policy.stop_early(5, 0.9)
    assert not EvaluationPolicy(eval_every=5, patience=0).stop_early(1000, 9.0)  # 0: never
    # the floor of steps for small data is trained whole before patience may end a run
    floored = EvaluationPolicy(eval_every=5, patience=2, min_steps=100)
    assert not floored.stop_early(9, 3.0, step=95) and floored.stop_early(2, 3.0, step=100)


def test_early_stopping_waits_for_the_floor_of_steps(tmp_path):
    """1,000 SST-2 sentences: runs cut by patience at 32-40 of their 100 floored steps scored
    0.745 and 0.786 where the whole floor gave 0.794 and 0.806. The floor is trained, the
    best checkpoint still kept."""
    results = [{"accuracy": 0.9, "loss": 0.3}] + [{"accuracy": 0.5, "loss": 0.8}] * 9
    cb = RunCallback(Events(), lambda: False, ScriptedEvaluator(results), metric="accuracy",
                     batch_size=4, eval_every=10, patience=3, checkpoints=tmp_path,
                     min_steps=70)
    model, control = torch.nn.Linear(2, 1), TrainerControl()
    for step in range(1, 101):
        cb.on_step_end(None, state(step), control, model=model)
        if control.should_training_stop:
            break
    assert step == 70 and cb.stopped_early and cb.best_step == 10


def test_the_callback_stops_early_after_patience_evaluations(tmp_path):
    results = [{"accuracy": 0.9, "loss": 0.3}] + [{"accuracy": 0.5, "loss": 0.8}] * 5
    events = Events()
    cb = RunCallback(events, lambda: False, ScriptedEvaluator(results), metric="accuracy",
                     batch_size=4, eval_every=10, patience=3, checkpoints=tmp_path)
    model, control = torch.nn.Linear(2, 1), TrainerControl()
    for step in range(1, 101):
        cb.on_step_end(None, state(step), control, model=model)
        if control.should_training_stop:
            break
    assert step == 40 and cb.stopped_early and not cb.stop_requested
    assert [e["step"] for e in cb.history] == [10, 20, 30, 40]
    assert [e["best"] for e in cb.history] == [True, False, False, False]
    assert cb.best_step == 10 and cb.evals == 4
    assert events.of("early_stop") == [{"type": "early_stop", "step": 40, "best_step": 10,
                                        "patience": 3}]
    assert not (tmp_path / "best.pt").exists()  # checkpoints were not asked for


def test_a_stop_request_ends_training_at_the_next_step(tmp_path):
    cb = RunCallback(Events(), lambda: True, ScriptedEvaluator([]), metric="accuracy",
                     batch_size=4, eval_every=1, checkpoints=tmp_path)
    control = TrainerControl()
    cb.on_step_end(None, state(1), control, model=None)
    assert control.should_training_stop and cb.stop_requested and not cb.history


def test_samples_per_second_and_eta_leave_out_evaluation_time():
    clock, events = Clock(100.0), Events()
    progress = ProgressReporter(events, batch_size=8, eval_every=10, clock=clock)
    clock.now = 110.0  # 10 s: 20 steps, of which 2 s were one evaluation
    progress.evaluated(2.0)
    progress.log(state(20, max_steps=100, epoch=0.5), {"loss": 0.7, "learning_rate": 1e-4})
    (event,) = events.of("progress")
    assert event["samples_per_second"] == 20 * 8 / 8.0  # 8 s of training
    # 80 steps left at 0.4 s each, 8 evaluations left at 2 s each
    assert event["eta_seconds"] == 80 * 0.4 + 8 * 2.0
    assert event["elapsed_seconds"] == 10.0 and event["loss"] == 0.7
    clock.now = 114.0  # the next window: 10 steps in 4 s, no evaluation
    progress.log(state(30, max_steps=100, epoch=0.75), {"loss": 0.6})
    assert events.of("progress")[-1]["samples_per_second"] == 10 * 8 / 4.0
    progress.log(state(31), {"learning_rate": 1e-4})  # no loss: no event
    assert len(events.of("progress")) == 2 and progress.last_loss == 0.6


def test_checkpoints_are_asked_for_at_most_every_n_seconds(tmp_path, monkeypatch):
    clock = Clock(0.0)
    every = Checkpointer(tmp_path, enabled=True, every_seconds=60, clock=clock)
    due = []
    for now in (10, 59, 60, 100, 119, 121):
        clock.now = now
        due.append(every.due())
    assert due == [False, False, True, False, False, True]
    assert not Checkpointer(tmp_path, enabled=False, every_seconds=0, clock=clock).due()
    monkeypatch.setenv("FINETUNER_CHECKPOINT_SECONDS", "5")
    from_env = Checkpointer(tmp_path, enabled=True, clock=clock)
    clock.now += 4
    assert not from_env.due()
    clock.now += 1
    assert from_env.due()


def test_a_due_checkpoint_writes_the_best_weights_and_asks_the_trainer(tmp_path):
    cb = RunCallback(Events(), lambda: False, None, metric="accuracy", batch_size=4,
                     eval_every=1, checkpoints=tmp_path / "checkpoints", save_checkpoints=True,
                     every_seconds=0)
    control = TrainerControl()
    cb.maybe_checkpoint(control)  # nothing kept yet: only the Trainer's checkpoint
    assert control.should_save and not (tmp_path / "checkpoints" / "best.pt").exists()
    cb.tracker.update({"accuracy": 0.7, "loss": 0.2}, 12, torch.nn.Linear(2, 1))
    cb.maybe_checkpoint(TrainerControl())
    saved = cb.checkpointer.read_best()
    assert saved["step"] == 12 and saved["value"] == [0.7, -0.2]


@pytest.mark.parametrize("with_state_file", [True, False])
def test_resume_carries_on_from_the_checkpoint(tmp_path, with_state_file):
    from finetuner.runs import EventWriter, RunPaths

    run = RunPaths(tmp_path / "run")
    run.root.mkdir(parents=True)
    writer = EventWriter(run.events)
    for step in (10, 20, 30):
        writer.emit("eval", step=step)

    def fresh():
        return RunCallback(writer, lambda: False, None, metric="accuracy", batch_size=4,
                           eval_every=10, checkpoints=run.root / "checkpoints",
                           save_checkpoints=True)

    before = fresh()
    before.tracker.update({"accuracy": 0.6, "loss": 0.5}, 20, torch.nn.Linear(2, 1))
    before.tracker.bad_evals, before.progress.evals = 1, 2
    before.persist_best()
    checkpoint = run.root / "checkpoints" / "checkpoint-20"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")  # a complete checkpoint
    if with_state_file:
        before.on_save(types.SimpleNamespace(output_dir=str(checkpoint.parent)), state(20), None)
    assert resume_point(run, fresh()) is None  # not being resumed: no RESUME marker
    (run.root / "RESUME").touch()
    after = fresh()
    assert resume_point(run, after) == checkpoint
    assert not (run.root / "RESUME").exists()
    assert after.first_step == 20 and [e["step"] for e in after.history] == [10, 20]
    assert after.best_step == 20 and after.best_value == (0.6, -0.5)
    assert torch.equal(after.best_state["weight"], before.best_state["weight"])
    assert (after.bad_evals, after.evals) == ((1, 2) if with_state_file else (0, 0))


def test_length_groups_are_small_enough_to_mix_the_data():
    import torch

    from finetuner.models.batching import EpochSampler, grouped_order

    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    g = torch.Generator()
    g.manual_seed(0)
    order = grouped_order(lengths, 10, g, group_batches=4)
    assert sorted(order) == list(range(1000))  # a permutation: every example once an epoch
    batches = [order[i:i + 10] for i in range(0, 1000, 10)]
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # the longest batch first
    for b in batches:  # each batch is a slice of a sorted group: little padding
        assert sorted((lengths[i] for i in b), reverse=True) == [lengths[i] for i in b]
    # but batches are not sorted across the epoch: neighbours come from different groups
    firsts = [lengths[b[0]] for b in batches[1:]]
    assert firsts != sorted(firsts, reverse=True)
    pad = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert sum(lengths) / pad > 0.6  # random order pads to about half here
    # the order depends on (seed, epoch) alone
    s = EpochSampler(lengths, 10, seed=3)
    s.set_epoch(2)
    assert list(s) == list(s) and list(s) != list(EpochSampler(lengths, 10, seed=4))


def test_length_groups_stay_aligned_to_batches_when_the_data_is_not_a_multiple():
    """The short last batch stays last: the DataLoader's slices are the sorted batches."""
    import torch

    from finetuner.models.batching import grouped_order

    lengths = [(i * 37) % 101 + 1 for i in range(1003)]
    for seed in range(5):
        g = torch.Generator()
        g.manual_seed(seed)
        order = grouped_order(lengths, 10, g, group_batches=4)
        assert sorted(order) == list(range(1003))
        batches = [order[i:i + 10] for i in range(0, 1003, 10)]
        assert len(batches[-1]) == 3
        for b in batches:
            assert sorted((lengths[i] for i in b), reverse=True) == [lengths[i] for i in b]


def test_small_data_trains_for_a_floor_of_steps():
    """A few hundred examples at 3 epochs is about 25 steps: too few to learn from, so a run
    takes at least min_steps (early stopping waits for them or the epochs asked for, whichever
    ends first); max_steps, when set, rules."""
    from finetuner.training.loop import schedule_steps

    assert schedule_steps(8, 3.0, None, 100) == 100  # 256 rows, batch 32
    assert schedule_steps(250, 3.0, None, 100) == 750  # 8,000 rows: the epochs rule
    assert schedule_steps(8, 3.0, None, 0) == 24  # the floor turned off
    assert schedule_steps(8, 3.0, 16, 100) == 16  # an explicit cap wins
    assert schedule_steps(1, 0.5, None, 0) == 1
