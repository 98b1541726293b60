"""In-process store (``memory://``): the reference implementation, for tests and demos."""

from __future__ import annotations

import bisect
import fnmatch
import heapq
import itertools
import threading
from bisect import bisect_right, insort
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..errors import RequestNotFound
from ._common import already_decided, check_changes, expected_statuses, stage_audit, stream_of
from ._review_memory import MemoryReviewMixin
from .base import ApprovalStore, RequestFilter
from .chain import AuditHeads, StreamHead
from .records import ApprovalRecord, AuditEvent, ExecutionRecord

__all__ = ["MemoryStore", "matches_filter"]


def matches_filter(rec: ApprovalRecord, f: RequestFilter) -> bool:
    """Whether ``rec`` passes ``f`` (shared by the memory store and tests)."""
    if f.status is not None and rec.status not in f.status:
        return False
    if f.thread_id is not None and rec.thread_id != f.thread_id:
        return False
    if f.tool is not None and not fnmatch.fnmatchcase(rec.tool, f.tool):
        return False
    if f.route is not None and rec.route != f.route:
        return False
    if f.min_score is not None and rec.score < f.min_score:
        return False
    if f.role is not None and rec.approver_roles and f.role not in rec.approver_roles:
        return False
    return not (
        f.expires_before is not None
        and (rec.expires_at is None or not rec.expires_at < f.expires_before)
    )


_Key = tuple[datetime, str]


def _remove(keys: list[_Key], key: _Key) -> None:
    i = bisect_right(keys, key) - 1
    if i >= 0 and keys[i] == key:
        del keys[i]


def _tail(keys: list[_Key], after: _Key | None) -> Iterator[_Key]:
    """The keys of ``keys`` (sorted) strictly after ``after``, in order."""
    start = 0 if after is None else bisect_right(keys, after)
    for i in range(start, len(keys)):
        yield keys[i]


