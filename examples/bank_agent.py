"""A gated banking agent whose pause survives a process restart.

    python examples/bank_agent.py start  --dir /tmp/bank --thread t1 --amount 9000
    python examples/bank_agent.py status --dir /tmp/bank
    python examples/bank_agent.py decide --dir /tmp/bank --thread t1 --decision approve

``start`` runs the agent until the transfer waits for a human and exits; ``decide``, in
a new process, rebuilds the graph on the same SQLite files and resumes it. The ledger
file records each executed transfer, so you can check it ran exactly once.
Runs offline: the model is a scripted fake that always proposes the transfer.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from hitl_langgraph import GatedToolNode, RequestFilter, RiskPolicy, Rule, open_store
from hitl_langgraph.testing import ScriptedChatModel


def build_app(workdir: Path, amount: int) -> tuple[Any, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger.jsonl"

    @tool
    def transfer_funds(amount: int, to: str) -> str:
        """Transfer money to an account."""
        with ledger.open("a") as f:
            f.write(json.dumps({"amount": amount, "to": to}) + "\n")
        return f"sent {amount} to {to}"

    @tool
    def lookup_account(name: str) -> str:
        """Look up an account."""
        return f"{name}: balance 12,000"

    def script(messages: list[BaseMessage]) -> BaseMessage:
        if not any(isinstance(m, AIMessage) for m in messages):
            return AIMessage(
                "",
                tool_calls=[
                    {"name": "lookup_account", "args": {"name": "bob"}, "id": "call_lookup"},
                    {
                        "name": "transfer_funds",
                        "args": {"amount": amount, "to": "bob"},
                        "id": "call_pay",
                    },
                ],
            )
        return AIMessage(f"Finished: {messages[-1].content}")

    model = ScriptedChatModel(script=script)
    policy = RiskPolicy(
        rules=[
            Rule(
                tool="transfer_funds",
                score=lambda a: min(a["amount"] / 10_000, 1.0),
                approver_roles={"finance"},
            ),
            Rule(tool="lookup_*", score=0.0),
        ]
    )
    store = open_store(f"sqlite:///{workdir / 'hitl.db'}")
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    graph.add_node(
        "tools", GatedToolNode([transfer_funds, lookup_account], policy=policy, store=store)
    )
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    saver = SqliteSaver(sqlite3.connect(workdir / "checkpoints.db", check_same_thread=False))
    return graph.compile(checkpointer=saver), store


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", choices=["start", "status", "decide"])
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--thread", default="t1")
    p.add_argument("--amount", type=int, default=9_000)
    p.add_argument("--decision", choices=["approve", "reject"], default="approve")
    args = p.parse_args(argv)
    app, store = build_app(args.dir, args.amount)
    cfg = {"configurable": {"thread_id": args.thread}}
    if args.command == "start":
        out = app.invoke({"messages": [("user", f"pay bob {args.amount}")]}, cfg)
        for intr in out.get("__interrupt__", []):
            for req in intr.value["action_requests"]:
                print(
                    f"PAUSED {req['request_id']} {req['name']} {req['args']} "
                    f"risk={req['risk_score']}"
                )
        if not out.get("__interrupt__"):
            print("DONE", out["messages"][-1].content)
    elif args.command == "status":
        for rec in store.list_requests(RequestFilter(status=None)):
            print(rec.request_id, rec.thread_id, rec.tool, rec.status)
    else:
        pending = app.get_state(cfg).interrupts
        if not pending:
            print(f"thread {args.thread} has nothing pending", file=sys.stderr)
            return 1
        out = app.invoke(Command(resume={pending[0].id: {"type": args.decision}}), cfg)
        print("DONE", out["messages"][-1].content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
