"""A span processor whose flush, shutdown and process exit are really bounded.

The OpenTelemetry SDK's ``BatchSpanProcessor`` is fine while the collector is up. When it
is not, ``force_flush`` ignores its timeout and the OTLP exporter retries every batch with
backoff, so ``force_flush`` and process exit block for about 30 s, and thousands of
dropped spans produce a single log line. :class:`BoundedSpanProcessor` keeps the same
shape (a bounded queue, one daemon export thread) and adds:

* deadlines that hold: ``force_flush(t)`` and ``shutdown(t)`` return within ``t``
  seconds whatever the exporter does (a stuck export is abandoned to its daemon thread);
* a circuit breaker: after a failed export the thread waits 1, 2, 4 s (at most 5 s)
  before trying again instead of burning an export timeout on every batch, and at
  shutdown it does not try an endpoint that just failed;
* no re-sending: a batch the exporter reports failed (after its own retries) is
  counted as failed, not queued again; the queue keeps buffering the rest meanwhile;
* accounting: every span handed to the processor ends up counted as exported, failed
  (sent in a batch the exporter reported failed), dropped (queue full, after shutdown,
  or unsent at the shutdown deadline) or still queued; see :class:`TracingStats`;
* loss reports: a ``logging`` warning with the counts, at most one per ``warn_interval``
  seconds, and one summary at shutdown if anything was lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
    attach,
    detach,
    set_value,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["BoundedSpanProcessor", "TracingStats"]

logger = logging.getLogger("hitl_langgraph.tracing")

_BACKOFF_START = 1.0
_BACKOFF_MAX = 5.0
if TYPE_CHECKING:
    from .spool import SpanSpool

_IDLE_WAIT = 1.0  # batch=False: how long the thread sleeps when nothing happens


@dataclass(frozen=True)
class TracingStats:
    """Counts of spans handed to a processor, by fate.

    After shutdown, ``received == exported + failed + dropped + spooled``; before, the
    spans in ``queued`` and ``in_flight`` make up the difference.

    Attributes:
        received: Spans handed to the processor (sampled spans that ended).
        exported: Spans the collector accepted.
        failed: Spans sent in batches the exporter reported failed.
        dropped: Spans never sent: queue full, ended after shutdown, or still queued
            when the shutdown deadline passed (or the endpoint was failing).
        queued: Spans waiting in the queue now.
        in_flight: Spans in the batch being exported now.
        export_failures: Failed export calls (batches), not spans.
        spooled: Spans written to the on-disk spool (a failed export, or still queued
            at shutdown) instead of being lost; re-sent when the collector is back.
    """

    received: int = 0
    exported: int = 0
    failed: int = 0
    dropped: int = 0
    queued: int = 0
    in_flight: int = 0
    export_failures: int = 0
    spooled: int = 0

    @property
    def lost(self) -> int:
        """Spans that will never reach the collector: ``failed + dropped``."""
        return self.failed + self.dropped


class _FlushRequest:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class BoundedSpanProcessor(SpanProcessor):
    """Batch spans on a daemon thread; never block the caller past a deadline.

    Args:
        exporter: Where batches go (an OTLP exporter, or anything implementing
            ``SpanExporter``).
        max_queue_size: Spans kept while waiting for export; more are dropped (counted).
        max_export_batch_size: Spans per ``export()`` call.
        schedule_delay: Seconds between scheduled exports. ``0`` exports as soon as a
            span ends (still on the background thread, so a slow collector never
            blocks the caller).
        shutdown_timeout: Bound used when ``shutdown()`` is called without one (the
            SDK's own ``TracerProvider.shutdown()`` does that).
        warn_interval: Minimum seconds between two loss warnings.
        description: Named in warnings, typically the collector endpoint.
        close_exporter: Call ``exporter.shutdown()`` when the processor closes. Pass
            False for an exporter you own and reuse.
        spool: Where failed batches (and what is still queued at shutdown) go instead
            of being lost; re-sent after the next successful export, or when idle.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 8192,
        max_export_batch_size: int = 512,
        schedule_delay: float = 1.0,
        shutdown_timeout: float = 2.0,
        warn_interval: float = 10.0,
        description: str = "the collector",
        close_exporter: bool = True,
        spool: SpanSpool | None = None,
    ) -> None:
        self._exporter = exporter
        self._spool = spool
        self._owns_exporter = close_exporter
        self._max_queue = max_queue_size
        self._batch_size = max(1, min(max_export_batch_size, max_queue_size))
        self._delay = schedule_delay
        self._notify_at = 1 if schedule_delay <= 0 else self._batch_size
        self._shutdown_timeout = shutdown_timeout
        self._warn_interval = warn_interval
        self._description = description
        self._init_state()
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._after_fork)

            def _after_fork_in_child() -> None:
                method = ref()
                if method is not None:
                    method()

            os.register_at_fork(after_in_child=_after_fork_in_child)
        self._start_worker()

    # --- state ---------------------------------------------------------------------
    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[ReadableSpan] = deque()
        self._flush_requests: list[_FlushRequest] = []
        self._shutting_down = False
        self._deadline = 0.0
        self._exporter_closed = False
        self._abandoned = False
        self._retry_at = 0.0
        self._backoff = _BACKOFF_START
        self._received = 0
        self._exported = 0
        self._failed = 0
        self._dropped = 0
        self._in_flight = 0
        self._in_flight_batch: list[ReadableSpan] = []
        self._export_failures = 0
        self._spooled = 0
        self._spool_check = 0.0
        self._reported_lost = 0
        self._last_warn = -float("inf")

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name="hitl-span-export", daemon=True)
        self._worker.start()

    def _after_fork(self) -> None:
        shut = self._shutting_down
        self._init_state()  # the parent's queue and locks are not ours to use
        if shut:
            self._shutting_down = True
        else:
            self._start_worker()

    # --- SpanProcessor ---------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span, or count it as dropped; never blocks on I/O."""
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        with self._lock:
            self._received += 1
            if self._shutting_down or len(self._queue) >= self._max_queue:
                self._dropped += 1
                dropped = True
            else:
                self._queue.append(span)
                if len(self._queue) == self._notify_at:  # wake the thread once per batch
                    self._cond.notify()
                dropped = False
        if dropped:
            self._maybe_warn()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now; wait at most ``timeout_millis``.

        Returns:
            True if everything queued at the call was exported in time.
        """
        return self.flush(timeout_millis / 1000.0)

    def shutdown(self) -> None:
        """Bounded shutdown with the default timeout (``shutdown_timeout``)."""
        self.close(self._shutdown_timeout)

    # --- bounded API ------------------------------------------------------------------
    def flush(self, timeout: float) -> bool:
        """Ask the export thread to send everything queued; wait at most ``timeout`` s.

        A flush tries the endpoint even if the circuit breaker is open, but stops at the
        first failed batch.

        Returns:
            True if every span queued at the call was exported before the deadline.
        """
        request = _FlushRequest()
        with self._cond:
            if self._shutting_down:
                return not self._queue
            self._flush_requests.append(request)
            self._cond.notify()
        if not request.done.wait(max(0.0, timeout)):
            return False
        return request.ok

    def close(self, timeout: float) -> bool:
        """Send what is queued, within ``timeout`` seconds, then stop for good.

        If the deadline passes, the exporter is shut down (which makes the OTLP exporter
        abort its retry backoff) and the export thread is abandoned; it is a daemon
        thread and cannot hold up interpreter exit. Whatever was not exported by then
        is counted and reported in one warning.

        Returns:
            True if nothing was lost over the processor's lifetime.
        """
        start = time.monotonic()
        deadline = start + max(0.0, timeout)
        with self._cond:
            if self._shutting_down:
                return self._lost() == 0
            self._shutting_down = True
            self._deadline = deadline
            pending_flushes, self._flush_requests = self._flush_requests, []
            _abort_retries(self._exporter)
            self._cond.notify_all()
        for request in pending_flushes:
            request.done.set()  # ok stays False: their spans are handled by the drain
        # keep a small reserve for closing the exporter after the drain
        reserve = min(0.25, max(0.0, timeout) * 0.2)
        self._worker.join(max(0.0, deadline - reserve - time.monotonic()))
        self._close_exporter(max(0.05, deadline - time.monotonic()))
        if self._worker.is_alive():
            self._worker.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck: list[ReadableSpan] = []
            if self._worker.is_alive():  # stuck in export(): spool its batch too
                self._abandoned = True
                if self._spool is not None and self._in_flight:
                    stuck = self._in_flight_batch
                self._failed += self._in_flight - len(stuck)
                self._in_flight = 0
            # the stuck batch may still reach the collector later; Phoenix keeps one row
            # per span id, so spooling it as well is at-least-once, not a duplicate
            left = stuck + list(self._queue)
            self._queue.clear()
        if left:  # local disk, no network: well within the deadline
            if self._spool is not None and self._spool.write(left):
                with self._lock:
                    self._spooled += len(left)
            else:
                with self._lock:
                    self._dropped += len(left)
        self._report_summary()
        return self._lost() == 0

    def stats(self) -> TracingStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return TracingStats(
                received=self._received,
                exported=self._exported,
                failed=self._failed,
                dropped=self._dropped,
                queued=len(self._queue),
                in_flight=self._in_flight,
                export_failures=self._export_failures,
                spooled=self._spooled,
            )

    # --- export thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception:  # pragma: no cover - defensive: the thread must not die loudly
            logger.exception("hitl_langgraph span export thread failed")

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not (self._shutting_down or self._flush_requests):
                    self._cond.wait(self._wait_time())
                shutting_down = self._shutting_down
                flushes, self._flush_requests = self._flush_requests, []
            if shutting_down:
                self._drain_for_shutdown()
                return
            if flushes:
                ok = self._export_queued(limit=self._queued_now())
                for request in flushes:
                    request.ok = ok
                    request.done.set()
            elif time.monotonic() >= self._retry_at and self._export_queued(limit=None):
                self._resend_spool()

    def _wait_time(self) -> float:
        now = time.monotonic()
        if now < self._retry_at:
            return self._retry_at - now
        if len(self._queue) >= self._notify_at:  # a batch is ready (its notify was missed)
            return 0.0
        return _IDLE_WAIT if self._delay <= 0 else self._delay

    def _queued_now(self) -> int:
        with self._lock:
            return len(self._queue)

    def _export_queued(self, limit: int | None) -> bool:
        """Export batches until the queue is empty, ``limit`` spans went, or one fails."""
        remaining = limit
        while remaining is None or remaining > 0:
            if self._shutting_down and time.monotonic() >= self._deadline:
                return False
            with self._lock:
                size = self._batch_size if remaining is None else min(self._batch_size, remaining)
                batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
                self._in_flight = len(batch)
                self._in_flight_batch = list(batch)
            if not batch:
                return True
            if remaining is not None:
                remaining -= len(batch)
            if not self._export(batch):
                return False
        return True

    def _export(self, batch: Sequence[ReadableSpan]) -> bool:
        # like the SDK's processor: never trace the exporter's own HTTP calls
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            ok = self._exporter.export(batch) is SpanExportResult.SUCCESS
        except Exception:
            logger.debug("span exporter raised", exc_info=True)
            ok = False
        finally:
            detach(token)
        with self._lock:
            if self._abandoned:  # close() gave up on us and already counted this batch
                return False
            self._in_flight = 0
            if ok:
                self._exported += len(batch)
                self._backoff = _BACKOFF_START
                self._retry_at = 0.0
            else:
                self._export_failures += 1
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
        if not ok:
            spooled = self._spool is not None and self._spool.write(batch)
            with self._lock:
                if spooled:
                    self._spooled += len(batch)
                else:
                    self._failed += len(batch)
            self._maybe_warn()
        return ok

    def _resend_spool(self) -> None:
        """Re-send spooled files while the collector takes them (worker thread only)."""
        spool = self._spool
        now = time.monotonic()
        if spool is None or self._shutting_down or now < self._spool_check:
            return
        self._spool_check = now + 1.0  # look at the directory at most once a second
        if not spool.has_files():
            return
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            done = spool.resend(deadline=time.monotonic() + 5.0)
        except Exception:
            logger.debug("re-sending the span spool failed", exc_info=True)
            done = None
        finally:
            detach(token)
        if done is None:
            with self._lock:
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, _BACKOFF_MAX)

    def _drain_for_shutdown(self) -> None:
        while time.monotonic() < self._deadline:
            if time.monotonic() < self._retry_at:
                return  # the endpoint just failed: do not spend the deadline on it
            with self._lock:
                if not self._queue:
                    return
            if not self._export_queued(limit=self._batch_size):
                return

    # --- helpers ----------------------------------------------------------------------
    def _close_exporter(self, timeout: float) -> None:
        with self._lock:
            if self._exporter_closed or not self._owns_exporter:
                return
            self._exporter_closed = True
        _call_bounded(self._exporter.shutdown, timeout, "span exporter shutdown")

    def _lost(self) -> int:
        with self._lock:
            return self._failed + self._dropped

    def _maybe_warn(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_warn < self._warn_interval:
                return
            lost = self._failed + self._dropped
            new = lost - self._reported_lost
            if new <= 0:
                return
            self._last_warn = now
            self._reported_lost = lost
            failed, dropped = self._failed, self._dropped
        logger.warning(
            "hitl_langgraph tracing: %d spans lost since the last report (%d total: %d in "
            "failed exports to %s, %d dropped because the queue was full or tracing was "
            "shut down); the graph is unaffected",
            new,
            lost,
            failed,
            self._description,
            dropped,
        )

    def _report_summary(self) -> None:
        s = self.stats()
        if s.lost:
            logger.warning(
                "hitl_langgraph tracing shut down: %d of %d spans were not exported "
                "(%d in failed exports to %s, %d dropped); %d exported",
                s.lost,
                s.received,
                s.failed,
                self._description,
                s.dropped,
                s.exported,
            )
        if s.spooled:
            logger.warning(
                "hitl_langgraph tracing shut down: %d of %d spans could not be exported to "
                "%s and were spooled to %s; they are re-sent when it answers again",
                s.spooled,
                s.received,
                self._description,
                self._spool.directory if self._spool is not None else "?",
            )
        if not s.lost and not s.spooled:
            logger.debug("hitl_langgraph tracing shut down: %d spans exported", s.exported)


def _abort_retries(exporter: SpanExporter) -> None:
    """Make an OTLP exporter give up retrying instead of sleeping through its backoff.

    The OTLP/HTTP exporter retries a refused connection after 1 s, 2 s, ... within its
    timeout; at shutdown that backoff is pure waste. Its public ``shutdown()`` would
    also refuse every later batch, so set the event its retry loop watches instead (the
    attribute differs across versions; unknown exporters are left alone). Requests in
    progress are not cut: a healthy collector still gets the final batches.
    """
    holders = (exporter, getattr(exporter, "_client", None))
    for holder in holders:
        for name in ("_shutdown_event", "_shutdown_in_progress"):
            event = getattr(holder, name, None)
            if isinstance(event, threading.Event):
                event.set()


def _call_bounded(fn: Callable[[], object], timeout: float, what: str) -> bool:
    """Run ``fn`` on a daemon thread; wait at most ``timeout`` s. True if it finished."""

    def target() -> None:
        try:
            fn()
        except Exception:
            logger.debug("%s failed", what, exc_info=True)

    thread = threading.Thread(target=target, name="hitl-span-close", daemon=True)
    thread.start()
    thread.join(max(0.0, timeout))
    return not thread.is_alive()
