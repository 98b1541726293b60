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

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from . import _moved
from . import notebook as _notebook  # noqa: F401  (registers the Jupyter renderers)
from ._lazy import lazy_exports

if TYPE_CHECKING:
    from .errors import (
        AlreadyDecided,
        AuditError,
        ConfigurationError,
        DecisionError,
        DigestMismatch,
        ExecutionHeld,
        ExecutionInProgress,
        HitlError,
        InvalidDecision,
        MissingDependencyError,
        NotAuthorized,
        NothingToRecover,
        NotPending,
        PolicyError,
        RequestNotFound,
        StoreError,
    )
    from .gates.decisions import (
        Approve,
        Decision,
        Edit,
        EditedAction,
        Reject,
        Respond,
        ResumePayload,
    )
    from .gates.engine import (
        GateEngine,
        Resolution,
    )
    from .gates.events import (
        GateEvent,
        GateObserver,
    )
    from .gates.gate import (
        approval_gate,
    )
    from .gates.journal import idempotency_key
    from .gates.middleware import (
        HITLMiddleware,
    )
    from .gates.tool_node import (
        GatedToolNode,
        route_tool_calls,
    )
    from .inbox import (
        DecisionResult,
        EscalationStep,
        Inbox,
        Page,
        Reviewer,
    )
    from .notify.notifiers import (
        CallableNotifier,
        WebhookNotifier,
        notifier_observer,
    )
    from .policy.action import (
        Action,
    )
    from .policy.risk import (
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

_LAZY: dict[str, str] = {
    "Action": ".policy.action",
    "Approve": ".gates.decisions",
    "Decision": ".gates.decisions",
    "Edit": ".gates.decisions",
    "EditedAction": ".gates.decisions",
    "Reject": ".gates.decisions",
    "Respond": ".gates.decisions",
    "ResumePayload": ".gates.decisions",
    "GateEngine": ".gates.engine",
    "Resolution": ".gates.engine",
    "AlreadyDecided": ".errors",
    "AuditError": ".errors",
    "ConfigurationError": ".errors",
    "DecisionError": ".errors",
    "DigestMismatch": ".errors",
    "ExecutionHeld": ".errors",
    "ExecutionInProgress": ".errors",
    "NothingToRecover": ".errors",
    "idempotency_key": ".gates.journal",
    "HitlError": ".errors",
    "InvalidDecision": ".errors",
    "MissingDependencyError": ".errors",
    "NotAuthorized": ".errors",
    "NotPending": ".errors",
    "PolicyError": ".errors",
    "RequestNotFound": ".errors",
    "StoreError": ".errors",
    "GateEvent": ".gates.events",
    "GateObserver": ".gates.events",
    "approval_gate": ".gates.gate",
    "Assessment": ".policy.risk",
    "RiskContext": ".policy.risk",
    "RiskPolicy": ".policy.risk",
    "Route": ".policy.risk",
    "Rule": ".policy.risk",
    "Scorer": ".policy.risk",
    "Thresholds": ".policy.risk",
    "ApprovalRecord": ".store",
    "ApprovalStore": ".store",
    "AuditEvent": ".store",
    "MemoryStore": ".store",
    "RequestFilter": ".store",
    "open_store": ".store",
    "GatedToolNode": ".gates.tool_node",
    "route_tool_calls": ".gates.tool_node",
    "HITLMiddleware": ".gates.middleware",
    "Inbox": ".inbox",
    "Reviewer": ".inbox",
    "EscalationStep": ".inbox",
    "DecisionResult": ".inbox",
    "Page": ".inbox",
    "WebhookNotifier": ".notify.notifiers",
    "CallableNotifier": ".notify.notifiers",
    "notifier_observer": ".notify.notifiers",
}

try:
    __version__ = version("hitl-langgraph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
_moved.install()


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
    "ExecutionHeld",
    "ExecutionInProgress",
    "GatedToolNode",
    "GateEngine",
    "GateEvent",
    "GateObserver",
    "HitlError",
    "HITLMiddleware",
    "idempotency_key",
    "Inbox",
    "InvalidDecision",
    "MemoryStore",
    "MissingDependencyError",
    "NotAuthorized",
    "NothingToRecover",
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
