"""The sampling module's exact contract: defaults, boundaries and refusals (mutation-tested).

Each assertion pins one behaviour a mutant of hitl_langgraph/review/sampling.py changed
while the rest of the suite still passed (README "Mutation testing").
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.review.sampling import (
    DEFAULT_SLA,
    ReviewBudget,
    ReviewSampling,
    constant_rate,
    linear_curve,
    uniform_draw,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_the_default_linear_curve_runs_from_0_5_to_0_85_with_a_5_percent_floor() -> None:
    curve = linear_curve()
    assert curve(0.0) == 0.05 and curve(0.5) == 0.05
    assert curve(0.675) == pytest.approx(0.5)
    assert curve(0.85) == 1.0 and curve(1.0) == 1.0
    assert curve.__doc__ == "linear 0.5->0.85, clipped to [0.05, 1.0]"


@pytest.mark.parametrize("name", ["low", "high", "min_rate", "max_rate"])
@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan, "0.5"])
def test_each_bad_curve_setting_is_refused_by_name(name: str, bad: object) -> None:
    kwargs = {"low": 0.2, "high": 0.8, "min_rate": 0.0, "max_rate": 1.0, name: bad}
    with pytest.raises(ConfigurationError) as err:
        linear_curve(**kwargs)  # type: ignore[arg-type]
    assert str(err.value) == f"{name} must be a number in [0, 1], got {bad!r}"


def test_constant_rate_accepts_both_ends_and_names_a_bad_rate() -> None:
    assert constant_rate(0.0)(0.9) == 0.0 and constant_rate(1)(0.1) == 1
    assert linear_curve(0.0, 1.0, min_rate=0.0)(0.0) == 0.0
    with pytest.raises(ConfigurationError) as err:
        constant_rate(2.0)
    assert str(err.value) == "rate must be a number in [0, 1], got 2.0"


def test_curve_bounds_low_below_high_and_min_at_most_max() -> None:
    with pytest.raises(ConfigurationError, match=r"needs low < high, got low=0.5, high=0.5"):
        linear_curve(0.5, 0.5)
    flat = linear_curve(0.2, 0.8, min_rate=0.3, max_rate=0.3)  # min == max: a constant
    assert flat(0.0) == flat(1.0) == 0.3
    with pytest.raises(ConfigurationError) as err:
        linear_curve(min_rate=0.4, max_rate=0.3)
    assert str(err.value) == "min_rate (0.4) must not exceed max_rate (0.3)"


def test_review_sampling_names_a_bad_min_rate_and_needs_every_sla_priority() -> None:
    with pytest.raises(ConfigurationError) as err:
        ReviewSampling(min_rate=1.2)
    assert str(err.value) == "min_rate must be a number in [0, 1], got 1.2"
    for missing in (1, 2, 3):
        sla = {k: v for k, v in DEFAULT_SLA.items() if k != missing}
        with pytest.raises(ConfigurationError, match=rf"missing \[{missing}\]"):
            ReviewSampling(sla=sla)


def test_priority_boundaries_are_inclusive() -> None:
    assert ReviewSampling.priority(2 / 3) == 1
    assert ReviewSampling.priority(math.nextafter(2 / 3, 0)) == 2
    assert ReviewSampling.priority(1 / 3) == 2
    assert ReviewSampling.priority(math.nextafter(1 / 3, 0)) == 3


def test_a_zero_budget_is_allowed_and_windows_are_named() -> None:
    budget = ReviewBudget(per_hour=0, per_day=0)  # "sample nothing" is a valid budget
    hour, day = budget.windows(NOW)
    assert (hour.name, hour.since, hour.limit) == ("per_hour", NOW - timedelta(hours=1), 0)
    assert (day.name, day.since, day.limit) == ("per_day", NOW - timedelta(days=1), 0)
    with pytest.raises(ConfigurationError, match="ReviewBudget.per_day must be an integer >= 0"):
        ReviewBudget(per_day=-1)


def test_a_decision_not_drawn_says_so() -> None:
    sampling = ReviewSampling(curve=constant_rate(0.0))
    d = sampling.decide("req_1", 0.9, now=NOW)
    assert (d.sampled, d.reason, d.priority) == (False, "not drawn", 3)
    assert d.due_at == NOW + DEFAULT_SLA[3]
    assert d.draw == uniform_draw("req_1")
    taken = ReviewSampling(curve=constant_rate(1.0)).decide("req_1", 0.9, now=NOW)
    assert (taken.sampled, taken.reason, taken.priority) == (True, "sampled", 1)
