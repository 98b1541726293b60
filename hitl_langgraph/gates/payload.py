"""The interrupt value a gate raises: LangChain's ``HITLRequest`` shape, extended.

``action_requests`` / ``review_configs`` are exactly what LangChain's
``HumanInTheLoopMiddleware`` emits, so UIs built for it can render the request; every
action request also carries ``request_id``, ``digest``, ``risk_score``, ``route``,
``reasons`` and ``tool_call_id``, and review configs carry ``approver_roles`` and
``quorum``. ``hitl`` holds the envelope: schema version, thread, node, policy version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..policy.action import request_digest
from ..policy.risk import Assessment

__all__ = ["PAYLOAD_SCHEMA", "GateItem", "build_request", "describe"]

PAYLOAD_SCHEMA = "hitl-langgraph/1"


@dataclass(frozen=True)
class GateItem:
    """One action a gate handles in this run: the call, its assessment and request id."""

    key: str
    request_id: str
    tool_call: dict[str, Any]
    assessment: Assessment
    parent_request_id: str | None = None
    expires_at: datetime | None = None
    description: str | None = None
    """What the gate's user configured the reviewer to read (``None``: :func:`describe`)."""
    refused: str | None = None
    """Why the call was refused before anything was stored (hostile text), if it was."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Extra metadata for the request row (an edit's follow-up: who edited it)."""

    @property
    def tool(self) -> str:
        return self.assessment.action.tool

    @property
    def digest(self) -> str:
        """What a reviewer approves: request id + tool + args (:func:`request_digest`)."""
        a = self.assessment.action
        return request_digest(self.request_id, a.tool, a.args)


def describe(a: Assessment) -> str:
    """A one-paragraph description for the reviewer."""
    args = ", ".join(f"{k}={v!r}" for k, v in a.action.args.items())
    return f"{a.action.tool}({args}) - risk {a.score:.2f} ({a.route}): " + "; ".join(a.reasons)


def build_request(
    items: Sequence[GateItem], *, thread_id: str | None, node: str, policy_version: str
) -> dict[str, Any]:
    action_requests = []
    review_configs = []
    for it in items:
        a = it.assessment
        action_requests.append(
            {
                "name": a.action.tool,
                "args": dict(a.action.args),
                "description": describe(a) if it.description is None else it.description,
                "request_id": it.request_id,
                "digest": it.digest,
                "action_digest": a.action.digest,
                "risk_score": a.score,
                "route": a.route,
                "reasons": list(a.reasons),
                "tool_call_id": it.tool_call.get("id"),
                "parent_request_id": it.parent_request_id,
                "expires_at": None if it.expires_at is None else it.expires_at.isoformat(),
            }
        )
        review_configs.append(
            {
                "action_name": a.action.tool,
                "allowed_decisions": list(a.allowed_decisions),
                "approver_roles": sorted(a.approver_roles),
                "quorum": a.quorum,
            }
        )
    flat: dict[str, Any] = {}
    if len(items) == 1:
        # one action: also LangChain's per-call ``ToolApprovalRequest`` fields, top level
        first, config = action_requests[0], review_configs[0]
        flat = {
            "type": "tool_approval",
            "tool_call_id": first["tool_call_id"],
            "name": first["name"],
            "args": first["args"],
            "description": first["description"],
            "allowed_decisions": config["allowed_decisions"],
        }
    return {
        **flat,
        "action_requests": action_requests,
        "review_configs": review_configs,
        "hitl": {
            "schema": PAYLOAD_SCHEMA,
            "thread_id": thread_id,
            "node": node,
            "policy_version": policy_version,
        },
    }
