"""Small shared pieces: content hashes, a TTL cache, and audit *streams*.

The feedback loop keeps no tables of its own. What it decides (the active guidance, the
risk priors, distilled instructions) is derived from collected reviews and *published*
as audit events whose ``request_id`` is a stream key such as ``hitl_feedback:guidance``.
Readers follow a stream incrementally (``list_audit(request_id=..., after_seq=...)``,
indexed in every backend) and keep the latest snapshot. Publishing version ``n`` of a
stream first claims ``"<stream>#<n>"`` in the execution journal, so two loops running
at once never publish the same step twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from ..policy.action import canonical_json
from ..review.spool import utc_now  # the review queue's clock; re-exported for the loop
from ..store.base import ApprovalStore
from ..store.records import AuditEvent

__all__ = [
    "DISTILL_STREAM",
    "GUIDANCE_STREAM",
    "RISK_STREAM",
    "StreamReader",
    "TTLCache",
    "content_hash",
    "publish",
    "utc_now",
]

GUIDANCE_STREAM = "hitl_feedback:guidance"
RISK_STREAM = "hitl_feedback:risk"
DISTILL_STREAM = "hitl_feedback:distill"

T = TypeVar("T")
logger = logging.getLogger("hitl_langgraph.feedback")


def content_hash(value: Any, prefix: str, length: int = 12) -> str:
    """``prefix`` + the first ``length`` hex digits of SHA-256 over canonical JSON."""
    return prefix + hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


class TTLCache(Generic[T]):
    """Holds one value for ``ttl`` seconds; thread-safe; keeps the last good value.

    Args:
        loader: Called to (re)load the value.
        ttl: Seconds a loaded value is served before the next call reloads it.
        monotonic: Injectable monotonic clock (seconds).
    """

    def __init__(
        self,
        loader: Callable[[], T],
        *,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self.ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: T | None = None
        self._has_value = False
        self._loaded_at: float | None = None
        self.loads = 0

    def stale(self) -> bool:
        """Whether the next :meth:`get` will call the loader."""
        at = self._loaded_at
        return at is None or self._monotonic() - at >= self.ttl

    def get(self) -> T:
        """The cached value, reloaded first when older than ``ttl``.

        If the loader raises and a previous value exists, the previous value is kept
        (and served until the next attempt, ``ttl`` later); with no previous value the
        exception propagates.
        """
        with self._lock:
            if not self.stale() and self._has_value:
                return self._value  # type: ignore[return-value]
            try:
                value = self._loader()
            except Exception as exc:
                if not self._has_value:
                    raise
                logger.warning("hitl_langgraph: reload failed, serving the last value: %r", exc)
                self._loaded_at = self._monotonic()
                return self._value  # type: ignore[return-value]
            self._value, self._has_value = value, True
            self._loaded_at = self._monotonic()
            self.loads += 1
            return value

    def invalidate(self) -> None:
        """Make the next :meth:`get` reload."""
        with self._lock:
            self._loaded_at = None


class StreamReader:
    """Follows one audit stream and remembers its latest event of one kind.

    Args:
        store: The approval store holding the audit trail.
        stream: The stream key (the events' ``request_id``).
        kind: The event name whose latest occurrence is kept.
    """

    def __init__(self, store: ApprovalStore, stream: str, kind: str) -> None:
        self.store = store
        self.stream = stream
        self.kind = kind
        self._seq = 0
        self._last: AuditEvent | None = None
        self._lock = threading.Lock()

    def latest(self) -> AuditEvent | None:
        """Read the events appended since the last call; return the latest ``kind``."""
        with self._lock:
            for ev in self.store.list_audit(request_id=self.stream, after_seq=self._seq):
                self._seq = max(self._seq, ev.seq or 0)
                if ev.event == self.kind:
                    self._last = ev
            return self._last

    def events(self) -> list[AuditEvent]:
        """Every event of the stream, oldest first (not cached)."""
        return self.store.list_audit(request_id=self.stream)


def publish(
    store: ApprovalStore,
    stream: str,
    kind: str,
    data: Mapping[str, Any],
    *,
    n: int,
    at: datetime,
    worker: str,
    before: Iterable[AuditEvent] = (),
    stale_after: timedelta = timedelta(minutes=5),
) -> bool:
    """Publish step ``n`` of ``stream`` once: claim it, append ``before``, then the event.

    The event (``kind``, ``data`` plus ``"n"``) is appended in the same transaction that
    closes the claim. A claim left ``running`` for longer than ``stale_after`` (a loop
    that crashed mid-publish) is released and taken over.

    Returns:
        ``True`` if this call published step ``n``; ``False`` if another one did.
    """
    key = f"{stream}#{n}"
    if not store.claim_execution(key, worker=worker, at=at):
        rec = store.get_execution(key)
        if rec is None or rec.state != "running" or at - rec.started_at < stale_after:
            return False
        store.release_execution(key)
        if not store.claim_execution(key, worker=worker, at=at):
            return False
    for ev in before:
        store.append_audit(ev)
    event = AuditEvent(event=kind, at=at, request_id=stream, actor=worker, data={**data, "n": n})
    store.finish_execution(key, state="done", at=at, audit=event)
    return True
