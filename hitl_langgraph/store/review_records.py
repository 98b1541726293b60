"""Rows the store keeps for asynchronous review: sampling decisions, verdicts, the outbox.

* :class:`ReviewSample` — one per action routed ``review``: whether it was sampled for
  human review, with what probability, and (once reviewed) when and by whom.
* :class:`ReviewRecord` — one verdict (or guidance note) on a span, keyed like Phoenix
  keys annotations: ``(project, span, name, identifier)``.
* :class:`OutboxEntry` — one annotation waiting to be mirrored into Phoenix (the durable
  spool); same key, so a repeated mirror upserts the same Phoenix row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal

from ..policy.action import canonical_json

__all__ = [
    "BudgetWindow",
    "OutboxEntry",
    "OutboxStatus",
    "ReviewRecord",
    "ReviewSample",
    "ReviewStats",
    "annotation_key",
]

OutboxStatus = Literal["pending", "mirrored", "failed"]
"""``pending`` waits for (another) mirror attempt; ``failed`` was refused by Phoenix as
malformed (a 4xx other than 404) and is kept for inspection; ``mirrored`` is done."""


def annotation_key(project: str, span_id: str, name: str, identifier: str) -> str:
    """The stable id of an annotation: Phoenix upserts on (name, span, identifier)."""
    raw = canonical_json([project, span_id.lower(), name, identifier])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BudgetWindow:
    """A review budget over a rolling window: at most ``limit`` samples since ``since``."""

    name: str
    since: datetime
    limit: int


@dataclass(frozen=True)
class ReviewSample:
    """The sampling decision for one action routed ``review`` (keyed by request id).

    ``draw`` is the request's reproducible uniform number in [0, 1); the action was
    sampled when ``draw < probability`` and the review budget allowed it (``reason``
    says which). ``due_at`` is the review deadline (SLA); ``reviewed_at`` is set when
    the first valid human verdict arrives.
    """

    request_id: str
    project: str
    sampled: bool
    probability: float
    draw: float
    score: float
    reason: str
    decided_at: datetime
    due_at: datetime
    priority: int = 2
    tool: str = ""
    thread_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    policy_version: str = ""
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> ReviewSample:
        return replace(self, **changes)


@dataclass(frozen=True)
class ReviewRecord:
    """One annotation collected from (or submitted to) Phoenix: a verdict or guidance.

    ``review_id`` is :func:`annotation_key` of (project, span id, name, identifier), so
    collecting the same annotation again finds the same row. ``source`` is ``hitl``
    for verdicts submitted through :class:`~hitl_langgraph.review.ReviewQueue`, else
    Phoenix's own ``API`` or ``APP`` (the UI).
    """

    review_id: str
    project: str
    span_id: str
    name: str
    identifier: str
    annotator_kind: str
    source: str
    created_at: datetime
    updated_at: datetime
    collected_at: datetime
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    reviewer: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    phoenix_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def same_content(self, other: ReviewRecord) -> bool:
        """True when ``other`` says the same thing (ids and timestamps aside)."""
        return (self.annotator_kind, self.label, self.score, self.explanation) == (
            other.annotator_kind,
            other.label,
            other.score,
            other.explanation,
        )


@dataclass(frozen=True)
class OutboxEntry:
    """One span annotation to mirror into Phoenix, written to the store first.

    ``entry_id`` is :func:`annotation_key` of the annotation, so writing the same key
    again replaces a pending payload (as Phoenix would) instead of queueing a duplicate.
    ``revision`` grows whenever the payload changes; marking an entry names the revision
    that was sent, so a newer payload is never marked as mirrored by mistake.
    ``payload`` is the body Phoenix's ``POST /v1/span_annotations`` takes for one item.
    """

    entry_id: str
    project: str
    span_id: str
    name: str
    identifier: str
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: OutboxStatus = "pending"
    revision: int = 1
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    mirrored_at: datetime | None = None
    phoenix_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class ReviewStats:
    """Queue health for one project (see :meth:`ApprovalStore.review_stats`)."""

    sampled: int
    reviewed: int
    pending: int
    past_due: int
    oldest_pending_at: datetime | None
    """``decided_at`` of the oldest sampled, unreviewed item."""
    next_due_at: datetime | None
    """The earliest ``due_at`` among unreviewed items."""


SAMPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ReviewSample))
REVIEW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ReviewRecord))
OUTBOX_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(OutboxEntry))
