"""The review tables of :class:`~hitl_langgraph.store.sqlite.SqliteStore`.

Every write runs in the store's ``BEGIN IMMEDIATE`` transaction, so the budget count and
the insert of a sample, or a review and its outbox entries, are atomic across processes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ._common import dumps, equal_clauses, insert_sql, text_row, update_sql, where_sql
from ._common import text_dt as _dt
from ._common import text_ts as _ts
from ._review_common import (
    BOOL_FIELDS,
    JSON_FIELDS,
    OUTBOX_FIELDS,
    REVIEW_FIELDS,
    SAMPLE_FIELDS,
    TIME_FIELDS,
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

__all__ = ["SqliteReviewMixin"]

R = TypeVar("R", ReviewSample, ReviewRecord, OutboxEntry)


def _encode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return dumps(value)
    if name in TIME_FIELDS:
        return _ts(value, name)
    if name in BOOL_FIELDS:
        return int(bool(value))
    return value


def _values(record: Any, names: Sequence[str]) -> list[Any]:
    return [_encode(n, getattr(record, n)) for n in names]


def _decode(cls: type[R], names: Sequence[str], row: sqlite3.Row) -> R:
    return text_row(
        cls,
        names,
        row,
        json_fields=JSON_FIELDS,
        time_fields=TIME_FIELDS,
        bool_fields=BOOL_FIELDS,
    )


_INSERT_SAMPLE = insert_sql("hitl_review_samples", SAMPLE_FIELDS, "request_id", "?")
_INSERT_REVIEW = insert_sql("hitl_reviews", REVIEW_FIELDS, "review_id", "?")
_INSERT_OUTBOX = insert_sql("hitl_outbox", OUTBOX_FIELDS, "entry_id", "?")
_UPDATE_REVIEW = update_sql("hitl_reviews", REVIEW_FIELDS[1:], "review_id", "?")
_UPDATE_OUTBOX = update_sql("hitl_outbox", OUTBOX_FIELDS[1:], "entry_id", "?")


def _sample_where(
    project: str | None,
    sampled: bool | None,
    reviewed: bool | None,
    since: datetime | None = None,
    due_before: datetime | None = None,
    span_ids: Sequence[str] | None = None,
    after: tuple[datetime, str] | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if project is not None:
        clauses.append("project = ?")
        params.append(project)
    if sampled is not None:
        clauses.append("sampled = ?")
        params.append(int(sampled))
    if reviewed is not None:
        clauses.append("reviewed_at IS NOT NULL" if reviewed else "reviewed_at IS NULL")
    if since is not None:
        clauses.append("decided_at >= ?")
        params.append(_ts(since, "since"))
    if due_before is not None:
        clauses.append("due_at < ?")
        params.append(_ts(due_before, "due_before"))
    if span_ids is not None:
        clauses.append(f"span_id IN ({', '.join('?' * len(span_ids))})" if span_ids else "0")
        params.extend(span_ids)
    if after is not None:
        clauses.append("(due_at, request_id) > (?, ?)")
        params.extend([_ts(after[0], "after"), after[1]])
    return where_sql(clauses), params


class SqliteReviewMixin:
    """Review sampling, verdicts and outbox for the SQLite store."""

    if TYPE_CHECKING:

        def _write(self, action: str) -> AbstractContextManager[sqlite3.Connection]: ...

        def _read(self, action: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...

    # -- samples ------------------------------------------------------------------------
    def put_review_sample(
        self,
        sample: ReviewSample,
        *,
        budgets: Sequence[BudgetWindow] = (),
        outbox: OutboxEntry | None = None,
    ) -> tuple[ReviewSample, bool]:
        with self._write("record the review sampling decision") as conn:
            row = conn.execute(
                "SELECT * FROM hitl_review_samples WHERE request_id = ?", (sample.request_id,)
            ).fetchone()
            if row is not None:
                return _decode(ReviewSample, SAMPLE_FIELDS, row), False
            if sample.sampled:
                for window in budgets:
                    where, params = _sample_where(sample.project, True, None, since=window.since)
                    used = conn.execute(
                        f"SELECT COUNT(*) FROM hitl_review_samples{where}", params
                    ).fetchone()[0]
                    if used >= window.limit:
                        sample = replace(sample, sampled=False, reason=budget_reason(window))
                        break
            conn.execute(_INSERT_SAMPLE, _values(sample, SAMPLE_FIELDS))
            if outbox is not None and sample.sampled:
                self._put_outbox(conn, outbox)
        return sample, True

    def get_review_sample(self, request_id: str) -> ReviewSample | None:
        rows = self._read(
            "read the review sample",
            "SELECT * FROM hitl_review_samples WHERE request_id = ?",
            (request_id,),
        )
        return _decode(ReviewSample, SAMPLE_FIELDS, rows[0]) if rows else None

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
        where, params = _sample_where(project, sampled, reviewed, span_ids=span_ids, after=after)
        sql = f"SELECT * FROM hitl_review_samples{where} ORDER BY due_at, request_id LIMIT ?"
        rows = self._read("list review samples", sql, [*params, limit])
        return [_decode(ReviewSample, SAMPLE_FIELDS, r) for r in rows]

    def count_review_samples(
        self,
        project: str | None = None,
        *,
        sampled: bool | None = True,
        reviewed: bool | None = None,
        since: datetime | None = None,
        due_before: datetime | None = None,
    ) -> int:
        where, params = _sample_where(project, sampled, reviewed, since, due_before)
        rows = self._read(
            "count review samples", f"SELECT COUNT(*) FROM hitl_review_samples{where}", params
        )
        return int(rows[0][0])

    def review_stats(self, project: str, *, now: datetime) -> ReviewStats:
        rows = self._read(
            "compute review stats",
            "SELECT COUNT(*) AS sampled, COUNT(reviewed_at) AS reviewed, "
            "SUM(CASE WHEN reviewed_at IS NULL AND due_at < ? THEN 1 ELSE 0 END) AS past_due, "
            "MIN(CASE WHEN reviewed_at IS NULL THEN decided_at END) AS oldest, "
            "MIN(CASE WHEN reviewed_at IS NULL THEN due_at END) AS next_due "
            "FROM hitl_review_samples WHERE project = ? AND sampled = 1",
            (_ts(now, "now"), project),
        )
        r = rows[0]
        sampled, reviewed = int(r["sampled"]), int(r["reviewed"])
        return ReviewStats(
            sampled=sampled,
            reviewed=reviewed,
            pending=sampled - reviewed,
            past_due=int(r["past_due"] or 0),
            oldest_pending_at=_dt(r["oldest"]),
            next_due_at=_dt(r["next_due"]),
        )

    # -- reviews ------------------------------------------------------------------------
    def put_review(
        self,
        review: ReviewRecord,
        *,
        closes: bool = False,
        outbox: Sequence[OutboxEntry] = (),
    ) -> tuple[ReviewRecord, bool]:
        with self._write("store the review") as conn:
            changed, stored = True, review
            if conn.execute(_INSERT_REVIEW, _values(review, REVIEW_FIELDS)).rowcount == 0:
                row = conn.execute(
                    "SELECT * FROM hitl_reviews WHERE review_id = ?", (review.review_id,)
                ).fetchone()
                kept = kept_review(_decode(ReviewRecord, REVIEW_FIELDS, row), review)
                if kept is not None:
                    changed, stored = False, kept
                    if kept.phoenix_id != row["phoenix_id"]:
                        conn.execute(
                            "UPDATE hitl_reviews SET phoenix_id = ? WHERE review_id = ?",
                            (kept.phoenix_id, review.review_id),
                        )
                else:
                    conn.execute(
                        _UPDATE_REVIEW,
                        [*_values(review, REVIEW_FIELDS[1:]), review.review_id],
                    )
            if closes and review.request_id is not None:
                conn.execute(
                    "UPDATE hitl_review_samples SET reviewed_at = ?, reviewed_by = ? "
                    "WHERE request_id = ? AND reviewed_at IS NULL",
                    (_ts(review.updated_at, "updated_at"), review.reviewer, review.request_id),
                )
            for entry in outbox:
                self._put_outbox(conn, entry)
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
        clauses, params = equal_clauses(
            [
                ("project", project),
                ("request_id", request_id),
                ("span_id", span_id),
                ("name", name),
            ],
            "?",
        )
        if after is not None:
            clauses.append("(collected_at, review_id) > (?, ?)")
            params.extend([_ts(after[0], "after"), after[1]])
        where = where_sql(clauses)
        sql = f"SELECT * FROM hitl_reviews{where} ORDER BY collected_at, review_id LIMIT ?"
        rows = self._read("list reviews", sql, [*params, limit])
        return [_decode(ReviewRecord, REVIEW_FIELDS, r) for r in rows]

    # -- outbox -------------------------------------------------------------------------
    def _put_outbox(self, conn: sqlite3.Connection, entry: OutboxEntry) -> OutboxEntry:
        entry = normalized(entry)
        if conn.execute(_INSERT_OUTBOX, _values(entry, OUTBOX_FIELDS)).rowcount == 1:
            return entry
        row = conn.execute(
            "SELECT * FROM hitl_outbox WHERE entry_id = ?", (entry.entry_id,)
        ).fetchone()
        existing = _decode(OutboxEntry, OUTBOX_FIELDS, row)
        if existing.payload == entry.payload:
            return existing
        updated = replaced_outbox(existing, entry)
        self._update_outbox(conn, updated)
        return updated

    @staticmethod
    def _update_outbox(conn: sqlite3.Connection, entry: OutboxEntry) -> None:
        conn.execute(
            _UPDATE_OUTBOX,
            [*_values(entry, OUTBOX_FIELDS[1:]), entry.entry_id],
        )

    def put_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        with self._write("queue the Phoenix mirror") as conn:
            return self._put_outbox(conn, entry)

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
        clauses, params = equal_clauses([("status", status), ("project", project)], "?")
        if due_at is not None:
            clauses.append("(next_attempt_at IS NULL OR next_attempt_at <= ?)")
            params.append(_ts(due_at, "due_at"))
        where = where_sql(clauses)
        sql = f"SELECT * FROM hitl_outbox{where} ORDER BY created_at, entry_id LIMIT ?"
        rows = self._read("list the outbox", sql, [*params, limit])
        return [_decode(OutboxEntry, OUTBOX_FIELDS, r) for r in rows]

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
        with self._write("record the mirror attempt") as conn:
            row = conn.execute(
                "SELECT * FROM hitl_outbox WHERE entry_id = ? AND revision = ?",
                (entry_id, revision),
            ).fetchone()
            if row is None:
                return False
            current = _decode(OutboxEntry, OUTBOX_FIELDS, row)
            changes = mirrored_fields(current, status, at, phoenix_id, error, next_attempt_at)
            self._update_outbox(conn, replace(current, **changes))
            return True

    def count_outbox(
        self, *, status: OutboxStatus | None = "pending", project: str | None = None
    ) -> int:
        check_status(status)
        clauses, params = equal_clauses([("status", status), ("project", project)], "?")
        sql = f"SELECT COUNT(*) FROM hitl_outbox{where_sql(clauses)}"
        rows = self._read("count the outbox", sql, params)
        return int(rows[0][0])
