"""The async twin of an :class:`~hitl_langgraph.store.base.ApprovalStore`.

Design: :class:`AsyncStore` runs the synchronous store on **its own worker threads**
and awaits the result, so an event loop never blocks on sqlite3 or psycopg I/O. This
is exactly how ``aiosqlite`` works (one thread owns the connection, coroutines queue
calls to it), so for SQLite it is aiosqlite-equivalent: one worker, because the store
keeps one connection under a lock anyway. Postgres gets as many workers as its pool
has connections; the memory store one. The semantics (compare-and-set, claims,
audit chain) are the sync store's, so one conformance suite covers both twins.

Every async path of the package goes through it: the gates' ``aresolve`` /
``arun_once`` (the engine also runs its synchronous decision rounds on these threads,
since ``interrupt()`` validates a resume value synchronously), the inbox's ``a*``
methods, and the deployment helpers in :mod:`hitl_langgraph.server`.

``AsyncStore.of(store)`` gives the twin of a store (created once per store, so every
async path shares its threads); ``await open_async_store(url)`` opens a store and
returns its twin; ``twin.sync`` is the synchronous store.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from .base import ApprovalStore, AuditReport, RequestFilter
from .records import ApprovalRecord, AuditEvent, ExecutionRecord
from .review_records import (
    BudgetWindow,
    OutboxEntry,
    OutboxStatus,
    ReviewRecord,
    ReviewSample,
    ReviewStats,
)

__all__ = ["AsyncStore"]

T = TypeVar("T")


def _workers(store: ApprovalStore) -> int:
    """One thread per pooled connection (Postgres), else one (SQLite, memory)."""
    size = getattr(getattr(store, "_pool", None), "max_size", None)
    return max(1, size) if isinstance(size, int) else 1


class AsyncStore:
    """Awaitable methods with the names and semantics of the wrapped store's.

    Calls run on a dedicated thread pool (``hitl-store`` threads) with the caller's
    context variables, so nothing blocks the event loop.
    """

    def __init__(self, store: ApprovalStore, *, workers: int | None = None) -> None:
        self.sync = store
        self.workers = workers or _workers(store)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, store: ApprovalStore | AsyncStore) -> AsyncStore:
        """The one twin of ``store`` (created on first use and kept on the store)."""
        if isinstance(store, AsyncStore):
            return store
        twin = store.__dict__.get("_hitl_aio")
        if not isinstance(twin, AsyncStore):
            twin = store.__dict__.setdefault("_hitl_aio", cls(store))
        return twin

    def __repr__(self) -> str:
        return f"AsyncStore({self.sync!r}, workers={self.workers})"

    @property
    def url(self) -> str:
        return self.sync.url

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="hitl-store"
                )
            return self._executor

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the store's threads and await its result.

        The caller's context variables are copied (LangGraph's run config travels in
        them), so ``fn`` may call code that reads the current run, like ``interrupt()``.
        """
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool(), call)

    def shutdown(self) -> None:
        """Stop the worker threads (waits for calls in flight). Reopened on next use."""
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=True)

    async def aclose(self) -> None:
        """Close the wrapped store and stop the threads."""
        await self.run(self.sync.close)
        await asyncio.to_thread(self.shutdown)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- lifecycle -------------------------------------------------------------------
    async def setup(self) -> None:
        await self.run(self.sync.setup)

    # -- requests --------------------------------------------------------------------
    async def put_request(
        self, record: ApprovalRecord, *, audit: AuditEvent | None = None
    ) -> tuple[ApprovalRecord, bool]:
        return await self.run(self.sync.put_request, record, audit=audit)

    async def get_request(self, request_id: str) -> ApprovalRecord | None:
        return await self.run(self.sync.get_request, request_id)

    async def list_requests(
        self,
        filter: RequestFilter | None = None,
        *,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApprovalRecord]:
        return await self.run(self.sync.list_requests, filter, limit=limit, after=after)

    async def count_requests(self, filter: RequestFilter | None = None) -> int:
        return await self.run(self.sync.count_requests, filter)

    async def update_request(
        self,
        request_id: str,
        *,
        expected_status: str | Sequence[str] | None = None,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> ApprovalRecord:
        return await self.run(
            self.sync.update_request,
            request_id,
            expected_status=expected_status,
            audit=audit,
            **changes,
        )

    # -- execution journal -----------------------------------------------------------
    async def claim_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        return await self.run(self.sync.claim_execution, request_id, worker=worker, at=at)

    async def finish_execution(
        self,
        request_id: str,
        *,
        state: str,
        at: datetime,
        result_type: str | None = None,
        result: bytes | None = None,
        error: str | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        await self.run(
            self.sync.finish_execution,
            request_id,
            state=state,
            at=at,
            result_type=result_type,
            result=result,
            error=error,
            audit=audit,
        )

    async def get_execution(self, request_id: str) -> ExecutionRecord | None:
        return await self.run(self.sync.get_execution, request_id)

    async def release_execution(self, request_id: str) -> bool:
        return await self.run(self.sync.release_execution, request_id)

    # -- audit -----------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> AuditEvent:
        return await self.run(self.sync.append_audit, event)

    async def list_audit(
        self, *, after_seq: int = 0, limit: int | None = None, request_id: str | None = None
    ) -> list[AuditEvent]:
        return await self.run(
            self.sync.list_audit, after_seq=after_seq, limit=limit, request_id=request_id
        )

    async def verify_audit(self) -> AuditReport:
        return await self.run(self.sync.verify_audit)

    # -- review sampling -------------------------------------------------------------
    async def put_review_sample(
        self,
        sample: ReviewSample,
        *,
        budgets: Sequence[BudgetWindow] = (),
        outbox: OutboxEntry | None = None,
    ) -> tuple[ReviewSample, bool]:
        return await self.run(self.sync.put_review_sample, sample, budgets=budgets, outbox=outbox)

    async def get_review_sample(self, request_id: str) -> ReviewSample | None:
        return await self.run(self.sync.get_review_sample, request_id)

    async def list_review_samples(
        self,
        project: str | None = None,
        *,
        sampled: bool | None = True,
        reviewed: bool | None = False,
        span_ids: Sequence[str] | None = None,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ReviewSample]:
        return await self.run(
            self.sync.list_review_samples,
            project,
            sampled=sampled,
            reviewed=reviewed,
            span_ids=span_ids,
            limit=limit,
            after=after,
        )

    async def count_review_samples(
        self,
        project: str | None = None,
        *,
        sampled: bool | None = True,
        reviewed: bool | None = None,
        since: datetime | None = None,
        due_before: datetime | None = None,
    ) -> int:
        return await self.run(
            self.sync.count_review_samples,
            project,
            sampled=sampled,
            reviewed=reviewed,
            since=since,
            due_before=due_before,
        )

    async def review_stats(self, project: str, *, now: datetime) -> ReviewStats:
        return await self.run(self.sync.review_stats, project, now=now)

    # -- collected verdicts ----------------------------------------------------------
    async def put_review(
        self,
        review: ReviewRecord,
        *,
        closes: bool = False,
        outbox: Sequence[OutboxEntry] = (),
    ) -> tuple[ReviewRecord, bool]:
        return await self.run(self.sync.put_review, review, closes=closes, outbox=outbox)

    async def list_reviews(
        self,
        project: str | None = None,
        *,
        request_id: str | None = None,
        span_id: str | None = None,
        name: str | None = None,
        limit: int = 1000,
        after: tuple[datetime, str] | None = None,
    ) -> list[ReviewRecord]:
        return await self.run(
            self.sync.list_reviews,
            project,
            request_id=request_id,
            span_id=span_id,
            name=name,
            limit=limit,
            after=after,
        )

    # -- outbox ----------------------------------------------------------------------
    async def put_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        return await self.run(self.sync.put_outbox, entry)

    async def list_outbox(
        self,
        *,
        status: OutboxStatus | None = "pending",
        due_at: datetime | None = None,
        project: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        return await self.run(
            self.sync.list_outbox, status=status, due_at=due_at, project=project, limit=limit
        )

    async def mark_outbox(
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
        return await self.run(
            self.sync.mark_outbox,
            entry_id,
            revision=revision,
            status=status,
            at=at,
            phoenix_id=phoenix_id,
            error=error,
            next_attempt_at=next_attempt_at,
        )

    async def count_outbox(
        self, *, status: OutboxStatus | None = "pending", project: str | None = None
    ) -> int:
        return await self.run(self.sync.count_outbox, status=status, project=project)
