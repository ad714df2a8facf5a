"""The time shown beside Start (finetuner.models.estimate.planned_seconds) plans what the run will
do: the floor of steps on small data, Max steps, the evaluations as the callbacks space them
(each also re-scores training rows), one pass for a probe-only head."""

from __future__ import annotations

import pytest

from finetuner.models.estimate import (
    MethodCost,
    evaluation_interval,
    planned_seconds,
    schedule_steps,
    seconds_per_epoch,
    seconds_per_eval,
)

FLOPS = 1e11


def cost(method="full", n_train=300, n_eval=40, tokens=20.0, one_pass=False) -> MethodCost:
    params = 11_000_000
    return MethodCost(method, params, params, seconds_per_epoch(
        method, params, n_train, tokens, n_eval, flops=FLOPS), "", one_pass,
        seconds_per_eval(params, n_train, tokens, n_eval, flops=FLOPS))


def test_small_data_is_planned_at_its_floor_of_steps_with_its_real_evaluations():
    c = cost()
    train_epoch = c.seconds_per_epoch - 4 * c.seconds_per_eval
    # 300 rows at batch 32: 10 steps an epoch; 3 epochs would be 30 steps, the floor is 100
    assert schedule_steps(10, 3.0, None, 100) == 100
    every = evaluation_interval(10, 100, 4)
    assert every == 5
    expected = train_epoch * 10 + (1 + 100 // 5) * c.seconds_per_eval
    assert planned_seconds(c, 300, 3.0, 32, None, 100) == pytest.approx(expected)
    # more than three times the epochs' worth: what the page said before
    assert planned_seconds(c, 300, 3.0, 32, None, 100) > 3 * train_epoch
    # Max steps wins over the floor; no floor: the epochs
    assert planned_seconds(c, 300, 3.0, 32, 20, 100) < planned_seconds(c, 300, 3.0, 32, None, 0)
    assert planned_seconds(c, 300, 3.0, 32, None, 0) == pytest.approx(
        train_epoch * 3 + (1 + 30 // 5) * c.seconds_per_eval)


def test_evaluations_re_score_training_rows_and_a_probe_is_one_pass():
    few = seconds_per_eval(11_000_000, 100, 20.0, 40, flops=FLOPS)
    many = seconds_per_eval(11_000_000, 5000, 20.0, 40, flops=FLOPS)
    assert many == pytest.approx(few * (40 + 512) / (40 + 100))  # capped at 512 rows
    assert seconds_per_eval(11_000_000, 5000, 20.0, 0, flops=FLOPS) == 0.0
    head = cost("head", one_pass=True)
    assert planned_seconds(head, 300, 3.0, 32, None, 100) == pytest.approx(
        head.seconds_per_epoch - 3 * head.seconds_per_eval)
