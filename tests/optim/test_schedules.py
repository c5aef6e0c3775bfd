"""Learning-rate schedules at chosen steps."""

import math

import pytest

from minitransformer import optim


def test_constant():
    assert optim.constant(0.1)(1) == 0.1 and optim.constant(0.1)(10_000) == 0.1


def test_warmup_linear():
    schedule = optim.warmup_linear(1.0, warmup=10, total=110)
    assert schedule(1) == pytest.approx(0.1)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.5)
    assert schedule(110) == 0.0 and schedule(500) == 0.0


def test_warmup_cosine():
    schedule = optim.warmup_cosine(1.0, warmup=10, total=110, min_lr=0.1)
    assert schedule(5) == pytest.approx(0.5)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert schedule(110) == pytest.approx(0.1) and schedule(1000) == pytest.approx(0.1)


def test_noam_is_the_papers_formula():
    schedule = optim.noam(d_model=512, warmup=4000)
    for step in (1, 100, 4000, 10_000):
        expected = 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
        assert schedule(step) == pytest.approx(expected)
    peak = schedule(4000)
    assert peak == pytest.approx(1 / math.sqrt(512 * 4000))
    assert schedule(3999) < peak and schedule(4001) < peak
    assert optim.noam(512, 4000, factor=2.0)(4000) == pytest.approx(2 * peak)


def test_schedules_round_trip_through_their_config():
    schedule = optim.warmup_cosine(3e-4, 100, 1000, min_lr=1e-5)
    assert optim.from_config(schedule.to_config()) == schedule
    with pytest.raises(ValueError, match="unknown schedule kind 'Step'"):
        optim.from_config({"kind": "Step"})


def test_schedule_errors():
    with pytest.raises(ValueError, match="steps count from 1"):
        optim.noam(512, 4000)(0)
    with pytest.raises(ValueError, match="needs 0 <= warmup < total"):
        optim.warmup_linear(1.0, warmup=100, total=100)
