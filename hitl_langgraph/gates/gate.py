"""``approval_gate``: a node factory that gates a non-tool action held in the graph state.

Example: a drafting node writes ``state["payment"] = {"amount": 12_000, "to": "acme"}``;
the gate scores it as action ``"payment"`` and routes with ``Command(goto=...)``::

    graph.add_node("review_payment", approval_gate(
        "payment", policy=policy, store=store, on_approve="send_payment", on_reject="draft",
    ), destinations=("send_payment", "draft"))

An edit writes the reviewer's arguments back into the state field before going on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from ..clock import Clock, utc_now
from ..errors import ConfigurationError
from ..policy.risk import RiskPolicy
from ..store.base import ApprovalStore
from .engine import GateEngine, Resolution
from .events import GateObserver

__all__ = ["approval_gate"]

ActionSource = str | Callable[[Any], Any]


def approval_gate(
    name: str,
    *,
    on_approve: str,
    on_reject: str,
    policy: RiskPolicy | None = None,
    store: ApprovalStore | None = None,
    engine: GateEngine | None = None,
    action: ActionSource | None = None,
    on_respond: str | None = None,
    on_empty: str | None = None,
    decision_key: str | None = None,
    clock: Clock = utc_now,
    observers: tuple[GateObserver, ...] = (),
    default_expiry: timedelta | None = None,
    require_recorded_decisions: bool = False,
) -> Callable[[Any, RunnableConfig], Command[Any]]:
    """Build a node that asks the policy (and, if needed, a human) about a state action.

    Args:
        name: the action's name, matched by the policy's rule globs like a tool name.
        on_approve: node to go to when the action may proceed (auto, review, approved,
            edited).
        on_reject: node to go to when it is denied or rejected.
        policy, store, engine: as for :class:`~hitl_langgraph.GatedToolNode`.
        action: where the action's arguments are: a state key (default ``name``) or a
            callable ``state -> mapping | None``. A non-mapping value is gated as
            ``{"value": value}``.
        on_respond: node for a ``respond`` decision (default ``on_reject``).
        on_empty: node when there is no action (``None`` in the state); default
            ``on_approve``.
        decision_key: if given, a state key that receives the outcome as a dict
            (``request_id``, ``outcome``, ``route``, ``score``, ``reasons``, ``message``).
    """
    if engine is None:
        if policy is None or store is None:
            raise ConfigurationError("approval_gate needs policy= and store= (or engine=)")
        engine = GateEngine(
            policy,
            store,
            clock=clock,
            observers=observers,
            default_expiry=default_expiry,
            require_recorded_decisions=require_recorded_decisions,
        )
    source: ActionSource = name if action is None else action
    gate_engine = engine

    def gate(state: Any, config: RunnableConfig) -> Command[Any]:
        raw = _read(state, source)
        if raw is None:
            return Command(goto=on_empty or on_approve)
        wrapped = not isinstance(raw, Mapping)
        args = {"value": raw} if wrapped else dict(raw)
        node = str((config.get("metadata") or {}).get("langgraph_node", name))
        res = gate_engine.resolve(
            [{"name": name, "args": args, "id": None}],
            node=node,
            state=state,
            config=config,
            kind="state",
            tool_names=frozenset({name}),
        )[0]
        update: dict[str, Any] = {}
        if res.edited and isinstance(source, str):
            new_args = res.tool_call["args"]
            update[source] = new_args.get("value") if wrapped else new_args
        if decision_key is not None:
            update[decision_key] = _outcome(res)
        goto = {
            "run": on_approve,
            "deny": on_reject,
            "reject": on_reject,
            "respond": on_respond or on_reject,
        }[res.outcome]
        return Command(goto=goto, update=update or None)

    gate.__name__ = f"approval_gate_{name}"
    return gate


def _read(state: Any, source: ActionSource) -> Any:
    if callable(source):
        return source(state)
    if isinstance(state, Mapping):
        return state.get(source)
    return getattr(state, source, None)


def _outcome(res: Resolution) -> dict[str, Any]:
    a = res.item.assessment
    return {
        "request_id": res.request_id,
        "outcome": "edited" if res.edited else res.outcome,
        "route": a.route,
        "score": a.score,
        "reasons": list(a.reasons),
        "message": res.message,
        "decision": res.decision,
    }
