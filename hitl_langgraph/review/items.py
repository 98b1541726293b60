"""What the review queue hands out: items to review, SLA and collect reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..store.review_records import ReviewSample

__all__ = ["CollectReport", "ReviewItem", "SlaReport", "ToolCall", "parse_time", "reviewer_of"]


@dataclass(frozen=True)
class ToolCall:
    """One tool span of the reviewed trace."""

    name: str
    span_id: str
    input: Any = None
    output: Any = None
    status: str = ""


@dataclass(frozen=True)
class ReviewItem:
    """One sampled, unreviewed run, with what a reviewer needs to judge it."""

    sample: ReviewSample
    overdue: bool
    age_seconds: float
    input: Any = None
    output: Any = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    url: str | None = None
    """Deep link to the trace in the Phoenix UI, with the reviewed span selected."""

    @property
    def span_id(self) -> str | None:
        return self.sample.span_id

    @property
    def request_id(self) -> str:
        return self.sample.request_id

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        s = out.pop("sample")
        for key in ("decided_at", "due_at", "reviewed_at"):
            s[key] = None if s[key] is None else s[key].isoformat()
        return {**s, **out}


@dataclass(frozen=True)
class SlaReport:
    """Review-queue health: how much waits and for how long."""

    pending: int
    past_due: int
    oldest_age_seconds: float | None
    oldest_pending_at: datetime | None
    next_due_at: datetime | None
    sampled: int
    reviewed: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("oldest_pending_at", "next_due_at"):
            out[key] = None if out[key] is None else out[key].isoformat()
        return out


@dataclass
class CollectReport:
    """What one :meth:`ReviewQueue.collect` did."""

    spans: int = 0
    annotations: int = 0
    changed: int = 0
    """New verdicts (or changed ones) stored by this collect."""
    unchanged: int = 0
    unauthorized: int = 0
    """Verdicts by reviewers without a required role (stored; they close nothing and
    count for no guidance)."""
    closed: int = 0
    """Items that got their first valid human verdict."""
    invalid: int = 0
    """Verdicts whose label is not in the config (stored, but they close nothing)."""
    protected: int = 0
    """Machine annotations that replaced a human one in Phoenix; both kept here."""


def parse_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return fallback


def reviewer_of(annotation: dict[str, Any]) -> str | None:
    identifier = str(annotation.get("identifier") or "")
    if identifier.startswith("human:"):
        return identifier[len("human:") :]
    if identifier:
        return identifier  # px-app:<user id> (auth on) or someone else's identifier
    user = annotation.get("user_id")
    return f"phoenix-user:{user}" if user else None
