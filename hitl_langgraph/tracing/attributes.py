"""Span attribute names written by hitl-langgraph, each defined exactly once.

The ``hitl.*`` names are ours. The generic names (span kind, session, user, input,
output, metadata, project) come from the OpenInference semantic conventions, so Phoenix
shows them in its usual columns and its span query DSL can filter on them, for example
``SpanQuery().where("span_kind == 'GUARDRAIL' and hitl.route == 'approve'")``.
"""

from __future__ import annotations

from typing import Final

try:
    from openinference.semconv.resource import ResourceAttributes
    from openinference.semconv.trace import (
        OpenInferenceMimeTypeValues,
        OpenInferenceSpanKindValues,
        SpanAttributes,
    )
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    from ..errors import missing_dependency

    raise missing_dependency("openinference-semantic-conventions", "tracing", exc) from exc

__all__ = [
    "GUARDRAIL",
    "HITL_ACTION_DIGEST",
    "HITL_ACTION_TOOL",
    "HITL_DECISION",
    "HITL_ERROR",
    "HITL_EVENT_KIND",
    "HITL_NODE",
    "HITL_PAUSED_SPAN_ID",
    "HITL_PAUSED_TRACE_ID",
    "HITL_POLICY_VERSION",
    "HITL_REQUEST_ID",
    "HITL_REVIEWER_ID",
    "HITL_REVIEWER_ROLES",
    "HITL_REVIEW_SAMPLED",
    "HITL_REVIEW_STATE",
    "HITL_RISK_REASONS",
    "HITL_RISK_SCORE",
    "HITL_ROUTE",
    "HITL_WAIT_SECONDS",
    "INPUT_MIME_TYPE",
    "INPUT_VALUE",
    "JSON_MIME_TYPE",
    "METADATA",
    "OPENINFERENCE_SPAN_KIND",
    "OUTPUT_MIME_TYPE",
    "OUTPUT_VALUE",
    "PAUSED_SPAN_ID_KEY",
    "PAUSED_TRACE_ID_KEY",
    "PROJECT_NAME",
    "SESSION_ID",
    "USER_ID",
]

# --- hitl-langgraph's own attributes -------------------------------------------------
HITL_EVENT_KIND: Final = "hitl.event.kind"
"""The gate event: assessed, requested, decided, refused, executed or denied."""
HITL_REQUEST_ID: Final = "hitl.request.id"
HITL_NODE: Final = "hitl.node"
"""The graph node that proposed the action."""
HITL_ACTION_TOOL: Final = "hitl.action.tool"
HITL_ACTION_DIGEST: Final = "hitl.action.digest"
"""Digest of (tool, canonical args): ties a decision to exactly the action reviewed."""
HITL_RISK_SCORE: Final = "hitl.risk.score"
HITL_RISK_REASONS: Final = "hitl.risk.reasons"
HITL_ROUTE: Final = "hitl.route"
"""auto, review, approve or deny."""
HITL_POLICY_VERSION: Final = "hitl.policy.version"
HITL_DECISION: Final = "hitl.decision"
HITL_REVIEWER_ID: Final = "hitl.reviewer.id"
HITL_REVIEWER_ROLES: Final = "hitl.reviewer.roles"
HITL_WAIT_SECONDS: Final = "hitl.wait.seconds"
"""Seconds between the request and the decision."""
HITL_REVIEW_SAMPLED: Final = "hitl.review.sampled"
"""Whether an auto-routed action was sampled for deferred review."""
HITL_ERROR: Final = "hitl.error"
HITL_REVIEW_STATE: Final = "hitl.review_state"
"""awaiting_approval / decided / denied / sampled / review_route / none (see
``tracing.review_state_of``); the live queue state is the ``review_request`` annotation."""
HITL_PAUSED_TRACE_ID: Final = "hitl.paused.trace_id"
"""On ``decided`` spans: the trace in which the run paused (also a span link)."""
HITL_PAUSED_SPAN_ID: Final = "hitl.paused.span_id"

# --- keys the gate engine puts in GateEvent.extra -------------------------------------
PAUSED_TRACE_ID_KEY: Final = "paused_trace_id"
"""``GateEvent.extra`` key: hex trace id of the span where the run paused."""
PAUSED_SPAN_ID_KEY: Final = "paused_span_id"
"""``GateEvent.extra`` key: hex span id of the span where the run paused."""

# --- OpenInference semantic conventions, reused -----------------------------------------
OPENINFERENCE_SPAN_KIND: Final[str] = SpanAttributes.OPENINFERENCE_SPAN_KIND
GUARDRAIL: Final[str] = OpenInferenceSpanKindValues.GUARDRAIL.value
SESSION_ID: Final[str] = SpanAttributes.SESSION_ID
USER_ID: Final[str] = SpanAttributes.USER_ID
INPUT_VALUE: Final[str] = SpanAttributes.INPUT_VALUE
INPUT_MIME_TYPE: Final[str] = SpanAttributes.INPUT_MIME_TYPE
OUTPUT_VALUE: Final[str] = SpanAttributes.OUTPUT_VALUE
OUTPUT_MIME_TYPE: Final[str] = SpanAttributes.OUTPUT_MIME_TYPE
METADATA: Final[str] = SpanAttributes.METADATA
JSON_MIME_TYPE: Final[str] = OpenInferenceMimeTypeValues.JSON.value
PROJECT_NAME: Final[str] = ResourceAttributes.PROJECT_NAME
"""Resource attribute: Phoenix files every span of the resource under this project."""