class MemoryStore(MemoryReviewMixin, ApprovalStore):
    """Keeps everything in dicts under one lock. Lost when the process exits.

    Requests are indexed like the SQL stores' tables: one sorted list of
    ``(created_at, request_id)`` keys for all rows and one per status, so a page of
    ``pending()`` reads only the rows it returns (plus the ones the other filters skip)
    and ``count()`` by status is the length of a list, not a scan and a sort.
    """

    def __init__(self) -> None:
        self.url = "memory://"
        self._lock = threading.RLock()
        self._requests: dict[str, ApprovalRecord] = {}
        self._keys: list[_Key] = []
        self._by_status: dict[str, list[_Key]] = {}
        self._executions: dict[str, ExecutionRecord] = {}
        self._audit: list[AuditEvent] = []
        self._audit_heads: dict[int, StreamHead] = {}
        self._audit_seq = 0  # the never-reused counter
        self._init_review()

    def put_request(
        self, record: ApprovalRecord, *, audit: AuditEvent | None = None
    ) -> tuple[ApprovalRecord, bool]:
        with self._lock:
            existing = self._requests.get(record.request_id)
            if existing is not None:
                return existing, False
            self._requests[record.request_id] = record
            self._index(record)
            if audit is not None:
                self._append(audit)
            return record, True

    def _index(self, rec: ApprovalRecord) -> None:
        key = (rec.created_at, rec.request_id)
        insort(self._keys, key)
        insort(self._by_status.setdefault(rec.status, []), key)

    def _unindex(self, rec: ApprovalRecord) -> None:
        key = (rec.created_at, rec.request_id)
        _remove(self._keys, key)
        _remove(self._by_status.get(rec.status, []), key)

    def get_request(self, request_id: str) -> ApprovalRecord | None:
        with self._lock:
            return self._requests.get(request_id)

    def _scan(self, f: RequestFilter, after: _Key | None) -> Iterator[ApprovalRecord]:
        """Matching rows in ``(created_at, request_id)`` order, after ``after``; the
        caller holds the lock and stops reading when it has enough."""
        lists = (
            [self._keys]
            if f.status is None
            else [self._by_status.get(s, []) for s in dict.fromkeys(f.status)]
        )
        runs = [_tail(keys, after) for keys in lists]
        ordered = runs[0] if len(runs) == 1 else heapq.merge(*runs)
        plain = f == RequestFilter(status=f.status)
        for _, request_id in ordered:
            rec = self._requests[request_id]
            if plain or matches_filter(rec, f):
                yield rec

    def list_requests(
        self,
        filter: RequestFilter | None = None,
        *,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApprovalRecord]:
        out: list[ApprovalRecord] = []
        if limit <= 0:
            return out
        with self._lock:
            for rec in self._scan(filter or RequestFilter(), after):
                out.append(rec)
                if len(out) >= limit:
                    break
        return out

    def count_requests(self, filter: RequestFilter | None = None) -> int:
        f = filter or RequestFilter()
        with self._lock:
            if f == RequestFilter(status=f.status):
                if f.status is None:
                    return len(self._keys)
                return sum(len(self._by_status.get(s, [])) for s in set(f.status))
            return sum(1 for _ in self._scan(f, None))

    def update_request(
        self,
        request_id: str,
        *,
        expected_status: str | Sequence[str] | None = None,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> ApprovalRecord:
        check_changes(changes)
        expected = expected_statuses(expected_status)
        with self._lock:
            current = self._requests.get(request_id)
            if current is None:
                raise RequestNotFound(request_id)
            if expected is not None and current.status not in expected:
                raise already_decided(request_id, current.status, current.decided_by)
            updated = replace(current, **changes)
            self._requests[request_id] = updated
            if (updated.status, updated.created_at) != (current.status, current.created_at):
                self._unindex(current)
                self._index(updated)
            if audit is not None:
                self._append(audit)
            return updated

    def claim_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        with self._lock:
            if request_id in self._executions:
                return False
            self._executions[request_id] = ExecutionRecord(
                request_id=request_id, state="running", worker=worker, started_at=at
            )
            return True

    def start_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        with self._lock:
            current = self._executions.get(request_id)
            if current is None or current.state != "running" or current.worker != worker:
                return False
            self._executions[request_id] = replace(current, state="started", started_at=at)
            return True

    def finish_execution(
        self,
        request_id: str,
        *,
        state: str,
        at: datetime,
        result_type: str | None = None,
        result: bytes | None = None,
        error: str | None = None,
        audit: AuditEvent | None = None,
        expected_state: str | Sequence[str] | None = None,
    ) -> bool:
        expected = expected_statuses(expected_state)
        with self._lock:
            current = self._executions.get(request_id)
            if current is None:
                raise RequestNotFound(request_id)
            if expected is not None and current.state not in expected:
                return False
            self._executions[request_id] = replace(
                current,
                state=state,  # type: ignore[arg-type]
                finished_at=at,
                result_type=result_type,
                result=result,
                error=error,
            )
            if audit is not None:
                self._append(audit)
            return True

    def get_execution(self, request_id: str) -> ExecutionRecord | None:
        with self._lock:
            return self._executions.get(request_id)

    def release_execution(self, request_id: str, *, worker: str | None = None) -> bool:
        with self._lock:
            current = self._executions.get(request_id)
            if current is None or current.state != "running":
                return False
            if worker is not None and current.worker != worker:
                return False
            del self._executions[request_id]
            return True

    def reopen_execution(
        self, request_id: str, *, expected_state: Sequence[str], audit: AuditEvent | None = None
    ) -> bool:
        with self._lock:
            current = self._executions.get(request_id)
            if current is None or current.state not in expected_state:
                return False
            del self._executions[request_id]
            if audit is not None:
                self._append(audit)
            return True

    def _append(self, event: AuditEvent) -> AuditEvent:
        stream = stream_of(event)
        head = self._audit_heads.get(stream)
        n, prev = (0, "") if head is None else (head.n, head.hash)
        seq = self._audit_seq + 1
        final = stage_audit(
            event,
            seq=seq,
            prev_hash=prev,
            stream=stream,
            stream_seq=n + 1,
            key=self._current_key(),
        )
        self._audit.append(final)
        self._audit_seq = seq
        self._audit_heads[stream] = StreamHead(stream, n + 1, final.hash, seq)
        return final

    def audit_heads(self) -> AuditHeads:
        with self._lock:
            return AuditHeads(dict(self._audit_heads), self._audit_seq)

    def append_audit(self, event: AuditEvent) -> AuditEvent:
        with self._lock:
            return self._append(event)

    def list_audit(
        self, *, after_seq: int = 0, limit: int | None = None, request_id: str | None = None
    ) -> list[AuditEvent]:
        with self._lock:
            start = bisect.bisect_right(self._audit, after_seq, key=lambda e: e.seq or 0)
            rows: list[AuditEvent] = []
            for e in itertools.islice(self._audit, start, None):
                if request_id is None or e.request_id == request_id:
                    rows.append(e)
                    if limit is not None and len(rows) >= limit:
                        break
        return rows

    # test hook: lets the tamper tests edit a row the way an attacker with DB access would
    def _tamper(self, seq: int, **changes: Any) -> None:
        with self._lock:
            idx = next(i for i, e in enumerate(self._audit) if e.seq == seq)
            self._audit[idx] = replace(self._audit[idx], **changes)
