"""06 - a graph module the ``hitl`` CLI can import (``--graph 06_graph:build``).

Its data (SQLite store, checkpoints, ledger) lives in ``$HITL_EXAMPLE_DIR``, by default
``<tmp>/hitl-example-06``. Transfers above 8,500 need **two** approvers from ``finance``
(``quorum=2``). Used by ``06_inbox_quorum.py``; the CLI resumes with it::

    cd examples && hitl --store sqlite:///<dir>/hitl.db --graph 06_graph:build pending
"""

import json
import os
import sqlite3
import tempfile
import uuid
from pathlib import Path

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store
from hitl_langgraph.testing import ScriptedChatModel

DATA = Path(os.environ.get("HITL_EXAMPLE_DIR") or Path(tempfile.gettempdir()) / "hitl-example-06")
DATA.mkdir(parents=True, exist_ok=True)
STORE_URL = f"sqlite:///{DATA / 'hitl.db'}"
LEDGER = DATA / "ledger.jsonl"


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    with LEDGER.open("a") as f:
        f.write(json.dumps({"amount": amount, "to": to}) + "\n")
    return f"sent {amount} to {to}"


def script(messages):
    if messages[-1].type == "human":
        amount = int(messages[-1].content.split()[-1])
        call = {"name": "transfer_funds", "args": {"amount": amount, "to": "bob"},
                "id": f"call_{uuid.uuid4().hex[:8]}"}
        return AIMessage("", tool_calls=[call])
    return AIMessage(f"Done: {messages[-1].content}")


policy = RiskPolicy(rules=[
    Rule(tool="transfer_funds", score=lambda a: min(a["amount"] / 10_000, 1.0),
         approver_roles=frozenset({"finance"}), quorum=2),
])


def build():
    """The compiled graph on the example's SQLite files (the CLI calls this)."""
    model = ScriptedChatModel(script=script)
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    graph.add_node("tools", GatedToolNode([transfer_funds], policy=policy,
                                          store=open_store(STORE_URL)))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    conn = sqlite3.connect(DATA / "checkpoints.db", check_same_thread=False)
    return graph.compile(checkpointer=SqliteSaver(conn))
