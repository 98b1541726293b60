"""Graphs for the LangGraph Agent Server (``langgraph dev`` / ``langgraph up``).

Three gated graphs sharing one approval store, so one inbox sees them all:

* ``bank``   - a ``StateGraph`` whose tools run in a :class:`GatedToolNode`;
* ``payout`` - a state action gated by :func:`approval_gate`;
* ``agent``  - langchain's ``create_agent`` with :class:`HITLMiddleware`.

The server brings its own checkpointer, so the graphs are compiled without one.
Settings (environment, e.g. the ``env`` file named in ``langgraph.json``):

``HITL_STORE_URL``   the approval store (``sqlite:///hitl.db``, ``postgresql://...``)
``HITL_TOOL_DELAY``  seconds ``transfer_funds`` takes (demonstrates slow tools; 0)
``HITL_LEDGER``      a file every executed transfer is appended to (to count them)

The model is scripted (no API key needed): "transfer 9000 to bob" makes a
``transfer_funds`` call, "lookup bob" a ``lookup_account`` call. Swap in a real
chat model for a real agent.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from typing_extensions import TypedDict

from hitl_langgraph import (
    GatedToolNode,
    HITLMiddleware,
    RiskPolicy,
    Rule,
    approval_gate,
    open_store,
)
from hitl_langgraph.testing import ScriptedChatModel, tool_call

STORE = open_store(os.environ.get("HITL_STORE_URL", "sqlite:///hitl.db"))
DELAY = float(os.environ.get("HITL_TOOL_DELAY", "0"))
LEDGER = os.environ.get("HITL_LEDGER")

POLICY = RiskPolicy(
    rules=[
        Rule(
            tool="transfer_funds",
            score=lambda args: min(args["amount"] / 10_000, 1.0),
            approver_roles=frozenset({"finance"}),
        ),
        Rule(tool="lookup_*", score=0.0),
        Rule(tool="payout", score=0.9),
    ]
)


def _record(line: str) -> None:
    if LEDGER:
        with open(LEDGER, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    _record(f"started transfer_funds {amount} {to}")
    time.sleep(DELAY)  # a sync tool: runs in a worker thread, never on the event loop
    _record(f"executed transfer_funds {amount} {to}")
    return f"sent {amount} to {to}"


@tool
def lookup_account(name: str) -> str:
    """Look an account up."""
    return f"account {name}: balance 100"


def _script(messages: list[BaseMessage]) -> BaseMessage:
    last = messages[-1]
    if isinstance(last, HumanMessage):
        text = str(last.content)
        if m := re.search(r"transfer (\d+) to (\w+)", text):
            return tool_call(("transfer_funds", {"amount": int(m[1]), "to": m[2]}))
        if m := re.search(r"lookup (\w+)", text):
            return tool_call(("lookup_account", {"name": m[1]}))
    return AIMessage("done")


MODEL = ScriptedChatModel(script=_script)


async def _agent(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await MODEL.ainvoke(state["messages"])]}


def _bank() -> Any:
    g = StateGraph(MessagesState)
    g.add_node("agent", _agent)
    g.add_node("tools", GatedToolNode([transfer_funds, lookup_account], policy=POLICY, store=STORE))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile()


class PayoutState(TypedDict, total=False):
    payout: dict[str, Any]
    result: str


def _payout() -> Any:
    g = StateGraph(PayoutState)
    g.add_node(
        "gate",
        approval_gate("payout", on_approve="pay", on_reject="stop", policy=POLICY, store=STORE),
    )
    g.add_node("pay", lambda s: {"result": f"paid {s['payout']}"})
    g.add_node("stop", lambda s: {"result": "stopped"})
    g.add_edge(START, "gate")
    return g.compile()


bank = _bank()
payout = _payout()
agent = create_agent(
    MODEL,
    tools=[transfer_funds, lookup_account],
    middleware=[HITLMiddleware(policy=POLICY, store=STORE)],
)
