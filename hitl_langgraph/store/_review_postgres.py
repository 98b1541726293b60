"""The review tables of :class:`~hitl_langgraph.store.postgres.PostgresStore`.

A sample insert takes a transaction-scoped advisory lock per project before counting the
budget, so concurrent workers never overspend it; reviews and outbox entries are upserts
on their annotation key, written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg.types.json import Jsonb

from ._common import (
    aware,
    dumps,
    equal_clauses,
    insert_sql,
    native_row,
    update_sql,
    utc,
    where_sql,
)
from ._review_common import (
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

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresReviewMixin"]

_BUDGET_LOCK = 0x68_69_74_03  # "hit" + 3 (int4): with hashtext(project), one lock per project

R = TypeVar("R", ReviewSample, ReviewRecord, OutboxEntry)


def _encode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return Jsonb(value, dumps=dumps)
    if name in TIME_FIELDS:
        return None if value is None else utc(value, name)
    return value


def _values(record: Any, names: Sequence[str]) -> list[Any]:
    return [_encode(n, getattr(record, n)) for n in names]


def _decode(cls: type[R], names: Sequence[str], row: dict[str, Any]) -> R:
    return native_row(cls, names, row, time_fields=TIME_FIELDS)


def _insert(table: str, names: Sequence[str], key: str) -> str:
    return insert_sql(table, names, key, "%s") + f" RETURNING {key}"


_INSERT_SAMPLE = _insert("hitl_review_samples", SAMPLE_FIELDS, "request_id")
_INSERT_REVIEW = _insert("hitl_reviews", REVIEW_FIELDS, "review_id")
_INSERT_OUTBOX = _insert("hitl_outbox", OUTBOX_FIELDS, "entry_id")
_UPDATE_REVIEW = update_sql("hitl_reviews", REVIEW_FIELDS[1:], "review_id", "%s")
_UPDATE_OUTBOX = update_sql("hitl_outbox", OUTBOX_FIELDS[1:], "entry_id", "%s")


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
        clauses.append("project = %s")
        params.append(project)
    if sampled is not None:
        clauses.append("sampled = %s")
        params.append(sampled)
    if reviewed is not None:
        clauses.append("reviewed_at IS NOT NULL" if reviewed else "reviewed_at IS NULL")
    if since is not None:
        clauses.append("decided_at >= %s")
        params.append(utc(since, "since"))
    if due_before is not None:
        clauses.append("due_at < %s")
        params.append(utc(due_before, "due_before"))
    if span_ids is not None:
        clauses.append("span_id = ANY(%s)")
        params.append(list(span_ids))
    if after is not None:
        clauses.append("(due_at, request_id) > (%s, %s)")
        params.extend([utc(after[0], "after"), after[1]])
    return where_sql(clauses), params


class PostgresReviewMixin:
    """Review sampling, verdicts and outbox for the PostgreSQL store."""

    if TYPE_CHECKING:

        def _tx(self, action: str) -> AbstractContextManager[psycopg.Cursor[dict[str, Any]]]: ...

    # -- samples ------------------------------------------------------------------------
    def put_review_sample(
        self,
        sample: ReviewSample,
        *,
        budgets: Sequence[BudgetWindow] = (),
        outbox: OutboxEntry | None = None,
    ) -> tuple[ReviewSample, bool]:
        with self._tx("record the review sampling decision") as cur:
            cur.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_BUDGET_LOCK, sample.project)
            )
            cur.execute(
                "SELECT * FROM hitl_review_samples WHERE request_id = %s", (sample.request_id,)
            )
            row = cur.fetchone()
            if row is not None:
                return _decode(ReviewSample, SAMPLE_FIELDS, row), False
            if sample.sampled:
                for window in budgets:
                    where, params = _sample_where(sample.project, True, None, since=window.since)
                    cur.execute(f"SELECT COUNT(*) AS n FROM hitl_review_samples{where}", params)
                    counted = cur.fetchone()
                    if counted is not None and int(counted["n"]) >= window.limit:
                        sample = replace(sample, sampled=False, reason=budget_reason(window))
                        break
            cur.execute(_INSERT_SAMPLE, _values(sample, SAMPLE_FIELDS))
            if cur.fetchone() is None:  # inserted meanwhile under another project's lock
                cur.execute(
                    "SELECT * FROM hitl_review_samples WHERE request_id = %s",
                    (sample.request_id,),
                )
                raced = cur.fetchone()
                if raced is not None:
                    return _decode(ReviewSample, SAMPLE_FIELDS, raced), False
            if outbox is not None and sample.sampled:
                self._put_outbox(cur, outbox)
        return sample, True

    def get_review_sample(self, request_id: str) -> ReviewSample | None:
        with self._tx("read the review sample") as cur:
            cur.execute("SELECT * FROM hitl_review_samples WHERE request_id = %s", (request_id,))
            row = cur.fetchone()
        return None if row is None else _decode(ReviewSample, SAMPLE_FIELDS, row)

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
        sql = f"SELECT * FROM hitl_review_samples{where} ORDER BY due_at, request_id LIMIT %s"
        with self._tx("list review samples") as cur:
            cur.execute(sql, [*params, limit])
            return [_decode(ReviewSample, SAMPLE_FIELDS, r) for r in cur.fetchall()]

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
        with self._tx("count review samples") as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM hitl_review_samples{where}", params)
            row = cur.fetchone()
        return int(row["n"]) if row else 0

    def review_stats(self, project: str, *, now: datetime) -> ReviewStats:
        with self._tx("compute review stats") as cur:
            cur.execute(
                "SELECT COUNT(*) AS sampled, COUNT(reviewed_at) AS reviewed, "
                "COUNT(*) FILTER (WHERE reviewed_at IS NULL AND due_at < %s) AS past_due, "
                "MIN(decided_at) FILTER (WHERE reviewed_at IS NULL) AS oldest, "
                "MIN(due_at) FILTER (WHERE reviewed_at IS NULL) AS next_due "
                "FROM hitl_review_samples WHERE project = %s AND sampled",
                (utc(now, "now"), project),
            )
            r = cur.fetchone()
        if r is None:  # pragma: no cover - an aggregate always returns a row
            return ReviewStats(0, 0, 0, 0, None, None)
        sampled, reviewed = int(r["sampled"]), int(r["reviewed"])
        return ReviewStats(
            sampled=sampled,
            reviewed=reviewed,
            pending=sampled - reviewed,
            past_due=int(r["past_due"]),
            oldest_pending_at=aware(r["oldest"]),
            next_due_at=aware(r["next_due"]),
        )

    # -- reviews ------------------------------------------------------------------------
    def put_review(
        self,
        review: ReviewRecord,
        *,
        closes: bool = False,
        outbox: Sequence[OutboxEntry] = (),
    ) -> tuple[ReviewRecord, bool]:
        with self._tx("store the review") as cur:
            cur.execute(_INSERT_REVIEW, _values(review, REVIEW_FIELDS))
            changed, stored = True, review
            if cur.fetchone() is None:
                cur.execute(
                    "SELECT * FROM hitl_reviews WHERE review_id = %s FOR UPDATE",
                    (review.review_id,),
                )
                row = cur.fetchone()
                if row is None:  # pragma: no cover - the conflicting row cannot vanish
                    raise RuntimeError(f"review {review.review_id!r} conflicted but is gone")
                kept = kept_review(_decode(ReviewRecord, REVIEW_FIELDS, row), review)
                if kept is not None:
                    changed, stored = False, kept
                    if kept.phoenix_id != row["phoenix_id"]:
                        cur.execute(
                            "UPDATE hitl_reviews SET phoenix_id = %s WHERE review_id = %s",
                            (kept.phoenix_id, review.review_id),
                        )
                else:
                    cur.execute(
                        _UPDATE_REVIEW,
                        [*_values(review, REVIEW_FIELDS[1:]), review.review_id],
                    )
            if closes and review.request_id is not None:
                cur.execute(
                    "UPDATE hitl_review_samples SET reviewed_at = %s, reviewed_by = %s "
                    "WHERE request_id = %s AND reviewed_at IS NULL",
                    (utc(review.updated_at, "updated_at"), review.reviewer, review.request_id),
                )
            for entry in outbox:
                self._put_outbox(cur, entry)
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
            "%s",
        )
        if after is not None:
            clauses.append("(collected_at, review_id) > (%s, %s)")
            params.extend([utc(after[0], "after"), after[1]])
        where = where_sql(clauses)
        sql = f"SELECT * FROM hitl_reviews{where} ORDER BY collected_at, review_id LIMIT %s"
        with self._tx("list reviews") as cur:
            cur.execute(sql, [*params, limit])
            return [_decode(ReviewRecord, REVIEW_FIELDS, r) for r in cur.fetchall()]

    # -- outbox -------------------------------------------------------------------------
    def _put_outbox(self, cur: psycopg.Cursor[dict[str, Any]], entry: OutboxEntry) -> OutboxEntry:
        entry = normalized(entry)
        cur.execute(_INSERT_OUTBOX, _values(entry, OUTBOX_FIELDS))
        if cur.fetchone() is not None:
            return entry
        cur.execute("SELECT * FROM hitl_outbox WHERE entry_id = %s FOR UPDATE", (entry.entry_id,))
        row = cur.fetchone()
        if row is None:  # pragma: no cover - the conflicting row cannot vanish
            raise RuntimeError(f"outbox entry {entry.entry_id!r} conflicted but is gone")
        existing = _decode(OutboxEntry, OUTBOX_FIELDS, row)
        if existing.payload == entry.payload:
            return existing
        updated = replaced_outbox(existing, entry)
        self._update_outbox(cur, updated)
        return updated

    @staticmethod
    def _update_outbox(cur: psycopg.Cursor[dict[str, Any]], entry: OutboxEntry) -> None:
        cur.execute(
            _UPDATE_OUTBOX,
            [*_values(entry, OUTBOX_FIELDS[1:]), entry.entry_id],
        )

    def put_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        with self._tx("queue the Phoenix mirror") as cur:
            return self._put_outbox(cur, entry)

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
        clauses, params = equal_clauses([("status", status), ("project", project)], "%s")
        if due_at is not None:
            clauses.append("(next_attempt_at IS NULL OR next_attempt_at <= %s)")
            params.append(utc(due_at, "due_at"))
        sql = (
            f"SELECT * FROM hitl_outbox{where_sql(clauses)} ORDER BY created_at, entry_id LIMIT %s"
        )
        with self._tx("list the outbox") as cur:
            cur.execute(sql, [*params, limit])
            return [_decode(OutboxEntry, OUTBOX_FIELDS, r) for r in cur.fetchall()]

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
        with self._tx("record the mirror attempt") as cur:
            cur.execute(
                "SELECT * FROM hitl_outbox WHERE entry_id = %s AND revision = %s FOR UPDATE",
                (entry_id, revision),
            )
            row = cur.fetchone()
            if row is None:
                return False
            current = _decode(OutboxEntry, OUTBOX_FIELDS, row)
            changes = mirrored_fields(current, status, at, phoenix_id, error, next_attempt_at)
            self._update_outbox(cur, replace(current, **changes))
            return True

    def count_outbox(
        self, *, status: OutboxStatus | None = "pending", project: str | None = None
    ) -> int:
        check_status(status)
        clauses, params = equal_clauses([("status", status), ("project", project)], "%s")
        with self._tx("count the outbox") as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM hitl_outbox{where_sql(clauses)}", params)
            row = cur.fetchone()
        return int(row["n"]) if row else 0
