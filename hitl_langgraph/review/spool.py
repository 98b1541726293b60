"""The durable outbox: review requests and verdicts go to the store first, Phoenix second.

Every annotation this package sends to Phoenix is first written to the store as an
:class:`~hitl_langgraph.store.OutboxEntry`, in the same transaction as the decision or
verdict it mirrors. :meth:`Spool.sync` then sends the pending entries (``hitl sync``,
:class:`BackgroundSync` in a daemon thread, or the next run). An entry that could not be
sent stays pending with a backoff; one Phoenix refuses as malformed is marked
``failed`` and kept.

Exactly once: each entry carries its annotation's own identifier (``code:hitl``,
``human:<reviewer>``) and Phoenix upserts on (name, span, identifier). A send repeated
after a crash between the write and the bookkeeping updates the same Phoenix row; it
never adds a second one, and it never replaces anybody else's annotation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..clock import utc_now
from ..store.base import ApprovalStore
from ..store.review_records import OutboxEntry, annotation_key
from .phoenix_client import PhoenixClient, PhoenixError, PhoenixNotFound, PhoenixUnavailable

__all__ = ["BackgroundSync", "Spool", "SyncReport", "utc_now"]

logger = logging.getLogger("hitl_langgraph.review")


@dataclass
class SyncReport:
    """What one :meth:`Spool.sync` did."""

    attempted: int = 0
    mirrored: int = 0
    retrying: int = 0
    """Sent but not accepted yet (span not in Phoenix yet, Phoenix down or failing)."""
    failed: int = 0
    """Refused by Phoenix as malformed; kept with status ``failed``."""
    pending: int = 0
    """Entries still pending after this sync (including ones not due yet)."""
    unavailable: bool = False
    """Phoenix could not be reached; the rest waits for the next sync."""
    errors: list[str] = field(default_factory=list)

    def merge(self, other: SyncReport) -> None:
        self.attempted += other.attempted
        self.mirrored += other.mirrored
        self.retrying += other.retrying
        self.failed += other.failed
        self.unavailable = self.unavailable or other.unavailable
        self.errors.extend(other.errors)


class Spool:
    """Writes annotations to the store's outbox and mirrors them into Phoenix.

    Args:
        store: Where entries are kept (any backend).
        client: The Phoenix client; ``None`` spools without ever sending.
        project: Only sync this project's entries (``None``: all).
        clock: Returns an aware "now" (injectable for tests).
        batch_size: Annotations per ``POST /v1/span_annotations``.
        base_backoff, max_backoff: Retry delay after the n-th failed attempt is
            ``min(base * 2**n, max)`` seconds.
        orphan_after: An entry whose span Phoenix still does not hold this long after
            the entry was made (its trace was lost, say in an outage) is marked
            ``failed`` with that reason; the decision itself stays in the store.
    """

    def __init__(
        self,
        store: ApprovalStore,
        client: PhoenixClient | None,
        *,
        project: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        batch_size: int = 50,
        base_backoff: float = 1.0,
        max_backoff: float = 300.0,
        orphan_after: timedelta = timedelta(days=1),
    ) -> None:
        self.store = store
        self.client = client
        self.project = project
        self.clock = clock
        self.batch_size = max(1, batch_size)
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.orphan_after = orphan_after
        self._lock = threading.Lock()

    @staticmethod
    def entry(
        *,
        project: str,
        span_id: str,
        name: str,
        identifier: str,
        annotator_kind: str,
        result: Mapping[str, Any],
        metadata: Mapping[str, Any],
        now: datetime,
        request_id: str | None = None,
        delay: float = 0.0,
    ) -> OutboxEntry:
        """An outbox entry for one span annotation (the payload Phoenix takes)."""
        payload = {
            "span_id": span_id,
            "name": name,
            "annotator_kind": annotator_kind,
            "identifier": identifier,
            "result": {k: v for k, v in result.items() if v is not None},
            "metadata": dict(metadata),
        }
        return OutboxEntry(
            entry_id=annotation_key(project, span_id, name, identifier),
            project=project,
            span_id=span_id,
            name=name,
            identifier=identifier,
            payload=payload,
            created_at=now,
            updated_at=now,
            next_attempt_at=now + timedelta(seconds=delay) if delay > 0 else None,
            request_id=request_id,
        )

    def enqueue(self, entry: OutboxEntry) -> OutboxEntry:
        """Write ``entry`` to the outbox (no network)."""
        return self.store.put_outbox(entry)

    def _backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.base_backoff * 2 ** min(attempts, 30), self.max_backoff))

    def sync(
        self, *, limit: int = 1000, force: bool = False, project: str | None = None
    ) -> SyncReport:
        """Send pending entries to Phoenix; never raises for Phoenix trouble.

        Args:
            limit: At most this many entries.
            force: Also send entries whose backoff has not expired.
            project: Override the spool's project filter.
        """
        report = SyncReport()
        project = project or self.project
        if self.client is None:
            report.pending = self.store.count_outbox(project=project)
            return report
        with self._lock:  # one sync at a time per spool (the background thread and you)
            due = None if force else self.clock()
            entries = self.store.list_outbox(
                status="pending", due_at=due, project=project, limit=limit
            )
            for start in range(0, len(entries), self.batch_size):
                part = self._send(entries[start : start + self.batch_size])
                report.merge(part)
                if part.unavailable:
                    break
        report.pending = self.store.count_outbox(project=project)
        if report.errors:
            logger.info("hitl_langgraph review sync: %s", "; ".join(report.errors[:3]))
        return report

    def _send(self, batch: Sequence[OutboxEntry]) -> SyncReport:
        assert self.client is not None
        report = SyncReport(attempted=len(batch))
        try:
            ids = self.client.annotate_spans([e.payload for e in batch])
        except PhoenixUnavailable as exc:
            # not the entries' fault: leave them as they are (no backoff, no store writes
            # during an outage); the caller stops here and tries again later
            report.unavailable = True
            report.retrying = len(batch)
            report.errors.append(str(exc))
            return report
        except PhoenixError as exc:
            if len(batch) == 1:
                return self._failed_one(batch[0], exc, report)
            # isolate the entry (or entries) Phoenix refuses: send one by one
            report = SyncReport()
            for e in batch:
                part = self._send([e])
                report.merge(part)
                if part.unavailable:
                    break
            return report
        if len(ids) != len(batch):  # pragma: no cover - Phoenix returns one id per item
            ids = [*ids, *([""] * (len(batch) - len(ids)))]
        now = self.clock()
        for e, phoenix_id in zip(batch, ids, strict=True):
            self.store.mark_outbox(
                e.entry_id, revision=e.revision, status="mirrored", at=now, phoenix_id=phoenix_id
            )
            report.mirrored += 1
        return report

    def _failed_one(self, e: OutboxEntry, exc: PhoenixError, report: SyncReport) -> SyncReport:
        status = exc.status_code or 0
        missing = isinstance(exc, PhoenixNotFound)
        if missing and self.clock() - e.created_at >= self.orphan_after:
            exc = PhoenixNotFound(
                f"span {e.span_id} never reached Phoenix project {e.project!r} within "
                f"{self.orphan_after} (its trace was probably lost, e.g. in an outage): "
                f"{exc.detail}",
                status_code=404,
            )
        elif missing or status >= 500 or status in (401, 403, 408, 429):
            # 404: the span has not reached Phoenix yet (spans are exported in the
            # background); 5xx/auth/throttling: transient or fixable. Keep and retry.
            report.retrying += 1
            self._retry(e, f"{status}: {exc.detail}")
            return report
        report.failed += 1
        self.store.mark_outbox(
            e.entry_id, revision=e.revision, status="failed", at=self.clock(), error=str(exc)
        )
        report.errors.append(f"entry {e.entry_id} ({e.name} on span {e.span_id}): {exc}")
        return report

    def _retry(self, e: OutboxEntry, error: str) -> None:
        now = self.clock()
        self.store.mark_outbox(
            e.entry_id,
            revision=e.revision,
            status="pending",
            at=now,
            error=error[:1000],
            next_attempt_at=now + self._backoff(e.attempts),
        )


class BackgroundSync:
    """A daemon thread that runs :meth:`Spool.sync` soon after :meth:`notify` and every
    ``interval`` seconds while entries are pending (``idle_interval`` when none are;
    while Phoenix is unreachable the wait doubles up to ``idle_interval``).

    It starts with a sync, which sends what earlier runs left behind. It never blocks
    process exit: being a daemon, it dies with the interpreter, and whatever it had not
    sent yet is still in the store for the next run or ``hitl sync``.
    """

    def __init__(self, spool: Spool, *, interval: float = 2.0, idle_interval: float = 30.0) -> None:
        self.spool = spool
        self.interval = interval
        self.idle_interval = idle_interval
        self.last_report: SyncReport | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundSync:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hitl-review-sync", daemon=True)
            self._thread.start()
        return self

    def notify(self) -> None:
        """Ask for a sync now (non-blocking)."""
        self._wake.set()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread, waiting at most ``timeout`` seconds (an HTTP call in flight
        is abandoned; its entry simply stays pending)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        outages = 0
        while not self._stop.is_set():
            self._wake.clear()  # a notify() during the sync below triggers the next one
            wait = self.idle_interval
            try:
                report = self.spool.sync()
                self.last_report = report
                outages = outages + 1 if report.unavailable else 0
                if report.pending:  # Phoenix down: back off to idle_interval, 2x per try
                    wait = min(self.interval * 2 ** min(outages, 16), self.idle_interval)
            except Exception:  # a store outage must not kill the thread
                logger.exception("hitl_langgraph review: background sync failed")
                wait = self.interval
            self._wake.wait(wait)
