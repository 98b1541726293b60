"""Talking to the compiled graph: find a request's interrupt, build the resume, find gates."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotPending
from ..gates.decisions import DECISION_FIELDS
from ..gates.payload import PAYLOAD_SCHEMA
from ..policy.risk import RiskPolicy
from ..store.records import ApprovalRecord

if TYPE_CHECKING:
    from langgraph.types import Command

__all__ = [
    "ConfigHook",
    "asks_for",
    "find_interrupt",
    "gate_policy",
    "gate_tools",
    "hitl_interrupts",
    "not_pending",
    "resume_command",
    "resume_key",
    "thread_config",
]

ConfigHook = Callable[[ApprovalRecord], Mapping[str, Any]]

RESUME_PREFIX = "resume:"


def resume_key(request_id: str) -> str:
    """The execution-journal key that makes one worker, once, resume ``request_id``."""
    return RESUME_PREFIX + request_id


def thread_config(
    record: ApprovalRecord, hook: ConfigHook | None = None, *, reviewer: str | None = None
) -> dict[str, Any]:
    """The run config to read and resume ``record``'s thread.

    The requester's ``user_id`` is passed on, so requests a resumed run creates (an edit's
    follow-up) keep their requester and separation of duties still applies to them.
    """
    configurable: dict[str, Any] = {"thread_id": record.thread_id}
    if record.requester is not None:
        configurable["user_id"] = record.requester
    config: dict[str, Any] = {"configurable": configurable}
    if reviewer is not None:
        config["metadata"] = {"hitl_reviewer": reviewer, "hitl_request_id": record.request_id}
    if hook is not None:
        extra = dict(hook(record))
        config = {
            **config,
            **extra,
            "configurable": {**configurable, **dict(extra.get("configurable", {}))},
        }
    return config


def hitl_interrupts(state: Any) -> Iterator[tuple[Any, dict[str, Any], int]]:
    """``(interrupt, action_request, index)`` for every gate action pending in ``state``."""
    for intr in getattr(state, "interrupts", ()) or ():
        value = getattr(intr, "value", None)
        if not isinstance(value, dict):
            continue
        if (value.get("hitl") or {}).get("schema") != PAYLOAD_SCHEMA:
            continue
        for i, ar in enumerate(value.get("action_requests") or ()):
            if isinstance(ar, dict):
                yield intr, ar, i


def find_interrupt(state: Any, record: ApprovalRecord) -> str | None:
    """The id of the pending interrupt that asks for ``record`` (``None``: none does).

    The recorded ``interrupt_id`` is preferred; when one task re-asks its undecided
    actions under a new interrupt, the request is found by its id in the interrupt value.
    """
    found: str | None = None
    for intr, ar, _ in hitl_interrupts(state):
        if ar.get("request_id") == record.request_id:
            if intr.id == record.interrupt_id:
                return str(intr.id)
            found = found or str(intr.id)
    return found


def not_pending(state: Any, record: ApprovalRecord) -> NotPending:
    """The error for a request whose thread does not wait for it (says which case)."""
    rid, tid = record.request_id, record.thread_id
    if state is None or getattr(state, "created_at", None) is None:
        return NotPending(
            f"thread {tid!r} has no checkpoint in this graph's checkpointer, so request {rid} "
            "cannot be resumed (resuming would start a new run from START); check that the "
            "graph uses the same checkpointer as the agent, then run reconcile",
            request_id=rid,
        )
    return NotPending(
        f"thread {tid!r} has no pending interrupt for request {rid} (it was resumed "
        "elsewhere or the thread moved on); nothing was changed - run `hitl reconcile` to "
        "repair the index",
        request_id=rid,
    )


def asks_for(output: Any, request_id: str) -> bool:
    """Whether a graph output still has an interrupt asking for ``request_id``."""
    if not isinstance(output, dict):
        return False
    for intr in output.get("__interrupt__", ()) or ():
        value = getattr(intr, "value", None)
        if isinstance(value, dict):
            for ar in value.get("action_requests") or ():
                if isinstance(ar, dict) and ar.get("request_id") == request_id:
                    return True
    return False


def resume_command(interrupt_id: str, decision: Mapping[str, Any]) -> Command[Any]:
    """``Command(resume={interrupt_id: {"decisions": [decision]}})`` with only wire fields."""
    from langgraph.types import Command  # here, so store-only CLI commands stay light

    wire = {k: decision[k] for k in DECISION_FIELDS if decision.get(k) is not None}
    return Command(resume={interrupt_id: {"decisions": [wire]}})


def _gates(graph: Any) -> Iterator[Any]:
    builder = getattr(graph, "builder", None)
    nodes = getattr(builder, "nodes", None)
    if not isinstance(nodes, Mapping):
        return
    for spec in nodes.values():
        runnable = getattr(spec, "runnable", None)
        if hasattr(runnable, "engine") and hasattr(runnable, "tools_by_name"):
            yield runnable


def gate_policy(graph: Any, node: str | None = None) -> RiskPolicy | None:
    """The policy of the graph's ``GatedToolNode`` (named ``node`` if given), if any."""
    for gate in _gates(graph):
        if node is not None and getattr(gate, "name", None) not in (node, None):
            continue
        policy = getattr(gate.engine, "policy", None)
        if isinstance(policy, RiskPolicy):
            return policy
    return None


def gate_tools(graph: Any, node: str | None = None) -> Mapping[str, Any] | None:
    """The tools (by name) of the graph's ``GatedToolNode``, if it has one."""
    for gate in _gates(graph):
        if node is not None and getattr(gate, "name", None) not in (node, None):
            continue
        tools = gate.tools_by_name
        if isinstance(tools, Mapping):
            return tools
    return None
