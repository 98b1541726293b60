"""Full gate cycle (invoke until interrupt + resume) vs a raw ``interrupt()`` graph.

Both graphs have the same shape (agent -> tools -> agent, one tool call), run on the same
checkpointer, interleaved round by round, so machine noise hits both alike. The raw graph
pauses with a ``wrap_tool_call`` that calls ``interrupt()`` in a plain ``ToolNode``; the
gated one uses ``GatedToolNode`` with a SQLite store (its own file, WAL).

    python bench/bench_gate.py                # memory + sqlite (+ postgres if reachable)
    python bench/bench_gate.py --rounds 300 --json
Target (issue 2): gated / raw <= 1.15 on SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store


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


def build(tools_node: Any, saver: Any) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tools_node)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=saver)


def raw_cycle(app: Any) -> None:
    cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    app.invoke(Command(resume={out["__interrupt__"][0].id: "approve"}), cfg)


def gated_cycle(app: Any) -> None:
    cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    intr = out["__interrupt__"][0]
    app.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}]}}), cfg)
    assert out["messages"] is not None


@contextmanager
def savers(tmp: Path, which: list[str]) -> Iterator[list[tuple[str, Any]]]:
    out: list[tuple[str, Any]] = []
    closers: list[Callable[[], None]] = []
    for name in which:
        if name == "memory":
            out.append((name, InMemorySaver()))
        elif name == "sqlite":
            from langgraph.checkpoint.sqlite import SqliteSaver

            conn = sqlite3.connect(tmp / "cp.db", check_same_thread=False)
            out.append((name, SqliteSaver(conn)))
            closers.append(conn.close)
        elif name == "postgres":
            url = os.environ.get(
                "HITL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
            )
            try:
                from langgraph.checkpoint.postgres import PostgresSaver

                cm = PostgresSaver.from_conn_string(url)
                saver = cm.__enter__()
                saver.setup()
            except Exception as exc:
                print(f"postgres skipped: {exc}", file=sys.stderr)
                continue
            out.append((name, saver))
            closers.append(lambda cm=cm: cm.__exit__(None, None, None))
    try:
        yield out
    finally:
        for c in closers:
            c()


def measure(rounds: int, warmup: int, which: list[str], store_kind: str) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as d, savers(Path(d), which) as pairs:
        tmp = Path(d)
        for name, saver in pairs:
            store_url = f"sqlite:///{tmp / 'hitl.db'}" if store_kind == "sqlite" else "memory://"
            store = open_store(store_url)
            policy = RiskPolicy(
                rules=[Rule(tool="transfer_funds", score=lambda a: min(a["amount"] / 10_000, 1.0))]
            )
            raw = build(ToolNode([transfer_funds], wrap_tool_call=raw_wrap), saver)
            gated = build(GatedToolNode([transfer_funds], policy=policy, store=store), saver)
            for _ in range(warmup):
                raw_cycle(raw)
                gated_cycle(gated)
            t_raw: list[float] = []
            t_gated: list[float] = []
            for i in range(rounds):
                order = [(raw_cycle, raw, t_raw), (gated_cycle, gated, t_gated)]
                if i % 2:
                    order.reverse()
                for fn, app, bucket in order:
                    t0 = time.perf_counter()
                    fn(app)
                    bucket.append(time.perf_counter() - t0)
                if (i + 1) % max(1, rounds // 10) == 0:
                    print(f"  {name}: {i + 1}/{rounds}", file=sys.stderr, flush=True)
            raw_ms = statistics.median(t_raw) * 1000
            gated_ms = statistics.median(t_gated) * 1000
            results.append(
                {
                    "checkpointer": name,
                    "store": store_kind,
                    "rounds": rounds,
                    "raw_ms": round(raw_ms, 3),
                    "gated_ms": round(gated_ms, 3),
                    "ratio": round(gated_ms / raw_ms, 3),
                    "raw_p95_ms": round(sorted(t_raw)[int(0.95 * len(t_raw))] * 1000, 3),
                    "gated_p95_ms": round(sorted(t_gated)[int(0.95 * len(t_gated))] * 1000, 3),
                }
            )
            store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--checkpointers", default="memory,sqlite,postgres")
    p.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = p.parse_args(argv)
    rows = measure(a.rounds, a.warmup, a.checkpointers.split(","), a.store)
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    head = (
        f"{'checkpointer':<12} {'store':<7} {'raw ms':>8} {'gated ms':>9} {'ratio':>6} "
        f"{'raw p95':>8} {'gated p95':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['checkpointer']:<12} {r['store']:<7} {r['raw_ms']:>8.2f} {r['gated_ms']:>9.2f} "
            f"{r['ratio']:>6.2f} {r['raw_p95_ms']:>8.2f} {r['gated_p95_ms']:>10.2f}"
        )
    print(
        f"\nmedian of {a.rounds} interleaved cycles (invoke until interrupt + resume); "
        "target ratio <= 1.15 on sqlite"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
