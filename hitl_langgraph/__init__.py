"""hitl-langgraph: human oversight for LangGraph agents.

Synchronous gates (:class:`GatedToolNode`, :func:`approval_gate`, :class:`HITLMiddleware`)
block risky actions at a LangGraph interrupt until a human decides; the
:class:`RiskPolicy` routes every action (auto, review, approve, deny); the store keeps the
pending-approval index, the execution journal and a hash-chained audit trail; the
:class:`Inbox` lists, decides (once, by authorized reviewers) and resumes. Asynchronous
oversight lives in :mod:`hitl_langgraph.tracing`, :mod:`hitl_langgraph.review` and
:mod:`hitl_langgraph.feedback`.

Names are imported on first use, so ``import hitl_langgraph.store`` (the CLI) stays light.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .action import (
        Action,
    )
    from .decisions import (
        Approve,
        Decision,
        Edit,
        EditedAction,
        Reject,
        Respond,
        ResumePayload,
    )
    from .engine import (
        GateEngine,
        Resolution,
    )
    from .errors import (
        AlreadyDecided,
        AuditError,
        ConfigurationError,
        DecisionError,
        DigestMismatch,
        ExecutionInProgress,
        HitlError,
        InvalidDecision,
        MissingDependencyError,
        NotAuthorized,
        NotPending,
        PolicyError,
        RequestNotFound,
        StoreError,
    )
    from .events import (
        GateEvent,
        GateObserver,
    )
    from .gate import (
        approval_gate,
    )
    from .inbox import (
        DecisionResult,
        EscalationStep,
        Inbox,
        Page,
        Reviewer,
    )
    from .middleware import (
        HITLMiddleware,
    )
    from .notify import (
        CallableNotifier,
        WebhookNotifier,
        notifier_observer,
    )
    from .policy import (
        Assessment,
        RiskContext,
        RiskPolicy,
        Route,
        Rule,
        Scorer,
        Thresholds,
    )
    from .store import (
        ApprovalRecord,
        ApprovalStore,
        AuditEvent,
        MemoryStore,
        RequestFilter,
        open_store,
    )
    from .tool_node import (
        GatedToolNode,
        route_tool_calls,
    )

_LAZY: dict[str, str] = {
    "Action": ".action",
    "Approve": ".decisions",
    "Decision": ".decisions",
    "Edit": ".decisions",
    "EditedAction": ".decisions",
    "Reject": ".decisions",
    "Respond": ".decisions",
    "ResumePayload": ".decisions",
    "GateEngine": ".engine",
    "Resolution": ".engine",
    "AlreadyDecided": ".errors",
    "AuditError": ".errors",
    "ConfigurationError": ".errors",
    "DecisionError": ".errors",
    "DigestMismatch": ".errors",
    "ExecutionInProgress": ".errors",
    "HitlError": ".errors",
    "InvalidDecision": ".errors",
    "MissingDependencyError": ".errors",
    "NotAuthorized": ".errors",
    "NotPending": ".errors",
    "PolicyError": ".errors",
    "RequestNotFound": ".errors",
    "StoreError": ".errors",
    "GateEvent": ".events",
    "GateObserver": ".events",
    "approval_gate": ".gate",
    "Assessment": ".policy",
    "RiskContext": ".policy",
    "RiskPolicy": ".policy",
    "Route": ".policy",
    "Rule": ".policy",
    "Scorer": ".policy",
    "Thresholds": ".policy",
    "ApprovalRecord": ".store",
    "ApprovalStore": ".store",
    "AuditEvent": ".store",
    "MemoryStore": ".store",
    "RequestFilter": ".store",
    "open_store": ".store",
    "GatedToolNode": ".tool_node",
    "route_tool_calls": ".tool_node",
    "HITLMiddleware": ".middleware",
    "Inbox": ".inbox",
    "Reviewer": ".inbox",
    "EscalationStep": ".inbox",
    "DecisionResult": ".inbox",
    "Page": ".inbox",
    "WebhookNotifier": ".notify",
    "CallableNotifier": ".notify",
    "notifier_observer": ".notify",
}

try:
    __version__ = version("hitl-langgraph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hitl_langgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "__version__",
    "Action",
    "AlreadyDecided",
    "approval_gate",
    "ApprovalRecord",
    "ApprovalStore",
    "Approve",
    "Assessment",
    "AuditError",
    "AuditEvent",
    "CallableNotifier",
    "ConfigurationError",
    "Decision",
    "DecisionError",
    "DecisionResult",
    "DigestMismatch",
    "Edit",
    "EditedAction",
    "EscalationStep",
    "ExecutionInProgress",
    "GatedToolNode",
    "GateEngine",
    "GateEvent",
    "GateObserver",
    "HitlError",
    "HITLMiddleware",
    "Inbox",
    "InvalidDecision",
    "MemoryStore",
    "MissingDependencyError",
    "NotAuthorized",
    "notifier_observer",
    "NotPending",
    "open_store",
    "Page",
    "PolicyError",
    "Reject",
    "RequestFilter",
    "RequestNotFound",
    "Resolution",
    "Respond",
    "ResumePayload",
    "Reviewer",
    "RiskContext",
    "RiskPolicy",
    "Route",
    "route_tool_calls",
    "Rule",
    "Scorer",
    "StoreError",
    "Thresholds",
    "WebhookNotifier",
]
