"""The risk policy: actions, rules and the route each action takes (auto, review, approve, deny).

Layer 1, pure: may import only ``hitl_langgraph.errors``, ``clock`` and ``_display_hooks``.
"""

from __future__ import annotations

from .action import Action, ActionKind, canonical_json, digest_of, request_digest
from .risk import (
    DECISION_TYPES,
    Adjuster,
    Assessment,
    DecisionType,
    RiskContext,
    RiskPolicy,
    Route,
    Rule,
    Scorer,
    Thresholds,
)

__all__ = [
    "DECISION_TYPES",
    "Action",
    "ActionKind",
    "Adjuster",
    "Assessment",
    "DecisionType",
    "RiskContext",
    "RiskPolicy",
    "Route",
    "Rule",
    "Scorer",
    "Thresholds",
    "canonical_json",
    "digest_of",
    "request_digest",
]
