"""Graph fixtures: the three LangGraph checkpointers and a small gated banking agent."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, route_tool_calls
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.testing import ScriptedChatModel


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def checkpointer(
    request: pytest.FixtureRequest, tmp_path: Any
) -> Iterator[BaseCheckpointSaver[Any]]:
    """Each of LangGraph's real checkpointers (Postgres skips only if unreachable)."""
    if request.param == "memory":
        yield InMemorySaver()
    elif request.param == "sqlite":
        conn = sqlite3.connect(tmp_path / "checkpoints.db", check_same_thread=False)
        yield SqliteSaver(conn)
        conn.close()
    else:
        url = request.getfixturevalue("postgres_url")
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver


@dataclass
class Ledger:
    """Records every side effect the tools perform (the thing that must happen once)."""

    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, tool_name: str, /, **args: Any) -> None:
        with self.lock:
            self.entries.append((tool_name, args))

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.entries if n == name)


def bank_policy() -> RiskPolicy:
    return RiskPolicy(
        rules=[
            Rule(
                tool="transfer_funds",
                score=lambda args: min(args["amount"] / 10_000, 1.0),
                approver_roles=frozenset({"finance"}),
            ),
            Rule(tool="close_account", score=0.95),
            Rule(tool="wipe_*", score=1.0, route="deny", reason="wiping data is never allowed"),
            Rule(tool="lookup_*", score=0.0),
        ]
    )


def bank_tools(ledger: Ledger) -> list[Any]:
    @tool
    def transfer_funds(amount: int, to: str) -> str:
        """Transfer money to an account."""
        ledger.add("transfer_funds", amount=amount, to=to)
        return f"sent {amount} to {to}"

    @tool
    def close_account(name: str) -> str:
        """Close an account."""
        ledger.add("close_account", name=name)
        return f"closed {name}"

    @tool
    def lookup_account(name: str) -> str:
        """Look an account up."""
        ledger.add("lookup_account", name=name)
        return f"account {name}: balance 100"

    @tool
    def wipe_records(name: str) -> str:
        """Delete every record of a customer."""
        ledger.add("wipe_records", name=name)
        return "wiped"

    return [transfer_funds, close_account, lookup_account, wipe_records]


def scripted_turns(first: AIMessage) -> ScriptedChatModel:
    """Model that makes ``first`` (tool calls), then answers 'done' once tools replied."""

    def script(messages: list[BaseMessage]) -> BaseMessage:
        if not any(isinstance(m, AIMessage) for m in messages):
            return first
        return AIMessage("done")

    return ScriptedChatModel(script=script)


def build_bank_app(
    store: ApprovalStore,
    checkpointer: BaseCheckpointSaver[Any],
    first: AIMessage,
    ledger: Ledger,
    *,
    send: bool = False,
) -> Any:
    model = scripted_turns(first)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", GatedToolNode(bank_tools(ledger), policy=bank_policy(), store=store))
    g.add_edge(START, "agent")
    if send:
        g.add_conditional_edges("agent", route_tool_calls, ["tools", "__end__"])
    else:
        g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer)


def thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:10]}"}}


def pause_bank(
    store: ApprovalStore, checkpointer: BaseCheckpointSaver[Any], first: AIMessage, **kw: Any
) -> tuple[Any, dict[str, Any], Any, Ledger]:
    """Build the bank agent, run it until its first interrupt: ``(app, cfg, interrupt, ledger)``."""
    ledger = Ledger()
    app = build_bank_app(store, checkpointer, first, ledger, **kw)
    cfg = thread()
    out = app.invoke({"messages": [("user", "go")]}, cfg)
    return app, cfg, out["__interrupt__"][0], ledger
