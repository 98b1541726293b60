"""The synchronous gates: one engine behind GatedToolNode, approval_gate and HITLMiddleware.

Layer 3: may import ``policy``, ``store`` and the foundation (``errors``, ``clock``); names
load on first use, so importing ``gates.decisions`` does not pull in LangGraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .decisions import (
        Approve,
        Decision,
        Edit,
        EditedAction,
        Reject,
        Respond,
        ResumePayload,
    )
    from .engine import GateEngine, Resolution
    from .events import EventKind, GateEvent, GateObserver
    from .gate import approval_gate
    from .middleware import HITLMiddleware
    from .tool_node import GatedToolNode, route_tool_calls

_NAMES = {
    **dict.fromkeys(
        ["Approve", "Decision", "Edit", "EditedAction", "Reject", "Respond", "ResumePayload"],
        ".decisions",
    ),
    "GateEngine": ".engine",
    "Resolution": ".engine",
    "EventKind": ".events",
    "GateEvent": ".events",
    "GateObserver": ".events",
    "approval_gate": ".gate",
    "HITLMiddleware": ".middleware",
    "GatedToolNode": ".tool_node",
    "route_tool_calls": ".tool_node",
}

__getattr__, __dir__ = lazy_exports(__name__, _NAMES, globals())

__all__ = [
    "Approve",
    "Decision",
    "Edit",
    "EditedAction",
    "EventKind",
    "GateEngine",
    "GateEvent",
    "GateObserver",
    "GatedToolNode",
    "HITLMiddleware",
    "Reject",
    "Resolution",
    "Respond",
    "ResumePayload",
    "approval_gate",
    "route_tool_calls",
]
