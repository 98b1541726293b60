"""The review tables of :class:`~hitl_langgraph.store.MemoryStore` (reference semantics)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ._review_common import (
    budget_reason,
    check_limit,
    check_status,
    kept_review,
    mirrored_fields,
    normalized,
    replaced_outbox,
)
from .review_records import (
    BudgetWindow,
    OutboxEntry,
    OutboxStatus,
    ReviewRecord,
    ReviewSample,
    ReviewStats,
)

__all__ = ["MemoryReviewMixin", "sample_matches"]


def sample_matches(
    s: ReviewSample,
    project: str | None,
    sampled: bool | None,
    reviewed: bool | None,
    since: datetime | None = None,
    due_before: datetime | None = None,
    span_ids: Sequence[str] | None = None,
) -> bool:
    """Whether ``s`` passes the filters of ``list_review_samples``/``count_review_samples``."""
    if project is not None and s.project != project:
        return False
    if sampled is not None and s.sampled != sampled:
        return False
    if reviewed is not None and (s.reviewed_at is not None) != reviewed:
        return False
    if since is not None and s.decided_at < since:
        return False
    if due_before is not None and not s.due_at < due_before:
        return False
    return span_ids is None or s.span_id in span_ids


class MemoryReviewMixin:
    """Samples, reviews and outbox entries in dicts, under the store's lock."""

    _lock: threading.RLock
    _samples: dict[str, ReviewSample]
    _reviews: dict[str, ReviewRecord]
    _outbox: dict[str, OutboxEntry]

    def _init_review(self) -> None:
        self._samples = {}
        self._reviews = {}
        self._outbox = {}

    # -- samples ------------------------------------------------------------------------
    def put_review_sample(
        self,
        sample: ReviewSample,
        *,
        budgets: Sequence[BudgetWindow] = (),
        outbox: OutboxEntry | None = None,
    ) -> tuple[ReviewSample, bool]:
        with self._lock:
            existing = self._samples.get(sample.request_id)
            if existing is not None:
                return existing, False
            if sample.sampled:
                for window in budgets:
                    used = sum(
                        1
                        for s in self._samples.values()
                        if sample_matches(s, sample.project, True, None, since=window.since)
                    )
                    if used >= window.limit:
                        sample = replace(sample, sampled=False, reason=budget_reason(window))
                        break
            self._samples[sample.request_id] = sample
            if outbox is not None and sample.sampled:
                self._put_outbox(outbox)
            return sample, True

    def get_review_sample(self, request_id: str) -> ReviewSample | None:
        with self._lock:
            return self._samples.get(request_id)

    def list_review_samples(
        self,
        project: str | None = None,
        *,
        sampled: bool | None = True,
        reviewed: bool | None = False,
        span_ids: Sequence[str] | None = None,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ReviewSample]:
        check_limit(limit)
        with self._lock:
            rows = sorted(
                (
                    s
                    for s in self._samples.values()
                    if sample_matches(s, project, sampled, reviewed, span_ids=span_ids)
                ),
                key=lambda s: (s.due_at, s.request_id),
            )
        if after is not None:
            rows = [s for s in rows if (s.due_at, s.request_id) > after]
        return rows[:limit]

    def count_review_samples(
        self,
        project: str | None = None,
        *,
        sampled: bool | None = True,
        reviewed: bool | None = None,
        since: datetime | None = None,
        due_before: datetime | None = None,
    ) -> int:
        with self._lock:
            return sum(
                1
                for s in self._samples.values()
                if sample_matches(s, project, sampled, reviewed, since, due_before)
            )

    def review_stats(self, project: str, *, now: datetime) -> ReviewStats:
        with self._lock:
            rows = [s for s in self._samples.values() if s.project == project and s.sampled]
        pending = [s for s in rows if s.reviewed_at is None]
        return ReviewStats(
            sampled=len(rows),
            reviewed=len(rows) - len(pending),
            pending=len(pending),
            past_due=sum(1 for s in pending if s.due_at < now),
            oldest_pending_at=min((s.decided_at for s in pending), default=None),
            next_due_at=min((s.due_at for s in pending), default=None),
        )

    # -- reviews ------------------------------------------------------------------------
    def put_review(
        self,
        review: ReviewRecord,
        *,
        closes: bool = False,
        outbox: Sequence[OutboxEntry] = (),
    ) -> tuple[ReviewRecord, bool]:
        with self._lock:
            existing = self._reviews.get(review.review_id)
            kept = None if existing is None else kept_review(existing, review)
            changed, stored = kept is None, review if kept is None else kept
            self._reviews[review.review_id] = stored
            if closes and review.request_id is not None:
                sample = self._samples.get(review.request_id)
                if sample is not None and sample.reviewed_at is None:
                    self._samples[review.request_id] = replace(
                        sample, reviewed_at=review.updated_at, reviewed_by=review.reviewer
                    )
            for entry in outbox:
                self._put_outbox(entry)
            return stored, changed

    def list_reviews(
        self,
        project: str | None = None,
        *,
        request_id: str | None = None,
        span_id: str | None = None,
        name: str | None = None,
        limit: int = 1000,
        after: tuple[datetime, str] | None = None,
    ) -> list[ReviewRecord]:
        check_limit(limit)
        with self._lock:
            rows = sorted(
                (
                    r
                    for r in self._reviews.values()
                    if (project is None or r.project == project)
                    and (request_id is None or r.request_id == request_id)
                    and (span_id is None or r.span_id == span_id)
                    and (name is None or r.name == name)
                ),
                key=lambda r: (r.collected_at, r.review_id),
            )
        if after is not None:
            rows = [r for r in rows if (r.collected_at, r.review_id) > after]
        return rows[:limit]

    # -- outbox -------------------------------------------------------------------------
    def _put_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        entry = normalized(entry)
        existing = self._outbox.get(entry.entry_id)
        if existing is None:
            self._outbox[entry.entry_id] = entry
            return entry
        if existing.payload == entry.payload:
            return existing
        updated = replaced_outbox(existing, entry)
        self._outbox[entry.entry_id] = updated
        return updated

    def put_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        with self._lock:
            return self._put_outbox(entry)

    def list_outbox(
        self,
        *,
        status: OutboxStatus | None = "pending",
        due_at: datetime | None = None,
        project: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        check_limit(limit)
        check_status(status)
        with self._lock:
            rows = [
                e
                for e in self._outbox.values()
                if (status is None or e.status == status)
                and (project is None or e.project == project)
                and (due_at is None or e.next_attempt_at is None or e.next_attempt_at <= due_at)
            ]
        rows.sort(key=lambda e: (e.created_at, e.entry_id))
        return rows[:limit]

    def mark_outbox(
        self,
        entry_id: str,
        *,
        revision: int,
        status: OutboxStatus,
        at: datetime,
        phoenix_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        with self._lock:
            current = self._outbox.get(entry_id)
            if current is None or current.revision != revision:
                return False
            self._outbox[entry_id] = replace(
                current,
                **mirrored_fields(current, status, at, phoenix_id, error, next_attempt_at),
            )
            return True

    def count_outbox(
        self, *, status: OutboxStatus | None = "pending", project: str | None = None
    ) -> int:
        check_status(status)
        with self._lock:
            return sum(
                1
                for e in self._outbox.values()
                if (status is None or e.status == status)
                and (project is None or e.project == project)
            )
