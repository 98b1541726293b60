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

For asynchronous review (``hitl_langgraph.review``) the store also keeps sampling
decisions, collected verdicts and the outbox of Phoenix mirror writes:

* ``put_review_sample`` inserts if absent (a replayed node gets the recorded decision)
  and enforces the review budget atomically with the insert;
* ``put_review`` and ``put_outbox`` upsert on the annotation key, never duplicate;
* an outbox entry passed along with a sample or a review is written in the same
  transaction, so a decision is never recorded without its mirror job (or vice versa).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ..errors import AuditError
from .chain import AuditHeads, ChainVerifier, StreamHead, check_anchor, make_anchor
from .keys import KeyProvider, StaticKey, audit_key_from_env
from .records import ApprovalRecord, AuditEvent, ExecutionRecord
from .review_records import (
    BudgetWindow,
    OutboxEntry,
    OutboxStatus,
    ReviewRecord,
    ReviewSample,
    ReviewStats,
)

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
    """The result of :meth:`ApprovalStore.verify_audit`.

    ``keyed``: rows were checked against the audit key (re-hashing is detected);
    ``notes``: what this verification could not detect; ``checkpoint``: the verified
    heads, to pass back as ``since=`` (or save with ``hitl audit verify --checkpoint``)
    so the next verification reads only what is new."""

    ok: bool
    events: int
    problems: list[str] = field(default_factory=list)
    head: str = ""
    keyed: bool = False
    notes: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None


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
    # States: ``running`` (claimed, the tool not called yet) -> ``started`` (written just
    # before the tool is called) -> ``done`` | ``failed``. A claim that never started may
    # be released and taken over safely (``start_execution`` is a compare-and-set, so a
    # worker whose claim was taken over never calls the tool); a started one is held for
    # a human (``hitl recover``).
    @abstractmethod
    def claim_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        """Claim the right to execute ``request_id``; ``True`` for exactly one caller."""

    @abstractmethod
    def start_execution(self, request_id: str, *, worker: str, at: datetime) -> bool:
        """Mark ``worker``'s claim as started (``started_at`` = ``at``), just before the
        tool is called. ``True`` only if the row is still ``running`` and claimed by
        ``worker`` (compare-and-set); otherwise nothing changes and the caller must not
        call the tool."""

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
        expected_state: str | Sequence[str] | None = None,
    ) -> bool:
        """Record the outcome of a claimed execution (``state`` is ``done`` or ``failed``).

        With ``expected_state`` only a row in one of those states is changed (and the
        audit appended); ``False`` if it was in another. Raises
        :class:`~hitl_langgraph.errors.RequestNotFound` if there is no row."""

    @abstractmethod
    def get_execution(self, request_id: str) -> ExecutionRecord | None:
        """The journal row, or ``None`` if never claimed."""

    @abstractmethod
    def release_execution(self, request_id: str, *, worker: str | None = None) -> bool:
        """Delete a ``running`` claim that never started (a crashed worker); with
        ``worker``, only that worker's claim. ``True`` if one was removed. Started and
        finished rows are never released here (see :meth:`reopen_execution`)."""

    @abstractmethod
    def reopen_execution(
        self, request_id: str, *, expected_state: Sequence[str], audit: AuditEvent | None = None
    ) -> bool:
        """Delete the row if its state is one of ``expected_state`` (a human chose to run a
        held or failed action again), appending ``audit`` in the same transaction."""

    # -- audit -----------------------------------------------------------------------
    @abstractmethod
    def append_audit(self, event: AuditEvent) -> AuditEvent:
        """Append ``event`` to the chain; returns it with ``seq``, ``prev_hash``, ``hash``."""

    @abstractmethod
    def list_audit(
        self, *, after_seq: int = 0, limit: int | None = None, request_id: str | None = None
    ) -> list[AuditEvent]:
        """Audit rows in chain order (``seq`` ascending)."""

    # -- audit key and heads ---------------------------------------------------------
    _audit_keys: KeyProvider | None = None
    _audit_keys_loaded = False

    def set_audit_key(self, keys: KeyProvider | bytes | str | None) -> None:
        """Key new audit rows with ``keys`` (a :class:`KeyProvider`, or the key itself);
        ``None`` turns keying off. By default the key comes from ``HITL_AUDIT_KEY`` /
        ``HITL_AUDIT_KEY_FILE``."""
        if isinstance(keys, (bytes, str)):
            keys = StaticKey(keys)
        self._audit_keys = keys
        self._audit_keys_loaded = True

    def audit_key(self) -> KeyProvider | None:
        """The audit key provider in use (loaded from the environment on first use)."""
        if not self._audit_keys_loaded:
            self._audit_keys = audit_key_from_env()
            self._audit_keys_loaded = True
        return self._audit_keys

    def _current_key(self) -> tuple[str, bytes] | None:
        keys = self.audit_key()
        return None if keys is None else keys.current()

    def audit_heads(self) -> AuditHeads:
        """The recorded head of every audit stream and the counter's last ``seq``."""
        raise NotImplementedError(f"{type(self).__name__} does not keep audit stream heads")

    def verify_audit(
        self,
        *,
        keys: KeyProvider | None = None,
        anchor: Mapping[str, Any] | None = None,
        since: Mapping[str, Any] | None = None,
        page: int = 5000,
    ) -> AuditReport:
        """Recompute every stream's chain in pages (flat memory) and compare its end with
        the recorded heads; any edited, deleted, reordered or truncated row is reported.

        ``keys``: the audit key (default: the store's); with one, every row's MAC is
        checked, so recomputing hashes without the key is detected. ``anchor``: a
        trusted anchor (``hitl audit anchor``); rows it covers must still be there,
        unchanged (detects truncation and wholesale deletion even when the heads were
        rewritten). ``since``: a checkpoint from an earlier report (``report.checkpoint``)
        to verify only rows appended after it."""
        keys = keys if keys is not None else self.audit_key()
        notes: list[str] = []
        anchor_heads: dict[int, StreamHead] = {}
        problems: list[str] = []
        if anchor is not None:
            anchor_heads, problems = check_anchor(anchor, keys=keys)
        start: dict[int, StreamHead] = {}
        if since is not None:
            start, bad = check_anchor(since, keys=keys)
            if bad:
                raise AuditError(
                    "the checkpoint is not trustworthy (" + "; ".join(bad) + "); verify from "
                    "the beginning (without since=/--checkpoint)"
                )
        heads = self.audit_heads()
        verifier = ChainVerifier(keys, start=start, limit=heads.streams, anchor=anchor_heads)
        after = min((h.seq for h in start.values()), default=0) if start else 0
        while True:
            rows = self.list_audit(after_seq=after, limit=page)
            for ev in rows:
                verifier.feed(ev)
                after = ev.seq or after
            if len(rows) < page:
                break
        after_heads = self.audit_heads().streams if verifier.tail else None
        problems += verifier.finish(heads.streams, after_heads)
        if verifier.events == 0 and not start and not heads.streams:
            if heads.last_seq > 0:
                problems.append(
                    f"the audit counter handed out {heads.last_seq} seq numbers but no rows "
                    "or heads remain: the audit trail was deleted"
                )
            n = self.count_requests(RequestFilter(status=None))
            if n:
                problems.append(
                    f"the store holds {n} requests but no audit events: the audit trail was deleted"
                )
        if keys is None:
            notes.append(
                "unkeyed: no audit key is configured, so re-hashing (editing rows and "
                "recomputing every hash) is not detected; set HITL_AUDIT_KEY"
            )
        elif verifier.unkeyed:
            notes.append(f"{verifier.unkeyed} rows are not keyed")
        if verifier.legacy:
            notes.append(
                f"{verifier.legacy} rows predate per-stream keyed chains (checked as one "
                "unkeyed chain)"
            )
        if anchor is None:
            notes.append(
                "no anchor given: deleting the newest rows together with their head rows "
                "is detected only against an anchor (hitl audit verify --anchor FILE)"
            )
        merged = {**start, **verifier.checkpoint_heads()}
        checkpoint = None
        if not problems:
            checkpoint = make_anchor(
                AuditHeads(merged, heads.last_seq),
                at=datetime.now(timezone.utc),
                keys=keys,
                note="verified checkpoint",
            )
        return AuditReport(
            ok=not problems,
            events=verifier.events,
            problems=problems,
            head=verifier.head,
            keyed=keys is not None,
            notes=notes,
            checkpoint=checkpoint,
        )

    # -- review sampling -------------------------------------------------------------
    @abstractmethod
    def put_review_sample(
        self,
        sample: ReviewSample,
        *,
        budgets: Sequence[BudgetWindow] = (),
        outbox: OutboxEntry | None = None,
    ) -> tuple[ReviewSample, bool]:
        """Record a sampling decision unless one exists for ``sample.request_id``.

        Returns ``(stored_row, created)``; an existing row is returned unchanged (so a
        replay keeps its first decision). When ``sample.sampled`` is true but some
        budget window already holds ``limit`` sampled rows of ``sample.project``
        decided at or after ``window.since``, the row is stored with ``sampled=False``
        and ``reason="budget <name> (<limit>) exhausted"``; the count and the insert are
        atomic across threads and processes. ``outbox`` is written (same transaction)
        only when the row is created and stays sampled."""

    @abstractmethod
    def get_review_sample(self, request_id: str) -> ReviewSample | None:
        """The sampling decision for ``request_id``, or ``None``."""

    @abstractmethod
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
        """Decisions ordered by ``(due_at, request_id)`` (oldest due first), starting
        strictly after the ``after`` key. ``None`` filters mean "any"; ``reviewed`` is
        whether ``reviewed_at`` is set."""

    @abstractmethod
    def count_review_samples(
        self,
        project: str | None = None,
        *,
        sampled: bool | None = True,
        reviewed: bool | None = None,
        since: datetime | None = None,
        due_before: datetime | None = None,
    ) -> int:
        """How many decisions match (``since``: ``decided_at >= since``;
        ``due_before``: ``due_at < due_before``)."""

    @abstractmethod
    def review_stats(self, project: str, *, now: datetime) -> ReviewStats:
        """Counts and the oldest pending item for ``project``'s review queue."""

    # -- collected verdicts ----------------------------------------------------------
    @abstractmethod
    def put_review(
        self,
        review: ReviewRecord,
        *,
        closes: bool = False,
        outbox: Sequence[OutboxEntry] = (),
    ) -> tuple[ReviewRecord, bool]:
        """Upsert ``review`` on ``review_id``. Returns ``(stored_row, changed)``.

        A new id is inserted. An existing row with the same content
        (:meth:`ReviewRecord.same_content`) is kept (``changed`` False; a missing
        ``phoenix_id`` is filled in). Different content replaces it only if
        ``review.updated_at`` is not older than the stored one. With ``closes`` the
        sample of ``review.request_id`` is marked reviewed (``reviewed_at`` =
        ``review.updated_at``, ``reviewed_by`` = ``review.reviewer``) if it was not yet.
        ``outbox`` entries are upserted in the same transaction (see
        :meth:`put_outbox`)."""

    @abstractmethod
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
        """Reviews ordered by ``(collected_at, review_id)``, after the ``after`` key."""

    # -- outbox (Phoenix mirror spool) -------------------------------------------------
    @abstractmethod
    def put_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        """Upsert a mirror job on ``entry_id`` and return the stored row.

        New ids are inserted as given. For an existing id with the same ``payload`` the
        stored row is returned unchanged (a mirrored entry stays mirrored). A different
        payload replaces it: ``revision`` + 1, ``status`` pending, ``attempts`` 0,
        ``next_attempt_at`` from ``entry``, ``last_error`` cleared."""

    @abstractmethod
    def list_outbox(
        self,
        *,
        status: OutboxStatus | None = "pending",
        due_at: datetime | None = None,
        project: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        """Entries ordered by ``(created_at, entry_id)``; with ``due_at`` only those whose
        ``next_attempt_at`` is unset or not after it."""

    @abstractmethod
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
        """Record a mirror attempt of ``revision``: ``attempts`` + 1, the new ``status``,
        ``last_error`` = ``error``; ``mirrored_at`` = ``at`` and ``phoenix_id`` when
        mirrored. Nothing changes (``False``) if the stored revision differs (the
        payload changed meanwhile and must be sent again) or the id is unknown."""

    @abstractmethod
    def count_outbox(
        self, *, status: OutboxStatus | None = "pending", project: str | None = None
    ) -> int:
        """How many entries have ``status`` (``None``: any)."""

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

    async def aput_review_sample(
        self,
        sample: ReviewSample,
        *,
        budgets: Sequence[BudgetWindow] = (),
        outbox: OutboxEntry | None = None,
    ) -> tuple[ReviewSample, bool]:
        return await asyncio.to_thread(
            lambda: self.put_review_sample(sample, budgets=budgets, outbox=outbox)
        )

    async def aput_review(
        self,
        review: ReviewRecord,
        *,
        closes: bool = False,
        outbox: Sequence[OutboxEntry] = (),
    ) -> tuple[ReviewRecord, bool]:
        return await asyncio.to_thread(
            lambda: self.put_review(review, closes=closes, outbox=outbox)
        )

    async def aput_outbox(self, entry: OutboxEntry) -> OutboxEntry:
        return await asyncio.to_thread(self.put_outbox, entry)
