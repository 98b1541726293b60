"""The approval store interface: pending-approval index, execution journal, audit trail.

Every backend implements the abstract methods below with the same semantics; the
conformance suite in ``tests/test_store_conformance.py`` runs against each of them.

Rules every backend keeps:

* ``put_request`` inserts if absent and otherwise returns the stored row unchanged
  (replays of a node never overwrite a request or its decision).
* ``update_request(expected_status=...)`` is a compare-and-set: it applies the changes
  only if the stored status is still the expected one, atomically across threads and
  processes; otherwise it raises :class:`~hitl_langgraph.errors.AlreadyDecided`.
* ``claim_execution`` succeeds for exactly one caller per request id.
* An audit event passed along with a write is appended in the same transaction, so the
  trail never records a change that did not happen (or misses one that did).
* The audit trail is append-only and hash-chained (see :class:`AuditEvent`).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from .records import ApprovalRecord, AuditEvent, ExecutionRecord, audit_hash

__all__ = ["ApprovalStore", "AuditReport", "RequestFilter"]


@dataclass(frozen=True)
class RequestFilter:
    """Filters for :meth:`ApprovalStore.list_requests`; ``None`` means "any"."""

    status: tuple[str, ...] | None = ("pending",)
    thread_id: str | None = None
    tool: str | None = None
    route: str | None = None
    min_score: float | None = None
    role: str | None = None
    """Requests this role may decide: those with no ``approver_roles`` or listing it."""
    expires_before: datetime | None = None
    """Only requests with an ``expires_at`` strictly before this instant."""


@dataclass(frozen=True)
class AuditReport:
    """The result of :meth:`ApprovalStore.verify_audit`."""

    ok: bool
    events: int
    problems: list[str] = field(default_factory=list)
    head: str = ""


class ApprovalStore(ABC):
    """Base class of the memory, SQLite and Postgres stores."""

    url: str = ""

    # -- lifecycle -------------------------------------------------------------------
    def setup(self) -> None:  # noqa: B027 - optional hook
        """Create tables and indexes if missing. Idempotent."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> ApprovalStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------
    @abstractmethod
    def put_request(
        self, record: ApprovalRecord, *, audit: AuditEvent | None = None
    ) -> tuple[ApprovalRecord, bool]:
        """Insert ``record`` unless its id exists. Returns ``(stored_row, created)``.

        ``audit`` is appended (same transaction) only when the row was created."""

    @abstractmethod
    def get_request(self, request_id: str) -> ApprovalRecord | None:
        """The row with this id, or ``None``."""

    @abstractmethod
    def list_requests(
        self,
        filter: RequestFilter | None = None,
        *,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApprovalRecord]:
        """Rows matching ``filter``, ordered by ``(created_at, request_id)`` ascending,
        starting strictly after the ``after`` key (keyset pagination)."""

    @abstractmethod
    def count_requests(self, filter: RequestFilter | None = None) -> int:
        """How many rows match ``filter``."""

    @abstractmethod
    def update_request(
        self,
        request_id: str,
        *,
        expected_status: str | Sequence[str] | None = None,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> ApprovalRecord:
        """Apply ``changes`` (field names of :class:`ApprovalRecord`) and return the new row.

        With ``expected_status`` this is a compare-and-set; when the stored status
        differs, nothing changes and :class:`~hitl_langgraph.errors.AlreadyDecided` is
        raised naming the stored status and ``decided_by``. Raises
        :class:`~hitl_langgraph.errors.RequestNotFound` for an unknown id."""

    # -- execution journal -----------------------------------------------------------
    @abstractmethod
    def claim_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        """Claim the right to execute ``request_id``; ``True`` for exactly one caller."""

    @abstractmethod
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
    ) -> None:
        """Record the outcome of a claimed execution (``state`` is ``done`` or ``failed``)."""

    @abstractmethod
    def get_execution(self, request_id: str) -> ExecutionRecord | None:
        """The journal row, or ``None`` if never claimed."""

    @abstractmethod
    def release_execution(self, request_id: str) -> bool:
        """Delete a ``running`` claim (a crashed worker); ``True`` if one was removed."""

    # -- audit -----------------------------------------------------------------------
    @abstractmethod
    def append_audit(self, event: AuditEvent) -> AuditEvent:
        """Append ``event`` to the chain; returns it with ``seq``, ``prev_hash``, ``hash``."""

    @abstractmethod
    def list_audit(
        self, *, after_seq: int = 0, limit: int | None = None, request_id: str | None = None
    ) -> list[AuditEvent]:
        """Audit rows in chain order (``seq`` ascending)."""

    def verify_audit(self) -> AuditReport:
        """Recompute the chain; any edited, deleted or reordered row is reported."""
        problems: list[str] = []
        prev = ""
        count = 0
        expected_seq: int | None = None
        for ev in self.list_audit():
            count += 1
            if expected_seq is not None and ev.seq != expected_seq:
                problems.append(f"seq {expected_seq} missing before seq {ev.seq} (row deleted?)")
            expected_seq = (ev.seq or 0) + 1
            if ev.prev_hash != prev:
                problems.append(f"seq {ev.seq}: prev_hash does not match the previous row")
            if audit_hash(ev.prev_hash, ev) != ev.hash:
                problems.append(f"seq {ev.seq}: hash mismatch (row edited)")
            prev = ev.hash
        return AuditReport(ok=not problems, events=count, problems=problems, head=prev)

    # -- async twins (thread offload; backends may override) -------------------------
    async def aput_request(
        self, record: ApprovalRecord, *, audit: AuditEvent | None = None
    ) -> tuple[ApprovalRecord, bool]:
        return await asyncio.to_thread(self.put_request, record, audit=audit)

    async def aget_request(self, request_id: str) -> ApprovalRecord | None:
        return await asyncio.to_thread(self.get_request, request_id)

    async def alist_requests(
        self,
        filter: RequestFilter | None = None,
        *,
        limit: int = 100,
        after: tuple[datetime, str] | None = None,
    ) -> list[ApprovalRecord]:
        return await asyncio.to_thread(self.list_requests, filter, limit=limit, after=after)

    async def aupdate_request(
        self,
        request_id: str,
        *,
        expected_status: str | Sequence[str] | None = None,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> ApprovalRecord:
        return await asyncio.to_thread(
            lambda: self.update_request(
                request_id, expected_status=expected_status, audit=audit, **changes
            )
        )

    async def aappend_audit(self, event: AuditEvent) -> AuditEvent:
        return await asyncio.to_thread(self.append_audit, event)
