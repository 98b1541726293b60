"""Gate cycle (invoke until the interrupt, then resume) against the raw pattern.

Every variant is the same graph shape (agent -> tools -> agent, one tool call) on the
SAME checkpointer object; per round each variant runs one cycle on a fresh thread, the
order rotating every round.

* raw: stock ``ToolNode`` whose ``wrap_tool_call`` calls ``interrupt()`` (no store);
* raw + index: the same, plus the minimum a team writes by hand to find pending
  approvals later: one ``put_request`` before the interrupt and one ``update_request``
  after the decision, on a store of the same backend (what ``Inbox.pending()`` needs);
* ours: ``GatedToolNode`` with a store of the same backend (pending index, decision
  compare-and-set, execution journal, hash-chained audit).
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store
from hitl_langgraph.store import ApprovalRecord, ApprovalStore

from .core import Context, interleave, med_ms
from .pg import PG_URL, pg_schema

NAME = "gate"
PARTS = 3


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money."""
    return f"sent {amount} to {to}"


CALL = AIMessage(
    "", tool_calls=[{"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c1"}]
)


def agent(state: MessagesState) -> dict[str, Any]:
    if isinstance(state["messages"][-1], ToolMessage):
        return {"messages": [AIMessage("done")]}
    return {"messages": [CALL]}


def raw_wrap(request: Any, execute: Callable[[Any], Any]) -> Any:
    decision = interrupt({"action": request.tool_call["name"], "args": request.tool_call["args"]})
    if decision != "approve":
        return ToolMessage("rejected", tool_call_id=request.tool_call["id"], status="error")
    return execute(request)


def indexed_wrap(store: ApprovalStore) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """The raw pattern plus a hand-rolled pending index (one write per phase)."""

    def wrap(request: Any, execute: Callable[[Any], Any]) -> Any:
        call = request.tool_call
        tid = get_config()["configurable"]["thread_id"]
        rid = f"{tid}:{call['id']}"
        now = datetime.now(timezone.utc)
        store.put_request(
            ApprovalRecord(
                request_id=rid,
                thread_id=tid,
                node="tools",
                tool=call["name"],
                args=call["args"],
                digest="",
                score=0.9,
                route="approve",
                reasons=[],
                status="pending",
                created_at=now,
                updated_at=now,
            )
        )
        decision = interrupt({"action": call["name"], "args": call["args"], "request_id": rid})
        store.update_request(
            rid,
            expected_status="pending",
            status="approved" if decision == "approve" else "rejected",
            updated_at=datetime.now(timezone.utc),
        )
        if decision != "approve":
            return ToolMessage("rejected", tool_call_id=call["id"], status="error")
        return execute(request)

    return wrap


def build(tools_node: Any, saver: Any) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tools_node)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=saver)


def raw_cycle(app: Any) -> Callable[[], None]:
    def go() -> None:
        cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
        out = app.invoke({"messages": [("user", "pay")]}, cfg)
        done = app.invoke(Command(resume={out["__interrupt__"][0].id: "approve"}), cfg)
        assert done["messages"][-1].content == "done"

    return go


def gated_cycle(app: Any) -> Callable[[], None]:
    def go() -> None:
        cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
        out = app.invoke({"messages": [("user", "pay")]}, cfg)
        intr = out["__interrupt__"][0]
        done = app.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}]}}), cfg)
        assert done["messages"][-1].content == "done"

    return go


def policy() -> RiskPolicy:
    return RiskPolicy(
        rules=[Rule(tool="transfer_funds", score=lambda a: min(a["amount"] / 10_000, 1.0))]
    )


def _measure(
    ctx: Context,
    backend: str,
    saver: Any,
    stores: dict[str, str],
    rounds: int,
    how: str,
    saver_label: str,
) -> None:
    opened: dict[str, ApprovalStore] = {k: open_store(u) for k, u in stores.items()}
    try:
        variants: dict[str, Callable[[], None]] = {
            "raw": raw_cycle(build(ToolNode([transfer_funds], wrap_tool_call=raw_wrap), saver))
        }
        for label, store in opened.items():
            variants[f"ours[{label}]"] = gated_cycle(
                build(GatedToolNode([transfer_funds], policy=policy(), store=store), saver)
            )
        index_store = opened[list(opened)[-1]]
        variants["raw+index"] = raw_cycle(
            build(ToolNode([transfer_funds], wrap_tool_call=indexed_wrap(index_store)), saver)
        )
        for _rep in ctx.repeats(f"{NAME}/{backend}"):
            t = interleave(variants, rounds)
            raw = med_ms(t["raw"])
            for label in opened:
                ours = med_ms(t[f"ours[{label}]"])
                ctx.record(
                    NAME,
                    f"{backend}: {label}",
                    ours=ours,
                    base=raw,
                    ours_label=f"GatedToolNode + {backend} store ({label})",
                    base_label=f"ToolNode + interrupt() ({saver_label})",
                    how=how.format(label=label),
                )
            last = list(opened)[-1]
            ctx.record(
                NAME,
                f"{backend}: {last}, vs raw+index",
                ours=med_ms(t[f"ours[{last}]"]),
                base=med_ms(t["raw+index"]),
                ours_label=f"GatedToolNode ({last})",
                base_label="ToolNode + interrupt() + hand-rolled pending index (put + update)",
                how=f"same checkpointer; the raw pattern also writes its pending row and decision "
                f"to a {backend} store with the same settings ({last})",
            )
    finally:
        for s in opened.values():
            s.close()


def run(ctx: Context) -> None:
    rounds = 15 if ctx.quick else 40
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _measure(
            ctx,
            "memory",
            InMemorySaver(),
            {"as shipped": "memory://"},
            rounds,
            "InMemorySaver for both; memory:// store",
            "InMemorySaver",
        )
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(tmp / "cp.db", check_same_thread=False)
        jm = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[
            conn.execute("PRAGMA synchronous").fetchone()[0]
        ]
        saver = SqliteSaver(conn)
        durab = f"SqliteSaver (journal_mode={jm}, synchronous={sync}: syncs every commit)"
        _measure(
            ctx,
            "sqlite",
            saver,
            {
                "as shipped": f"sqlite:///{tmp / 'a.db'}",
                "matched durability": f"sqlite:///{tmp / 'b.db'}?synchronous=full",
            },
            rounds,
            "same " + durab + "; store {label}: as shipped = WAL + synchronous=NORMAL (no fsync "
            "per commit), matched durability = WAL + synchronous=FULL (fsync per commit)",
            "SqliteSaver",
        )
        conn.close()
    try:
        import psycopg  # noqa: F401
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError as exc:
        ctx.skip(f"{NAME}/postgres", f"postgres extra not installed: {exc}")
        return
    try:
        with pg_schema() as url, PostgresSaver.from_conn_string(url) as pg_saver:
            pg_saver.setup()
            _measure(
                ctx,
                "postgres",
                pg_saver,
                {"as shipped": url},
                rounds,
                "same PostgresSaver; the Postgres STORE "
                "(fresh schema, same server, synchronous_commit on)",
                "PostgresSaver",
            )
    except Exception as exc:
        if "connection" in str(exc).lower():
            ctx.skip(f"{NAME}/postgres", f"no PostgreSQL at {PG_URL}: {exc}")
        else:
            raise
