"""Remediation: when a review says an executed action was wrong, run its compensator once.

:class:`CompensationRunner` runs the compensator of an executed action whose collected
human verdict is incorrect/unsafe (and no one judged it correct: conflicting verdicts
hold it for a human). It is idempotent by request id: the right to compensate is a claim
on ``"compensate:" + request_id`` in the store's execution journal, so it runs once even
with two loops racing. A failing compensator is retried ``max_attempts`` times with
exponential backoff (injectable ``sleep``); every failed attempt is audited
(``compensation_attempt_failed``), the final failure is recorded in the journal, audited
(``compensation_failed``), logged as an error, annotated on the reviewed span and
returned as a :class:`CompensationFailed` in the outcome, and listed again on every
later run (:meth:`CompensationRunner.outstanding`), never silently dropped. A success is
audited (``compensated``) and annotated on the span (``hitl_compensation``, annotator
CODE) through the store's outbox, which the review package mirrors into Phoenix.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ..errors import ConfigurationError
from ..store.base import ApprovalStore
from ..store.records import ApprovalRecord, AuditEvent
from ..store.review_records import ReviewRecord
from ._streams import utc_now
from .compensate import CompensationRequest, Compensations, Registered, default_compensations
from .context import ReviewContext
from .errors import CompensationFailed
from .guidance import VERDICT_NAME

__all__ = ["CompensationOutcome", "CompensationRunner", "Status"]

logger = logging.getLogger("hitl_langgraph.feedback")
Status = Literal[
    "compensated",
    "failed",
    "already_done",
    "already_failed",
    "in_progress",
    "held",
    "not_executed",
    "no_compensator",
]


@dataclass(frozen=True)
class CompensationOutcome:
    """What happened to one wrong, executed action."""

    request_id: str
    tool: str
    status: Status
    compensator: str | None = None
    attempts: int = 0
    result: Any = None
    error: CompensationFailed | None = None
    detail: str = ""


@dataclass
class CompensationRunner:
    """Runs compensators for actions reviews marked wrong (see the module docstring).

    Args:
        store: The approval store (requests, journal, audit, outbox).
        registry: The compensators (default: the module's default registry).
        max_attempts: Calls per action before giving up.
        backoff: Seconds before the second attempt; doubled each time.
        max_backoff: Upper bound of one wait.
        sleep: Injectable sleep.
        clock: Injectable wall clock.
        annotate: Write a ``hitl_compensation`` span annotation through the outbox.
        raise_on_failure: Raise :class:`CompensationFailed` instead of returning it.
    """

    store: ApprovalStore
    registry: Compensations = field(default_factory=lambda: default_compensations)
    max_attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = utc_now
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:compensate"
    )
    annotate: bool = True
    annotation_name: str = "hitl_compensation"
    identifier: str = "code:hitl_compensation"
    verdict_name: str = VERDICT_NAME
    wrong_labels: frozenset[str] = frozenset({"incorrect", "unsafe"})
    right_labels: frozenset[str] = frozenset({"correct"})
    human_only: bool = True
    raise_on_failure: bool = False
    _serde: JsonPlusSerializer = field(default_factory=JsonPlusSerializer, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be >= 1, got {self.max_attempts!r}")

    @staticmethod
    def key(request_id: str) -> str:
        """The journal key of a compensation."""
        return "compensate:" + request_id

    def verdicts_by_request(
        self, reviews: Sequence[ReviewRecord], contexts: Mapping[str, ReviewContext] | None = None
    ) -> dict[str, list[ReviewRecord]]:
        """Human verdicts grouped by the request they judge."""
        out: dict[str, list[ReviewRecord]] = {}
        for r in reviews:
            if r.name != self.verdict_name or (self.human_only and r.annotator_kind != "HUMAN"):
                continue
            ctx = (contexts or {}).get(r.review_id)
            rid = r.request_id or (ctx.request_id if ctx else None)
            if rid:
                out.setdefault(rid, []).append(r)
        return out

    def run_all(
        self, reviews: Sequence[ReviewRecord], contexts: Mapping[str, ReviewContext] | None = None
    ) -> list[CompensationOutcome]:
        """Compensate every executed action with a wrong verdict (each at most once)."""
        out = []
        for rid, verdicts in sorted(self.verdicts_by_request(reviews, contexts).items()):
            if any(v.label in self.wrong_labels for v in verdicts):
                out.append(self.run(rid, verdicts))
        return out

    def outstanding(self, request_ids: Sequence[str]) -> list[str]:
        """The ids among ``request_ids`` whose compensation failed for good."""
        return [
            r
            for r in request_ids
            if (e := self.store.get_execution(self.key(r))) and e.state == "failed"
        ]

    def _executed(self, rec: ApprovalRecord) -> tuple[bool, Any]:
        ex = self.store.get_execution(rec.request_id)
        if ex is not None:
            if ex.state != "done":
                return False, None
            if ex.result_type is None:
                return True, None
            return True, self._serde.loads_typed((ex.result_type, ex.result or b""))
        return rec.status == "review", None  # route review runs without a journal row

    def run(self, request_id: str, verdicts: Sequence[ReviewRecord]) -> CompensationOutcome:
        """Compensate one action if it ran, was judged wrong, and is not yet compensated."""
        rec = self.store.get_request(request_id)
        if rec is None:
            return CompensationOutcome(request_id, "", "not_executed", detail="unknown request")
        reg = self.registry.get(rec.tool)
        if reg is None:
            return CompensationOutcome(request_id, rec.tool, "no_compensator")
        wrong = [v for v in verdicts if v.label in self.wrong_labels]
        if any(v.label in self.right_labels for v in verdicts):
            return CompensationOutcome(
                request_id, rec.tool, "held", reg.name, detail="conflicting verdicts"
            )
        if not wrong:
            return CompensationOutcome(
                request_id, rec.tool, "held", reg.name, detail="no wrong verdict"
            )
        ran, result = self._executed(rec)
        if not ran:
            return CompensationOutcome(request_id, rec.tool, "not_executed", reg.name)
        key = self.key(request_id)
        if not self.store.claim_execution(key, worker=self.worker_id, at=self.clock()):
            existing = self.store.get_execution(key)
            state = None if existing is None else existing.state
            status: Status = {"done": "already_done", "failed": "already_failed"}.get(
                state or "", "in_progress"
            )  # type: ignore[assignment]
            return CompensationOutcome(
                request_id,
                rec.tool,
                status,
                reg.name,
                detail=str(existing and existing.error or ""),
            )
        return self._attempts(rec, reg, wrong, result)

    def _attempts(
        self, rec: ApprovalRecord, reg: Registered, wrong: list[ReviewRecord], result: Any
    ) -> CompensationOutcome:
        reviewers = tuple(sorted({v.reviewer or v.identifier or "anonymous" for v in wrong}))
        base = {
            "tool": rec.tool,
            "compensator": reg.name,
            "review_ids": sorted(v.review_id for v in wrong),
            "span_ids": sorted({v.span_id for v in wrong}),
            "reviewers": list(reviewers),
        }
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            req = CompensationRequest(
                request_id=rec.request_id,
                tool=rec.tool,
                args=dict(rec.args),
                result=result,
                verdicts=tuple(wrong),
                reviewers=reviewers,
                explanation=next((v.explanation for v in wrong if v.explanation), None),
                attempt=attempt,
                record=rec,
            )
            try:
                value = reg.fn(req)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self.store.append_audit(
                    self._audit(
                        "compensation_attempt_failed",
                        rec,
                        {**base, "attempt": attempt, "error": error},
                    )
                )
                if attempt < self.max_attempts:
                    self.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
                continue
            type_, blob = self._serde.dumps_typed(value)
            data = {**base, "attempts": attempt, "result": repr(value)[:500]}
            self.store.finish_execution(
                self.key(rec.request_id),
                state="done",
                at=self.clock(),
                result_type=type_,
                result=blob,
                audit=self._audit("compensated", rec, data),
            )
            self._annotate(
                wrong[0], rec, "compensated", f"{reg.name} ran: {repr(value)[:300]}", data
            )
            return CompensationOutcome(
                rec.request_id, rec.tool, "compensated", reg.name, attempt, value
            )
        data = {**base, "attempts": self.max_attempts, "error": error}
        self.store.finish_execution(
            self.key(rec.request_id),
            state="failed",
            at=self.clock(),
            error=error,
            audit=self._audit("compensation_failed", rec, data),
        )
        self._annotate(
            wrong[0], rec, "failed", f"{reg.name} failed {self.max_attempts}x: {error}", data
        )
        logger.error(
            "hitl_langgraph: compensating %s (%s) failed %d times: %s",
            rec.request_id,
            rec.tool,
            self.max_attempts,
            error,
        )
        err = CompensationFailed(
            f"compensator {reg.name} for {rec.tool} ({rec.request_id}) failed "
            f"{self.max_attempts} times: {error}",
            request_id=rec.request_id,
            attempts=self.max_attempts,
        )
        if self.raise_on_failure:
            raise err
        return CompensationOutcome(
            rec.request_id, rec.tool, "failed", reg.name, self.max_attempts, error=err, detail=error
        )

    def _audit(self, event: str, rec: ApprovalRecord, data: dict[str, Any]) -> AuditEvent:
        return AuditEvent(
            event=event,
            at=self.clock(),
            request_id=rec.request_id,
            thread_id=rec.thread_id,
            actor=self.worker_id,
            data=data,
        )

    def _annotate(
        self,
        verdict: ReviewRecord,
        rec: ApprovalRecord,
        label: str,
        text: str,
        data: dict[str, Any],
    ) -> None:
        if not self.annotate:
            return
        from ..review.spool import Spool  # the review package's outbox entry format

        self.store.put_outbox(
            Spool.entry(
                project=verdict.project,
                span_id=verdict.span_id,
                name=self.annotation_name,
                identifier=self.identifier,
                annotator_kind="CODE",
                result={
                    "label": label,
                    "score": 1.0 if label == "compensated" else 0.0,
                    "explanation": text,
                },
                metadata={
                    "request_id": rec.request_id,
                    **{k: v for k, v in data.items() if k != "result"},
                },
                now=self.clock(),
                request_id=rec.request_id,
            )
        )
