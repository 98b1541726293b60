"""Risk-weighted, reproducible sampling of ``review``-routed actions for human review.

The probability that an action is sampled is a curve of its risk score. The default,
:func:`linear_curve`, rises linearly from the policy's review threshold to its approve
threshold and is clipped to ``[min_rate, 1]``: a score just above the review threshold
is sampled at ``min_rate``, one at the approve threshold always.

The draw is reproducible: a request id always hashes to the same uniform number
(:func:`uniform_draw`), so a replayed node, a restarted worker or an audit re-run reaches
the same decision. A :class:`ReviewBudget` caps sampled items per rolling hour and day;
the store counts and inserts atomically, so concurrent workers never overspend it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..errors import ConfigurationError
from ..policy.risk import Thresholds
from ..store.review_records import BudgetWindow

__all__ = [
    "DEFAULT_SLA",
    "ReviewBudget",
    "ReviewSampling",
    "SamplingCurve",
    "SamplingDecision",
    "constant_rate",
    "linear_curve",
    "uniform_draw",
]

SamplingCurve = Callable[[float], float]
"""Risk score in [0, 1] -> sampling probability in [0, 1]."""

DEFAULT_SLA: Mapping[int, timedelta] = {
    1: timedelta(hours=4),
    2: timedelta(hours=24),
    3: timedelta(hours=72),
}
"""Review deadline by priority (1 = highest)."""


def uniform_draw(request_id: str, *, seed: str = "hitl-review") -> float:
    """A uniform number in [0, 1) determined by ``seed`` and ``request_id`` (SHA-256)."""
    digest = hashlib.sha256(f"{seed}\x00{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _check_rate(value: float, what: str) -> float:
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def linear_curve(
    low: float = 0.5, high: float = 0.85, *, min_rate: float = 0.05, max_rate: float = 1.0
) -> SamplingCurve:
    """``p(score) = clip((score - low) / (high - low), min_rate, max_rate)``.

    Args:
        low, high: Scores where the line is 0 and 1 (usually the policy's review and
            approve thresholds).
        min_rate: Floor: every review-routed action has at least this chance.
        max_rate: Ceiling.
    """
    _check_rate(low, "low")
    _check_rate(high, "high")
    _check_rate(min_rate, "min_rate")
    _check_rate(max_rate, "max_rate")
    if not low < high:
        raise ConfigurationError(f"linear_curve needs low < high, got low={low}, high={high}")
    if min_rate > max_rate:
        raise ConfigurationError(f"min_rate ({min_rate}) must not exceed max_rate ({max_rate})")

    def curve(score: float) -> float:
        return min(max((score - low) / (high - low), min_rate), max_rate)

    curve.__doc__ = f"linear {low}->{high}, clipped to [{min_rate}, {max_rate}]"
    return curve


def constant_rate(rate: float) -> SamplingCurve:
    """The same probability for every score (uniform sampling)."""
    _check_rate(rate, "rate")
    return lambda score: rate


@dataclass(frozen=True)
class ReviewBudget:
    """At most ``per_hour`` / ``per_day`` sampled items per project (rolling windows)."""

    per_hour: int | None = None
    per_day: int | None = None

    def __post_init__(self) -> None:
        for name in ("per_hour", "per_day"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigurationError(f"ReviewBudget.{name} must be an integer >= 0 or None")

    def windows(self, now: datetime) -> list[BudgetWindow]:
        """The windows to enforce for a decision made at ``now``."""
        out: list[BudgetWindow] = []
        if self.per_hour is not None:
            out.append(BudgetWindow("per_hour", now - timedelta(hours=1), self.per_hour))
        if self.per_day is not None:
            out.append(BudgetWindow("per_day", now - timedelta(days=1), self.per_day))
        return out


@dataclass(frozen=True)
class SamplingDecision:
    """The outcome of the draw, before the budget is applied by the store."""

    sampled: bool
    probability: float
    draw: float
    priority: int
    due_at: datetime
    reason: str


@dataclass(frozen=True)
class ReviewSampling:
    """How review-routed actions are picked for human review.

    Args:
        curve: Score -> probability; defaults to :func:`linear_curve` from
            ``thresholds.review`` to ``thresholds.approve`` with ``min_rate``.
        thresholds: The policy's thresholds (``policy.thresholds``); defaults to
            :class:`~hitl_langgraph.Thresholds` ``()``.
        min_rate: Floor of the default curve.
        budget: Caps on sampled items per hour/day (``None``: unlimited).
        seed: Changes every draw (use another seed for an independent sample).
        sla: Review deadline per priority (1 = highest, 3 = lowest).
    """

    curve: SamplingCurve | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    min_rate: float = 0.05
    budget: ReviewBudget | None = None
    seed: str = "hitl-review"
    sla: Mapping[int, timedelta] = field(default_factory=lambda: dict(DEFAULT_SLA))

    def __post_init__(self) -> None:
        _check_rate(self.min_rate, "min_rate")
        if self.curve is None:
            low, high = self.thresholds.review, self.thresholds.approve
            curve = (
                linear_curve(low, high, min_rate=self.min_rate)
                if low < high
                else constant_rate(1.0)  # review == approve: nothing is routed review
            )
            object.__setattr__(self, "curve", curve)
        missing = {1, 2, 3} - set(self.sla)
        if missing:
            raise ConfigurationError(
                f"ReviewSampling.sla needs priorities 1, 2 and 3; missing {sorted(missing)}"
            )

    def probability(self, score: float) -> float:
        """The sampling probability of a score (the curve's value, checked)."""
        assert self.curve is not None
        return _check_rate(self.curve(float(score)), f"sampling curve value for score {score}")

    @staticmethod
    def priority(probability: float) -> int:
        """1 (high) for ``p >= 2/3``, 2 for ``p >= 1/3``, else 3."""
        if probability >= 2 / 3:
            return 1
        return 2 if probability >= 1 / 3 else 3

    def decide(self, request_id: str, score: float, *, now: datetime) -> SamplingDecision:
        """The reproducible draw for one request (the budget is the store's part)."""
        p = self.probability(score)
        draw = uniform_draw(request_id, seed=self.seed)
        sampled = draw < p
        priority = self.priority(p)
        return SamplingDecision(
            sampled=sampled,
            probability=p,
            draw=draw,
            priority=priority,
            due_at=now + self.sla[priority],
            reason="sampled" if sampled else "not drawn",
        )

    def budgets(self, now: datetime) -> list[BudgetWindow]:
        """Budget windows for a decision at ``now`` (empty without a budget)."""
        return self.budget.windows(now) if self.budget is not None else []
