"""Approval stores: the pending-approval index, execution journal and audit trail.

Layer 2: may import ``policy`` (actions) and the foundation (``errors``, ``clock``).

``open_store(url)`` picks the backend from the URL scheme:

* ``memory://`` — in-process (tests, demos)
* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — stdlib sqlite3, WAL
* ``postgresql://user@host:5432/db`` — psycopg 3 (``pip install "hitl-langgraph[postgres]"``)

``AsyncStore.of(store)`` (or ``await open_async_store(url)``) is the store's async twin,
:class:`AsyncStore`: the same methods, awaitable, run on the store's own worker threads
(aiosqlite's design), so no async path blocks an event loop.

Every backend also keeps the asynchronous-review tables (sampling decisions, collected
verdicts, the Phoenix mirror outbox) used by ``hitl_langgraph.review``.
"""

from __future__ import annotations

from .aio import AsyncStore
from .base import ApprovalStore, AuditReport, RequestFilter
from .memory import MemoryStore
from .records import ApprovalRecord, AuditEvent, ExecutionRecord, RequestStatus
from .review_records import (
    BudgetWindow,
    OutboxEntry,
    OutboxStatus,
    ReviewRecord,
    ReviewSample,
    ReviewStats,
    annotation_key,
)
from .url import open_async_store, open_store

__all__ = [
    "ApprovalRecord",
    "ApprovalStore",
    "AsyncStore",
    "AuditEvent",
    "AuditReport",
    "BudgetWindow",
    "ExecutionRecord",
    "MemoryStore",
    "OutboxEntry",
    "OutboxStatus",
    "RequestFilter",
    "RequestStatus",
    "ReviewRecord",
    "ReviewSample",
    "ReviewStats",
    "annotation_key",
    "open_async_store",
    "open_store",
]
