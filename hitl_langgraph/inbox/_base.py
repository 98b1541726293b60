"""Shared state and helpers of the :class:`~hitl_langgraph.inbox.Inbox` mixins."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..clock import Clock
from ..errors import ConfigurationError
from ..gates.decisions import DECISION_ADAPTER, STATUS_OF
from ..notify.notifiers import Notification, Notifier, notify_all
from ..policy.risk import RiskPolicy
from ..store.aio import AsyncStore
from ..store.base import ApprovalStore, RequestFilter
from ..store.records import ApprovalRecord
from ._graph import ConfigHook
from .authority import Reviewer
from .results import DecisionResult

T = TypeVar("T")

__all__ = [
    "DECIDED_STATUSES",
    "DECISION_ADAPTER",
    "MAX_LIMIT",
    "RESUME_MARK",
    "STATUS_OF",
    "Committed",
    "InboxBase",
    "Prepared",
    "iter_requests",
]

logger = logging.getLogger("hitl_langgraph.inbox")

DECIDED_STATUSES: tuple[str, ...] = ("approved", "edited", "rejected", "responded", "expired")
"""Statuses of requests with a decision to apply to their thread."""
MAX_LIMIT = 1000
RESUME_MARK = "resume"
"""``metadata`` key of the resume marker: the inbox resuming a decision it recorded."""


def iter_requests(
    store: ApprovalStore, status: tuple[str, ...] | None, *, page: int
) -> Iterator[ApprovalRecord]:
    """Every request with one of ``status`` (``None``: any), oldest first, page by page."""
    after: tuple[datetime, str] | None = None
    while True:
        rows = store.list_requests(RequestFilter(status=status), limit=page, after=after)
        yield from rows
        if len(rows) < page:
            return
        after = (rows[-1].created_at, rows[-1].request_id)


@dataclass(frozen=True)
class Prepared:
    """A decision that passed every check and may be recorded."""

    record: ApprovalRecord
    reviewer: Reviewer
    kind: str
    decision: dict[str, Any]
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class Committed:
    record: ApprovalRecord
    kind: str
    outcome: str  # "final", "partial", "objection"
    approvals: int
    reviewer: Reviewer
    resumer: bool = False
    """This commit wrote the resume marker: this inbox, and no one else, resumes it."""


class InboxBase:
    """Attributes every inbox part relies on (set by :class:`Inbox.__init__`)."""

    store: ApprovalStore
    graph: Any
    clock: Clock
    notifiers: list[Notifier]
    separation_of_duties: bool
    reject_ends_quorum: bool
    policy: RiskPolicy | None
    escalation: tuple[Any, ...]
    resume_config: ConfigHook | None
    worker_id: str
    stale_after: timedelta
    _audit_seq: int
    _queue: OrderedDict[str, None]
    _watch: dict[str, datetime]

    async def _off(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` (store work) on the store's async twin's threads, off the loop."""
        return await AsyncStore.of(self.store).run(fn, *args, **kwargs)

    def _marked(self, metadata: Mapping[str, Any], at: datetime) -> dict[str, Any]:
        """``metadata`` plus this inbox's resume marker (when it holds a graph)."""
        if self.graph is None:
            return dict(metadata)
        return {**metadata, RESUME_MARK: {"by": self.worker_id, "at": at.isoformat()}}

    @staticmethod
    def _unmarked(metadata: Mapping[str, Any]) -> dict[str, Any]:
        """``metadata`` without a resume marker."""
        return {k: v for k, v in metadata.items() if k != RESUME_MARK}

    def _require_graph(self, what: str) -> Any:
        if self.graph is None:
            raise ConfigurationError(
                f"{what} resumes threads and needs the compiled graph: Inbox(store, graph) "
                "(CLI: --graph module:attribute)"
            )
        return self.graph

    def _result(
        self,
        done: Committed,
        outcome: str | None = None,
        output: Any = None,
        follow_ups: tuple[ApprovalRecord, ...] = (),
    ) -> DecisionResult:
        out = outcome or ("recorded" if done.outcome == "final" else done.outcome)
        return DecisionResult(
            request_id=done.record.request_id,
            decision=done.kind,
            outcome=out,  # type: ignore[arg-type]
            record=done.record,
            approvals=done.approvals,
            quorum=done.record.quorum,
            output=output,
            follow_ups=follow_ups,
        )

    def _notify(
        self,
        kind: str,
        rec: ApprovalRecord,
        at: datetime,
        *,
        decision: str | None = None,
        reviewer: Reviewer | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not self.notifiers:
            return
        try:
            n = Notification.from_record(
                kind,
                rec,
                at=at,
                decision=decision,
                reviewer=None if reviewer is None else reviewer.id,
                reviewer_roles=() if reviewer is None else reviewer.roles,
                reason=(rec.decision or {}).get("message"),
                extra=extra,
            )
        except Exception:
            logger.exception("could not build a %s notification", kind)
            return
        notify_all(self.notifiers, n)
