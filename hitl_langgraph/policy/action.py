"""A proposed agent action and its digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Action", "ActionKind", "canonical_json", "digest_of", "request_digest"]

ActionKind = Literal["tool_call", "state"]


def canonical_json(value: Any) -> str:
    """Serialise ``value`` deterministically (sorted keys, no whitespace, ``str`` fallback)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def digest_of(tool: str, args: Mapping[str, Any]) -> str:
    """The action digest: SHA-256 over the tool name and its canonical arguments."""
    payload = canonical_json({"tool": tool, "args": dict(args)})
    return "sha256:" + hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


def request_digest(request_id: str, tool: str, args: Mapping[str, Any]) -> str:
    """The digest a reviewer approves: SHA-256 over the request id, tool and canonical args.

    Unlike :func:`digest_of` (the action alone, kept for compatibility), it binds a
    decision to one request: the digest of an identical action in another request differs.
    """
    payload = canonical_json({"request_id": request_id, "tool": tool, "args": dict(args)})
    return "sha256:" + hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Action:
    """What the agent proposes to do: a tool name (or a gate name) and its arguments.

    ``kind`` is ``"tool_call"`` for a model's tool call and ``"state"`` for a non-tool
    action guarded by :func:`~hitl_langgraph.approval_gate` (for example a drafted payment
    held in a state field).
    """

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)
    kind: ActionKind = "tool_call"
    tool_call_id: str | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of tool + canonical args; a decision binds to this value."""
        return digest_of(self.tool, self.args)

    def with_args(self, tool: str, args: Mapping[str, Any]) -> Action:
        """A copy with another tool name and arguments (used for edits)."""
        return Action(tool=tool, args=dict(args), kind=self.kind, tool_call_id=self.tool_call_id)
