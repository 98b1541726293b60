"""Graphs, policies and ledgers for the inbox tests (importable by spawned processes)."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from fixtures_graph import Ledger as MemLedger
from fixtures_graph import bank_tools
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store, route_tool_calls
from hitl_langgraph.gates.engine import Clock, utc_now
from hitl_langgraph.gates.events import GateObserver
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.testing import ScriptedChatModel, tool_call

__all__ = [
    "FileLedger",
    "MemLedger",
    "build_app",
    "inbox_policy",
    "interrupted",
    "open_checkpointer",
    "worker_app",
]

FINANCE = frozenset({"finance"})


class FileLedger:
    """Side effects appended to a file, one JSON line each (safe across processes)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def add(self, name: str, /, **args: Any) -> None:
        line = (json.dumps([name, args]) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    @property
    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.path.exists():
            return []
        return [tuple(json.loads(x)) for x in self.path.read_text().splitlines() if x]  # type: ignore[misc]

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.entries if n == name)


def inbox_policy(
    *,
    quorum: int = 1,
    expires_after: timedelta | None = None,
    on_expiry: Literal["reject", "approve"] = "reject",
    roles: Iterable[str] = FINANCE,
) -> RiskPolicy:
    return RiskPolicy(
        rules=[
            Rule(
                tool="transfer_funds",
                score=lambda args: min(args["amount"] / 10_000, 1.0),
                approver_roles=frozenset(roles),
                quorum=quorum,
                expires_after=expires_after,
                on_expiry=on_expiry,
            ),
            Rule(tool="close_account", score=0.95),
            Rule(tool="delete_customer", score=0.99, approver_roles=frozenset({"admin"})),
            Rule(tool="wipe_*", score=1.0, route="deny", reason="wiping data is never allowed"),
            Rule(tool="lookup_*", score=0.0),
        ]
    )


def _tools(ledger: Any) -> list[Any]:
    """The banking tools of ``fixtures_graph``, plus ``delete_customer`` (admin-gated)."""

    @tool
    def delete_customer(name: str) -> str:
        """Delete a customer."""
        ledger.add("delete_customer", name=name)
        return f"deleted {name}"

    return [*bank_tools(ledger), delete_customer]


def _model(first: AIMessage | None) -> ScriptedChatModel:
    def script(messages: list[BaseMessage]) -> BaseMessage:
        if not any(isinstance(m, AIMessage) for m in messages):
            assert first is not None, "this app only resumes; it cannot start a run"
            return first
        return AIMessage("done")

    return ScriptedChatModel(script=script)


def build_app(
    store: ApprovalStore,
    checkpointer: Any,
    ledger: Any,
    first: AIMessage | None = None,
    *,
    policy: RiskPolicy | None = None,
    send: bool = False,
    clock: Clock = utc_now,
    observers: tuple[GateObserver, ...] = (),
    default_expiry: timedelta | None = None,
    worker_id: str | None = None,
) -> Any:
    """A one-agent graph whose tool calls go through a ``GatedToolNode``."""
    model = _model(first)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    node = GatedToolNode(
        _tools(ledger),
        policy=policy or inbox_policy(),
        store=store,
        clock=clock,
        observers=observers,
        default_expiry=default_expiry,
        worker_id=worker_id,
    )
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", node)
    g.add_edge(START, "agent")
    if send:
        g.add_conditional_edges("agent", route_tool_calls, ["tools", "__end__"])
    else:
        g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer)


def interrupted(
    app: Any, user: str | None = "carol", message: str = "pay"
) -> tuple[dict[str, Any], Any, str]:
    """Start a run until its gate interrupts: ``(config, interrupt, request_id)``."""
    configurable: dict[str, Any] = {"thread_id": f"t-{uuid.uuid4().hex[:12]}"}
    if user is not None:
        configurable["user_id"] = user
    cfg = {"configurable": configurable}
    out = app.invoke({"messages": [("user", message)]}, cfg)
    (intr,) = out["__interrupt__"]
    return cfg, intr, intr.value["action_requests"][0]["request_id"]


def transfer(amount: int = 9_000, to: str = "bob") -> AIMessage:
    return tool_call(("transfer_funds", {"amount": amount, "to": to}))


def open_checkpointer(kind: str, where: str) -> Any:
    """A checkpointer for worker processes: ``("sqlite", path)`` or ``("postgres", url)``."""
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(where, check_same_thread=False, timeout=30)
        saver = SqliteSaver(conn)
        saver.setup()
        return saver
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    pg = Connection.connect(where, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    saver = PostgresSaver(pg)  # type: ignore[arg-type]
    saver.setup()
    return saver


def worker_app(store_url: str, cp_kind: str, cp_where: str, ledger_path: str) -> tuple[Any, Any]:
    """``(store, app)`` for a spawned process: the same store, checkpointer and ledger."""
    store = open_store(store_url)
    app = build_app(store, open_checkpointer(cp_kind, cp_where), FileLedger(ledger_path))
    return store, app


# -- process entry points (multiprocessing "spawn" imports this module) ------------------


Setup = dict[str, str]
"""``store_url``, ``cp_kind``, ``cp_where`` and ``ledger`` (a file path) of one backend."""


def reviewer_process(
    setups: list[tuple[Setup, list[str]]], reviewer_id: str, barrier: Any, results: Any
) -> None:
    """For each backend, approve each request at the same moment as the other reviewers."""
    from hitl_langgraph import AlreadyDecided
    from hitl_langgraph.inbox import Inbox, Reviewer

    me = Reviewer(reviewer_id, {"finance"})
    for setup, request_ids in setups:
        store, app = worker_app(
            setup["store_url"], setup["cp_kind"], setup["cp_where"], setup["ledger"]
        )
        inbox = Inbox(store, app)
        for rid in request_ids:
            barrier.wait(timeout=120)
            try:
                out = inbox.approve(rid, reviewer=me).outcome
            except AlreadyDecided as exc:
                out = f"AlreadyDecided:{exc.decided_by}"
            except Exception as exc:
                out = f"error:{type(exc).__name__}:{exc}"
            results.put((rid, reviewer_id, out))
        store.close()


def apply_worker_process(setups: list[Setup], barrier: Any, results: Any) -> None:
    """For each backend, poll ``apply_decided`` a few times and report what it applied."""
    from hitl_langgraph.inbox import Inbox

    for setup in setups:
        store, app = worker_app(
            setup["store_url"], setup["cp_kind"], setup["cp_where"], setup["ledger"]
        )
        inbox = Inbox(store, app)
        barrier.wait(timeout=120)
        applied: list[str] = []
        errors: dict[str, str] = {}
        for _ in range(6):
            report = inbox.apply_decided(limit=5)
            applied += report.applied
            errors.update(report.errors)
        results.put((setup["cp_kind"], applied, errors))
        store.close()
