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
    train_sample_size,
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
    # as many training rows as validation has, at least 128, at most 512
    assert many == pytest.approx(few * (40 + 128) / (40 + 100))
    big_val = seconds_per_eval(11_000_000, 5000, 20.0, 2000, flops=FLOPS)
    assert big_val == pytest.approx(few * (2000 + 512) / (40 + 100))
    assert [train_sample_size(n, v, 512) for n, v in (
        (100, 40), (5000, 40), (5000, 300), (5000, 2000), (60, 900))] == [100, 128, 300, 512, 60]
    assert seconds_per_eval(11_000_000, 5000, 20.0, 0, flops=FLOPS) == 0.0
    head = cost("head", one_pass=True)
    assert planned_seconds(head, 300, 3.0, 32, None, 100) == pytest.approx(
        head.seconds_per_epoch - 3 * head.seconds_per_eval)


def test_wider_models_are_planned_at_a_higher_rate(tmp_path, monkeypatch):
    """A base-size body (hidden 768) turns FLOPs into training faster than MiniLM's width
    (measured: the unscaled plan for all-mpnet-base-v2 was 1.5-1.9x its real time per step);
    the embedded model's own plan is unchanged; an unreadable config changes nothing."""
    import json

    from finetuner.models import estimate
    from finetuner.models.modeling import resolve_model
    from finetuner.tasks import get_task

    def folder(name, config):
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config))
        return str(path)

    assert estimate.width_factor(folder("mini", {"hidden_size": 384})) == 1.0
    assert estimate.width_factor(folder("base", {"hidden_size": 768})) == pytest.approx(2 ** 0.5)
    assert estimate.width_factor(folder("distil", {"dim": 768})) == pytest.approx(2 ** 0.5)
    assert estimate.width_factor(folder("huge", {"hidden_size": 8192})) == 2.0
    assert estimate.width_factor(str(tmp_path / "missing")) == 1.0
    # an uploaded model's config.json is anyone's: odd values never break the plan
    for i, odd in enumerate([{"hidden_size": -768}, {"hidden_size": "wide"}, [768],
                             {"hidden_size": [768]}, {"hidden_size": 1e400}]):
        assert estimate.width_factor(folder(f"odd{i}", odd)) == 1.0, odd
    default = resolve_model("default").path
    assert estimate.width_factor(default) == 1.0
    monkeypatch.setattr(estimate, "probe_flops", lambda: FLOPS)
    spec = get_task("classification")
    plain = estimate.method_costs(default, spec, 2, 300, 20.0, 40)
    monkeypatch.setattr(estimate, "width_factor", lambda path: 2 ** 0.5)
    wide = estimate.method_costs(default, spec, 2, 300, 20.0, 40)
    for a, b in zip(plain, wide):
        assert b.seconds_per_epoch == pytest.approx(a.seconds_per_epoch / 2 ** 0.5)
        assert b.seconds_per_eval == pytest.approx(a.seconds_per_eval / 2 ** 0.5)


def test_a_probe_taken_under_load_is_replaced_by_a_later_faster_one(monkeypatch):
    """The server measures the machine at start-up; when it started busy (a resumed training
    beside it), a later probe on the idle machine replaces the slow one, and a later busy
    probe never lowers it: estimates follow what the machine can do, not the moment of start."""
    from finetuner.models import estimate

    rates = iter([1e9, 5e9, 2e9])
    monkeypatch.setattr(estimate, "_probe", lambda: next(rates))
    monkeypatch.setattr(estimate, "_PROBED", {"flops": 0.0, "at": float("-inf")})
    assert estimate.probe_flops() == 1e9  # at start-up, while busy
    assert estimate.probe_flops() == 1e9  # not probed again within REPROBE_SECONDS
    monkeypatch.setattr(estimate, "REPROBE_SECONDS", 0.0)
    assert estimate.probe_flops() == 5e9  # idle now
    assert estimate.probe_flops() == 5e9  # busy again: the faster probe stands
    # after start-up the server probes a few more times on its own, keeping the fastest
    monkeypatch.setattr(estimate, "_PROBED", {"flops": 0.0, "at": float("-inf")})
    rates = iter([1e9, 3e9, 8e9, 4e9])
    monkeypatch.setattr(estimate, "REPROBE_SECONDS", 60.0)
    assert estimate.probe_flops() == 1e9
    waited = []
    assert estimate.settle_probe(sleep=waited.append) == 8e9
    assert waited == list(estimate.SETTLE_SECONDS) and estimate.probe_flops() == 8e9
