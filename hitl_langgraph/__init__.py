"""hitl-langgraph: human oversight for LangGraph agents.

Synchronous gates (:class:`GatedToolNode`, :func:`approval_gate`, :class:`HITLMiddleware`)
block risky actions at a LangGraph interrupt until a human decides; the
:class:`RiskPolicy` routes every action (auto, review, approve, deny); the store keeps the
pending-approval index, the execution journal and a hash-chained audit trail.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .action import Action
from .decisions import Approve, Decision, Edit, EditedAction, Reject, Respond, ResumePayload
from .engine import GateEngine, Resolution
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
from .events import GateEvent, GateObserver
from .gate import approval_gate
from .policy import Assessment, RiskContext, RiskPolicy, Route, Rule, Scorer, Thresholds
from .store import ApprovalRecord, ApprovalStore, AuditEvent, MemoryStore, RequestFilter, open_store
from .tool_node import GatedToolNode, route_tool_calls

try:
    __version__ = version("hitl-langgraph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"


def __getattr__(name: str) -> object:
    # HITLMiddleware needs `langchain` (the "agents" extra); import it lazily.
    if name == "HITLMiddleware":
        from .middleware import HITLMiddleware

        return HITLMiddleware
    raise AttributeError(f"module 'hitl_langgraph' has no attribute {name!r}")


__all__ = [
    "Action",
    "AlreadyDecided",
    "ApprovalRecord",
    "ApprovalStore",
    "Approve",
    "Assessment",
    "AuditError",
    "AuditEvent",
    "ConfigurationError",
    "Decision",
    "DecisionError",
    "DigestMismatch",
    "Edit",
    "EditedAction",
    "ExecutionInProgress",
    "GateEngine",
    "GateEvent",
    "GateObserver",
    "GatedToolNode",
    "HITLMiddleware",
    "HitlError",
    "InvalidDecision",
    "MemoryStore",
    "MissingDependencyError",
    "NotAuthorized",
    "NotPending",
    "PolicyError",
    "Reject",
    "RequestFilter",
    "RequestNotFound",
    "Resolution",
    "Respond",
    "ResumePayload",
    "RiskContext",
    "RiskPolicy",
    "Route",
    "Rule",
    "Scorer",
    "StoreError",
    "Thresholds",
    "__version__",
    "approval_gate",
    "open_store",
    "route_tool_calls",
]
