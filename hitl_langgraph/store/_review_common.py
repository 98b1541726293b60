"""Helpers shared by the review tables of every backend: field kinds, value checks and
the update rules of the outbox (so all three backends apply them identically)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError
from ._common import dumps
from .review_records import (
    OUTBOX_FIELDS,
    REVIEW_FIELDS,
    SAMPLE_FIELDS,
    BudgetWindow,
    OutboxEntry,
    OutboxStatus,
    ReviewRecord,
)

__all__ = [
    "BOOL_FIELDS",
    "JSON_FIELDS",
    "OUTBOX_FIELDS",
    "OUTBOX_STATUSES",
    "REVIEW_FIELDS",
    "SAMPLE_FIELDS",
    "TIME_FIELDS",
    "budget_reason",
    "check_limit",
    "check_status",
    "kept_review",
    "mirrored_fields",
    "normalized",
    "replaced_outbox",
]

JSON_FIELDS: frozenset[str] = frozenset({"payload", "metadata"})
TIME_FIELDS: frozenset[str] = frozenset(
    {
        "decided_at",
        "due_at",
        "reviewed_at",
        "created_at",
        "updated_at",
        "collected_at",
        "next_attempt_at",
        "mirrored_at",
    }
)
BOOL_FIELDS: frozenset[str] = frozenset({"sampled"})
OUTBOX_STATUSES: frozenset[str] = frozenset({"pending", "mirrored", "failed"})


def budget_reason(window: BudgetWindow) -> str:
    """The ``reason`` stored for a sample the budget turned down."""
    return f"budget {window.name} ({window.limit}) exhausted"


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or limit < 0:
        raise ConfigurationError(f"limit must be a non-negative integer, got {limit!r}")


def check_status(status: str | None) -> None:
    if status is not None and status not in OUTBOX_STATUSES:
        raise ConfigurationError(
            f"outbox status {status!r} is not one of {', '.join(sorted(OUTBOX_STATUSES))}"
        )


def kept_review(existing: ReviewRecord, review: ReviewRecord) -> ReviewRecord | None:
    """The row :meth:`ApprovalStore.put_review` keeps when ``review`` arrives for the id of
    ``existing``: ``None`` when ``review`` replaces it (different content, not older);
    otherwise ``existing``, with ``review``'s ``phoenix_id`` filled in if it had none."""
    if not (existing.same_content(review) or review.updated_at < existing.updated_at):
        return None
    if existing.phoenix_id is None and review.phoenix_id is not None:
        return replace(existing, phoenix_id=review.phoenix_id)
    return existing


def normalized(entry: OutboxEntry) -> OutboxEntry:
    """``entry`` with its payload as it reads back from JSON (so payloads compare equal
    across backends) and its status checked."""
    check_status(entry.status)
    return replace(entry, payload=json.loads(dumps(entry.payload)))


def replaced_outbox(existing: OutboxEntry, entry: OutboxEntry) -> OutboxEntry:
    """``existing`` after a write of a different payload for the same key."""
    return replace(
        existing,
        payload=entry.payload,
        updated_at=entry.updated_at,
        status="pending",
        revision=existing.revision + 1,
        attempts=0,
        next_attempt_at=entry.next_attempt_at,
        last_error=None,
        mirrored_at=None,
        phoenix_id=None,
        request_id=entry.request_id or existing.request_id,
    )


def mirrored_fields(
    current: OutboxEntry,
    status: OutboxStatus,
    at: datetime,
    phoenix_id: str | None,
    error: str | None,
    next_attempt_at: datetime | None,
) -> dict[str, Any]:
    """The changes :meth:`ApprovalStore.mark_outbox` applies."""
    check_status(status)
    mirrored = status == "mirrored"
    return {
        "status": status,
        "attempts": current.attempts + 1,
        "updated_at": at,
        "last_error": error,
        "next_attempt_at": None if mirrored else next_attempt_at,
        "mirrored_at": at if mirrored else current.mirrored_at,
        "phoenix_id": phoenix_id if mirrored else current.phoenix_id,
    }
