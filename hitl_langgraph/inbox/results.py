"""What the inbox returns: pages, decision results and the reports of its sweeps."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .._display_hooks import html_for
from ..errors import ConfigurationError
from ..store.records import ApprovalRecord

__all__ = [
    "ApplyReport",
    "DecisionResult",
    "Escalation",
    "Page",
    "ReconcileReport",
    "SweepReport",
    "decode_cursor",
    "encode_cursor",
]


def encode_cursor(record: ApprovalRecord) -> str:
    """An opaque cursor pointing just after ``record`` in ``(created_at, request_id)`` order."""
    raw = json.dumps([record.created_at.isoformat(), record.request_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, rid = json.loads(raw)
        return datetime.fromisoformat(created), str(rid)
    except Exception as exc:
        raise ConfigurationError(
            f"cursor {cursor!r} is not one returned by Inbox.pending() (Page.next_cursor)"
        ) from exc


@dataclass(frozen=True)
class Page:
    """One page of pending requests; pass ``next_cursor`` to get the next one."""

    items: list[ApprovalRecord]
    next_cursor: str | None = None

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def _repr_html_(self) -> str | None:
        more = " (more: pass next_cursor)" if self.next_cursor else ""
        return html_for("records", self.items, title=f"Pending approvals{more}")


Outcome = Literal["resumed", "recorded", "partial", "objection"]


@dataclass(frozen=True)
class DecisionResult:
    """What a decision did.

    ``outcome``:

    * ``"resumed"`` - recorded, and the thread was resumed here; ``output`` is what
      ``graph.invoke`` returned (``follow_ups`` lists requests an edit created);
    * ``"recorded"`` - recorded durably but not resumed here: no graph is attached (a
      worker's :meth:`Inbox.apply_decided` will apply it) or another worker already
      claimed the resume;
    * ``"partial"`` - one approval of a quorum was counted; more are needed;
    * ``"objection"`` - a rejection on a quorum request when rejections do not end it.
    """

    request_id: str
    decision: str
    outcome: Outcome
    record: ApprovalRecord
    approvals: int = 0
    quorum: int = 1
    output: Any = None
    follow_ups: tuple[ApprovalRecord, ...] = ()

    @property
    def resumed(self) -> bool:
        return self.outcome == "resumed"

    @property
    def final(self) -> bool:
        """The request is decided (not waiting for more approvals)."""
        return self.outcome in ("resumed", "recorded")

    def pending_interrupts(self) -> list[Any]:
        if isinstance(self.output, dict):
            return list(self.output.get("__interrupt__", ()))
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "decision": self.decision,
            "outcome": self.outcome,
            "status": self.record.status,
            "decided_by": self.record.decided_by,
            "thread_id": self.record.thread_id,
            "approvals": self.approvals,
            "quorum": self.quorum,
            "resumed": self.resumed,
            "interrupts_pending": len(self.pending_interrupts()),
            "follow_ups": [r.request_id for r in self.follow_ups],
        }


@dataclass
class ApplyReport:
    """What :meth:`Inbox.apply_decided` did in one call."""

    applied: list[str] = field(default_factory=list)
    """Requests whose recorded decision this worker resumed."""
    not_pending: list[str] = field(default_factory=list)
    """Decided requests whose thread no longer waits for them (nothing to resume)."""
    reverted: list[str] = field(default_factory=list)
    """Decisions the graph refused (an edit failing the tool schema): set back to pending."""
    errors: dict[str, str] = field(default_factory=dict)
    """Resumes that raised; the claim was released so a later call retries."""
    outputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "not_pending": self.not_pending,
            "reverted": self.reverted,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class Escalation:
    """One escalation step applied to one request."""

    request_id: str
    step: int
    added_roles: tuple[str, ...]
    approver_roles: tuple[str, ...]


@dataclass
class SweepReport:
    """What :meth:`Inbox.sweep` did: requests expired, escalations applied."""

    expired: list[DecisionResult] = field(default_factory=list)
    escalated: list[Escalation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expired": [r.to_dict() for r in self.expired],
            "escalated": [
                {
                    "request_id": e.request_id,
                    "step": e.step,
                    "added_roles": list(e.added_roles),
                    "approver_roles": list(e.approver_roles),
                }
                for e in self.escalated
            ],
        }


@dataclass
class ReconcileReport:
    """What :meth:`Inbox.reconcile` found and changed."""

    checked_requests: int = 0
    checked_threads: int = 0
    cancelled: list[str] = field(default_factory=list)
    """Pending requests whose interrupt no longer exists: marked ``cancelled``."""
    inserted: list[str] = field(default_factory=list)
    """Pending interrupts that had no request row: rows inserted from the interrupt."""
    relinked: list[str] = field(default_factory=list)
    """Pending requests found under another interrupt id: ``interrupt_id`` updated."""
    applied: list[str] = field(default_factory=list)
    """Decided requests whose interrupt was still pending (resume lost or crashed): resumed."""
    skipped_recent: list[str] = field(default_factory=list)
    """Requests changed within the grace period (a run may be in flight): left alone."""
    awaiting_rerun: list[str] = field(default_factory=list)
    """Pending requests without an interrupt whose thread's next step re-runs the node
    that asks for them (crashed before checkpointing it): left pending; re-drive it."""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.cancelled or self.inserted or self.relinked or self.applied)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_requests": self.checked_requests,
            "checked_threads": self.checked_threads,
            "cancelled": self.cancelled,
            "inserted": self.inserted,
            "relinked": self.relinked,
            "applied": self.applied,
            "skipped_recent": self.skipped_recent,
            "awaiting_rerun": self.awaiting_rerun,
            "errors": self.errors,
        }
