"""``ReviewSampler``: the gate observer that picks review-routed runs for human review.

Give it to the gate next to the span recorder::

    tracing = setup_tracing("support-agent")
    sampler = ReviewSampler(store, project="support-agent", client="http://127.0.0.1:6006")
    GatedToolNode(tools, policy=policy, store=store,
                  observers=[GateSpanRecorder(tracing), sampler])

For each ``executed`` event of an action routed ``review`` it draws the reproducible
sample, records the decision in the store (and on the tool's span), and, if sampled,
spools a ``review_request`` annotation for that span (annotator kind CODE, identifier
``code:hitl``, priority and due time in its metadata). Nothing in the agent's path talks
to Phoenix: a daemon thread mirrors the spool, so a slow or dead Phoenix never delays
or breaks a run. The observer never raises into the gate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final

from ..gates.events import GateEvent
from ..store.base import ApprovalStore
from ..store.review_records import OutboxEntry, ReviewSample
from .configs import CODE_IDENTIFIER, REVIEW_REQUEST_NAME
from .phoenix_client import PhoenixClient
from .sampling import ReviewSampling
from .spool import BackgroundSync, Spool, SyncReport, utc_now

__all__ = [
    "HITL_REVIEW_DRAW",
    "HITL_REVIEW_DUE_AT",
    "HITL_REVIEW_PRIORITY",
    "HITL_REVIEW_PROBABILITY",
    "HITL_REVIEW_REASON",
    "ReviewSampler",
    "review_request_entry",
]

logger = logging.getLogger("hitl_langgraph.review")

# span attributes of the sampling decision, next to ``hitl.review.sampled``
# (hitl_langgraph.tracing.attributes.HITL_REVIEW_SAMPLED); these are review-specific
HITL_REVIEW_PROBABILITY: Final = "hitl.review.probability"
HITL_REVIEW_DRAW: Final = "hitl.review.draw"
HITL_REVIEW_PRIORITY: Final = "hitl.review.priority"
HITL_REVIEW_DUE_AT: Final = "hitl.review.due_at"
HITL_REVIEW_REASON: Final = "hitl.review.reason"

TraceIds = Callable[[], "tuple[str, str] | None"]


def _default_trace_ids() -> TraceIds:
    try:
        from ..tracing import current_trace_ids
    except ImportError:  # the tracing extra is not installed: nothing to link to
        return lambda: None
    return current_trace_ids


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def review_request_entry(
    sample: ReviewSample, *, now: datetime, state: str = "pending", delay: float = 0.0
) -> OutboxEntry:
    """The ``review_request`` annotation of a sampled span (``state``: pending/reviewed).

    The label is the queue state, so the Phoenix UI can filter
    ``annotations['review_request'].label == 'pending'``; the score is the priority.
    """
    assert sample.span_id is not None
    explanation = (
        f"sampled for human review (p={sample.probability:.2f}, risk {sample.score:.2f}, "
        f"priority {sample.priority}); due {_iso(sample.due_at)}"
    )
    return Spool.entry(
        project=sample.project,
        span_id=sample.span_id,
        name=REVIEW_REQUEST_NAME,
        identifier=CODE_IDENTIFIER,
        annotator_kind="CODE",
        result={"label": state, "score": float(sample.priority), "explanation": explanation},
        metadata={
            "request_id": sample.request_id,
            "priority": sample.priority,
            "due_at": _iso(sample.due_at),
            "decided_at": _iso(sample.decided_at),
            "probability": sample.probability,
            "risk_score": sample.score,
            "tool": sample.tool,
            "thread_id": sample.thread_id,
            "policy_version": sample.policy_version,
            "trace_id": sample.trace_id,
        },
        now=now,
        request_id=sample.request_id,
        delay=delay,
    )


class ReviewSampler:
    """Gate observer: sample ``review``-routed executions and request their review.

    Args:
        store: Where decisions and the outbox live (the gate's store is fine).
        project: The Phoenix project the traces go to.
        sampling: Curve, budget, seed and SLA (default :class:`ReviewSampling` ``()``).
        client: Phoenix client or base URL for the background mirror; ``None`` only
            spools (send later with ``hitl sync``).
        background: Mirror in a daemon thread (started now: it first sends what
            earlier runs left in the outbox).
        sync_interval: Seconds between mirror attempts while entries are pending.
        first_attempt_delay: Seconds before the first send of a review request: the
            span is still open when the sample is drawn and reaches Phoenix later.
        trace_ids: Returns the current (trace id, span id); defaults to
            ``hitl_langgraph.tracing.current_trace_ids``.
        record_on_span: Write the decision as ``hitl.review.*`` attributes on the span.
        clock: Returns an aware "now".
    """

    def __init__(
        self,
        store: ApprovalStore,
        *,
        project: str,
        sampling: ReviewSampling | None = None,
        client: PhoenixClient | str | None = None,
        background: bool = True,
        sync_interval: float = 2.0,
        first_attempt_delay: float = 1.0,
        trace_ids: TraceIds | None = None,
        record_on_span: bool = True,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.project = project
        self.sampling = sampling or ReviewSampling()
        self.client = PhoenixClient(client) if isinstance(client, str) else client
        self.spool = Spool(store, self.client, project=project, clock=clock)
        self.first_attempt_delay = first_attempt_delay
        self.record_on_span = record_on_span
        self.clock = clock
        self._trace_ids = trace_ids or _default_trace_ids()
        self.worker: BackgroundSync | None = None
        if background and self.client is not None:
            self.worker = BackgroundSync(self.spool, interval=sync_interval).start()

    def __call__(self, event: GateEvent) -> None:
        """Handle one gate event; never raises."""
        try:
            if event.kind == "executed" and event.route == "review":
                self.observe(event)
        except Exception:
            logger.exception(
                "hitl_langgraph: review sampling failed for request %s",
                getattr(event, "request_id", "?"),
            )

    def observe(self, event: GateEvent) -> ReviewSample:
        """Draw, record and (if sampled) spool the review request; the stored decision."""
        now = self.clock()
        ids = self._trace_ids()
        decision = self.sampling.decide(event.request_id, event.score, now=now)
        sample = ReviewSample(
            request_id=event.request_id,
            project=self.project,
            sampled=decision.sampled,
            probability=decision.probability,
            draw=decision.draw,
            score=float(event.score),
            reason=decision.reason,
            decided_at=now,
            due_at=decision.due_at,
            priority=decision.priority,
            tool=event.tool,
            thread_id=event.thread_id,
            trace_id=ids[0] if ids else None,
            span_id=ids[1] if ids else None,
            policy_version=event.policy_version,
            metadata={"node": event.node, "reasons": list(event.reasons), "digest": event.digest},
        )
        outbox = (
            review_request_entry(sample, now=now, delay=self.first_attempt_delay)
            if sample.sampled and sample.span_id
            else None
        )
        stored, created = self.store.put_review_sample(
            sample, budgets=self.sampling.budgets(now), outbox=outbox
        )
        if self.record_on_span:
            _record_on_span(stored)
        if created and stored.sampled and outbox is not None and self.worker is not None:
            self.worker.notify()
        return stored

    def sync(self, *, force: bool = False) -> SyncReport:
        """Mirror the outbox now (see :meth:`Spool.sync`)."""
        return self.spool.sync(force=force)

    def flush(self, timeout: float = 2.0) -> bool:
        """Send this project's pending review requests now, for at most ``timeout`` s.

        Retries entries whose span Phoenix does not hold yet (spans arrive a little
        after they are exported) until the bound. ``setup_tracing(observers=[sampler])``
        calls it from ``TracingHandle.shutdown`` and at interpreter exit, after the
        spans were flushed, so a short script's review requests are delivered.

        Returns:
            True if nothing is left pending; what is left stays in the store for the
            next run or ``hitl sync``.
        """
        if self.client is None:
            return self.store.count_outbox(project=self.project) == 0
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            report = self.spool.sync(force=True)
            if report.pending == 0:
                return True
            if report.unavailable or time.monotonic() + 0.2 > deadline:
                return False
            time.sleep(0.2)

    def close(self, timeout: float = 1.0) -> None:
        """Stop the background mirror (bounded); pending entries stay in the store."""
        if self.worker is not None:
            self.worker.stop(timeout)


def _record_on_span(sample: ReviewSample) -> None:
    try:
        from ..tracing import current_span
        from ..tracing.attributes import HITL_REVIEW_SAMPLED
    except ImportError:
        return
    span = current_span()
    if span is None or not span.is_recording():
        return
    span.set_attributes(
        {
            HITL_REVIEW_SAMPLED: sample.sampled,
            HITL_REVIEW_PROBABILITY: sample.probability,
            HITL_REVIEW_DRAW: sample.draw,
            HITL_REVIEW_PRIORITY: sample.priority,
            HITL_REVIEW_DUE_AT: _iso(sample.due_at),
            HITL_REVIEW_REASON: sample.reason,
        }
    )
