"""Rows the approval store keeps: requests, executions, audit events."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from .._display_hooks import html_for
from ..policy.action import canonical_json

__all__ = [
    "FINAL_STATUSES",
    "LEGACY_STREAM",
    "ApprovalRecord",
    "AuditEvent",
    "ExecutionRecord",
    "RequestStatus",
    "audit_hash",
]

LEGACY_STREAM = -1
"""The stream of rows written before per-stream chains (one global chain)."""

RequestStatus = Literal[
    "pending",  # waiting for a human (route approve)
    "approved",
    "edited",
    "rejected",
    "responded",
    "expired",
    "denied",  # route deny: never ran
    "review",  # route review: ran, waits for deferred review
    "cancelled",  # the interrupt disappeared (reconcile)
]
FINAL_STATUSES: frozenset[str] = frozenset(
    {"approved", "edited", "rejected", "responded", "expired", "denied", "cancelled"}
)


@dataclass(frozen=True)
class ApprovalRecord:
    """One row of the pending-approval index, keyed by ``request_id``.

    ``decision`` is the applied decision as a JSON-able dict (``{"type": "approve", ...}``);
    ``approvals`` collects partial approvals while a quorum is not reached.
    """

    request_id: str
    thread_id: str
    node: str
    tool: str
    args: dict[str, Any]
    digest: str
    score: float
    route: str
    reasons: list[str]
    status: RequestStatus
    created_at: datetime
    updated_at: datetime
    checkpoint_ns: str = ""
    tool_call_id: str | None = None
    kind: str = "tool_call"
    interrupt_id: str | None = None
    approver_roles: list[str] = field(default_factory=list)
    allowed_decisions: list[str] = field(default_factory=list)
    quorum: int = 1
    approvals: list[dict[str, Any]] = field(default_factory=list)
    policy_version: str = ""
    requester: str | None = None
    expires_at: datetime | None = None
    on_expiry: str = "reject"
    parent_request_id: str | None = None
    decision: dict[str, Any] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def evolve(self, **changes: Any) -> ApprovalRecord:
        return replace(self, **changes)

    def __repr__(self) -> str:
        return (
            f"ApprovalRecord({self.request_id} {self.status} {self.tool}({_short(self.args)}) "
            f"risk={self.score:.2f} route={self.route} thread={self.thread_id})"
        )

    def _repr_html_(self) -> str | None:
        return html_for("record", self)

    def to_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ExecutionRecord:
    """The execution journal: one row per action run, so replays never run it again.

    ``state`` is ``running`` once claimed, ``started`` from just before the tool is
    called, and ``done`` (or ``failed``) with the result. ``started_at`` is the claim
    time, then the start time.
    ``result_type``/``result`` are LangGraph serde output (``JsonPlusSerializer``).
    """

    request_id: str
    state: Literal["running", "started", "done", "failed"]
    worker: str
    started_at: datetime
    finished_at: datetime | None = None
    result_type: str | None = None
    result: bytes | None = None
    error: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One append-only, hash-chained audit row.

    Rows form per-stream chains (``stream`` is picked from the thread id, so one
    request's events share a stream and concurrent gates on other threads do not wait
    for each other). ``stream_seq`` numbers a stream's rows 1, 2, 3...;
    ``hash = sha256(prev_hash + canonical_json(body))`` where body is every field but
    ``seq``, ``prev_hash``, ``hash``, ``mac`` and ``key_id``; a stream's first row has
    ``prev_hash`` ``""``. With an audit key, ``mac = HMAC-SHA256(key, hash)`` and
    ``key_id`` names the key, so re-hashing without the key is detected. ``seq`` is a
    global number from a counter that is never reused (order and paging).

    Rows written before per-stream chains (``stream == -1``) keep the old single-chain
    body (without ``stream``/``stream_seq``).
    """

    event: str
    at: datetime
    request_id: str | None = None
    thread_id: str | None = None
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    prev_hash: str = ""
    hash: str = ""
    stream: int | None = None
    stream_seq: int | None = None
    mac: str | None = None
    key_id: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event": self.event,
            "at": self.at.isoformat(),
            "request_id": self.request_id,
            "thread_id": self.thread_id,
            "actor": self.actor,
            "data": self.data,
        }
        if self.stream is not None and self.stream != LEGACY_STREAM:
            body["stream"] = self.stream
            body["stream_seq"] = self.stream_seq
        return body


def _short(args: dict[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def audit_hash(prev_hash: str, event: AuditEvent) -> str:
    """The chain hash of ``event`` appended after a row whose hash is ``prev_hash``."""
    return hashlib.sha256((prev_hash + canonical_json(event.body())).encode()).hexdigest()
