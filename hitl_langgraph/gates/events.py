"""Gate events: what the gate engine tells observers (tracing, notifiers, metrics).

Observers are called synchronously, after the store write the event describes; an
observer that raises is logged and ignored, so it can never block or break a gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["EventKind", "GateEvent", "GateObserver", "notify_observers"]

logger = logging.getLogger("hitl_langgraph")

EventKind = Literal[
    "assessed",  # policy scored an action (every route)
    "requested",  # an approval request was created (route approve), first time only
    "decided",  # a human (or the system, on expiry) decided a request
    "refused",  # a decision attempt was refused (invalid, digest mismatch, unauthorized)
    "executed",  # the action ran (auto, review, approved or edited)
    "denied",  # route deny: the action never ran
]


@dataclass(frozen=True)
class GateEvent:
    kind: EventKind
    request_id: str
    node: str
    tool: str
    args: dict[str, Any]
    digest: str
    score: float
    route: str
    reasons: tuple[str, ...]
    policy_version: str
    at: datetime
    thread_id: str | None = None
    user_id: str | None = None
    decision: str | None = None
    reviewer: str | None = None
    reviewer_roles: tuple[str, ...] = ()
    waited_seconds: float | None = None
    sampled_for_review: bool | None = None
    error: str | None = None
    approver_roles: tuple[str, ...] = ()
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


GateObserver = Callable[[GateEvent], None]


def notify_observers(observers: Iterable[GateObserver], event: GateEvent) -> None:
    """Call each observer; log and swallow anything they raise."""
    for obs in observers:
        try:
            obs(event)
        except Exception:
            logger.exception("hitl_langgraph observer %r failed on %s event", obs, event.kind)
