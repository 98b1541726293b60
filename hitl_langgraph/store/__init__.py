"""Approval stores: the pending-approval index, execution journal and audit trail.

Layer 2: may import ``policy`` (actions) and the foundation (``errors``, ``clock``).

``open_store(url)`` picks the backend from the URL scheme:

* ``memory://`` — in-process (tests, demos)
* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — stdlib sqlite3, WAL
* ``postgresql://user@host:5432/db`` — psycopg 3 (``pip install "hitl-langgraph[postgres]"``)

Every backend also keeps the asynchronous-review tables (sampling decisions, collected
verdicts, the Phoenix mirror outbox) used by ``hitl_langgraph.review``.
"""

from __future__ import annotations

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
from .url import open_store

__all__ = [
    "ApprovalRecord",
    "ApprovalStore",
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
    "open_store",
]
