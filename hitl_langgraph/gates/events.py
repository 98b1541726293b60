"""Gate events: what the gate engine tells observers (tracing, notifiers, metrics).

Observers are called synchronously, after the store write the event describes; an
observer that raises is logged and ignored, so it can never block or break a gate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "EventKind",
    "GateEvent",
    "GateObserver",
    "TraceIds",
    "clear_default_observers",
    "default_observers",
    "default_trace_ids",
    "effective_observers",
    "notify_observers",
    "set_default_observers",
]

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
TraceIds = Callable[[], "tuple[str, str] | None"]

# -- the process-wide defaults ---------------------------------------------------------
# ``hitl_langgraph.tracing.setup_tracing`` fills these so that every gate in the process
# records GUARDRAIL spans, links decisions to the paused trace and feeds the review
# sampler without per-gate wiring. A gate consults them on every event (so a graph
# compiled before ``setup_tracing`` is covered too) unless it was built with
# ``tracing=False``. An explicit observer replaces the default of the same type (so
# ``observers=[GateSpanRecorder(other_handle)]`` is not doubled), and an explicit
# ``trace_ids=`` wins over the default one.

_defaults_lock = threading.Lock()
_default_observers: tuple[GateObserver, ...] = ()
_default_trace_ids: TraceIds | None = None


def set_default_observers(
    observers: Iterable[GateObserver], *, trace_ids: TraceIds | None = None
) -> None:
    """Make ``observers`` (and ``trace_ids``) the defaults of every gate in the process.

    Replaces the previous defaults. Called by ``setup_tracing``; call it yourself to
    add, say, a process-wide notifier.
    """
    global _default_observers, _default_trace_ids
    with _defaults_lock:
        _default_observers = tuple(observers)
        _default_trace_ids = trace_ids


def clear_default_observers() -> None:
    """Remove the process-wide defaults (``TracingHandle.shutdown`` does this)."""
    set_default_observers((), trace_ids=None)


def default_observers() -> tuple[GateObserver, ...]:
    """The current process-wide default observers."""
    return _default_observers


def default_trace_ids() -> TraceIds | None:
    """The current process-wide default ``trace_ids`` callable, if any."""
    return _default_trace_ids


def effective_observers(explicit: Sequence[GateObserver]) -> list[GateObserver]:
    """``explicit`` plus every default whose type no explicit observer has."""
    defaults = _default_observers
    if not defaults:
        return list(explicit)
    if not explicit:
        return list(defaults)
    types = {type(o) for o in explicit}
    return [*explicit, *(d for d in defaults if type(d) not in types and d not in explicit)]


def notify_observers(observers: Iterable[GateObserver], event: GateEvent) -> None:
    """Call each observer; log and swallow anything they raise."""
    for obs in observers:
        try:
            obs(event)
        except Exception:
            logger.exception("hitl_langgraph observer %r failed on %s event", obs, event.kind)
