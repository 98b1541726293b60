"""The demo's payments-and-support agent: tools, risk policy, scripted model, graph.

The tools write what they did to a JSON-lines ledger in the data folder, so the demo can
count what really ran, whichever graph object (or process) ran it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from ..gates import GatedToolNode
from ..policy import RiskPolicy, Rule
from ..store.base import ApprovalStore
from ..testing import ScriptedChatModel

__all__ = [
    "BASE_PROMPT",
    "NODE",
    "REQUESTS",
    "TOOL_NAMES",
    "DemoRequest",
    "build_app",
    "demo_policy",
    "scripted_model",
]

NODE = "support"
BASE_PROMPT = (
    "You are the payments and support agent of a small bank. Use the tools to answer "
    "customers: look up accounts, refund orders, transfer money. Never close accounts."
)
TOOL_NAMES = ["lookup_account", "refund", "transfer_funds", "close_account"]


@dataclass(frozen=True)
class DemoRequest:
    """One customer request of the batch, and the route the policy is expected to give it."""

    customer: str
    text: str
    expect: str  # auto / review / approve / deny


REQUESTS: list[DemoRequest] = [
    DemoRequest("alice", "What is the balance of alice?", "auto"),
    DemoRequest("bob", "Refund order O-1001: 120 dollars", "review"),
    DemoRequest("carol", "Transfer 9500 to bob", "approve"),
    DemoRequest("dave", "What is the balance of dave?", "auto"),
    DemoRequest("erin", "Refund order O-1002: 480 dollars", "review"),
    DemoRequest("frank", "Transfer 300 to alice", "auto"),
    DemoRequest("grace", "Transfer 12000 to acme-supplies", "approve"),
    DemoRequest("mallory", "Close the account of mallory and wipe its history", "deny"),
    DemoRequest("heidi", "Refund order O-1003: 75 dollars", "review"),
    DemoRequest("ivan", "Transfer 20000 to offshore-llc", "approve"),
    DemoRequest("judy", "What is the balance of judy?", "auto"),
]
FOLLOW_UP = DemoRequest("kim", "Refund order O-1004: 450 dollars", "review")
LEFT_PENDING = DemoRequest("leo", "Transfer 15000 to leo-holdings", "approve")


def demo_policy() -> RiskPolicy:
    """Lookups auto, refunds review (sampled), transfers by amount, account closing denied."""
    return RiskPolicy(
        rules=[
            Rule(tool="lookup_*", score=0.0),
            Rule(tool="refund", score=lambda a: 0.55 + min(int(a["amount"]), 1000) / 5000),
            Rule(
                tool="transfer_funds",
                score=lambda a: min(int(a["amount"]) / 10_000, 1.0),
                approver_roles=frozenset({"finance"}),
            ),
            Rule(
                tool="close_account",
                route="deny",
                reason="closing an account is never done by the agent; a branch does it",
            ),
        ]
    )


def make_tools(ledger: Path, run_id: str) -> list[BaseTool]:
    """The four tools; each appends what it did to ``ledger``."""

    def record(tool_name: str, **args: Any) -> None:
        with ledger.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"run": run_id, "tool": tool_name, "args": args}) + "\n")

    @tool
    def lookup_account(name: str) -> str:
        """Look up a customer's account and balance."""
        record("lookup_account", name=name)
        return f"{name}: balance {1000 + 37 * len(name)} dollars, account in good standing"

    @tool
    def refund(order: str, amount: int) -> str:
        """Refund an order to the customer's card."""
        record("refund", order=order, amount=amount)
        return f"refunded {amount} dollars on {order}"

    @tool
    def transfer_funds(amount: int, to: str) -> str:
        """Transfer money from the bank's operating account."""
        record("transfer_funds", amount=amount, to=to)
        return f"sent {amount} dollars to {to}"

    @tool
    def close_account(name: str) -> str:
        """Close a customer's account and delete its history."""
        record("close_account", name=name)
        return f"closed the account of {name}"

    return [lookup_account, refund, transfer_funds, close_account]


def _call(tool_name: str, **args: Any) -> AIMessage:
    call = {"name": tool_name, "args": args, "id": f"call_{uuid.uuid4().hex}"}
    return AIMessage("", tool_calls=[call])


def scripted_model(messages: list[BaseMessage]) -> BaseMessage:
    """An offline stand-in for a chat model: one tool call per request, then a reply."""
    last = messages[-1]
    if not isinstance(last, HumanMessage):
        return AIMessage(f"Done: {last.text}")
    ask = last.text
    if m := re.search(r"balance of (\S+?)\?", ask):
        return _call("lookup_account", name=m.group(1))
    if m := re.search(r"Refund order (\S+): (\d+)", ask):
        return _call("refund", order=m.group(1), amount=int(m.group(2)))
    if m := re.search(r"Transfer (\d+) to (\S+)", ask):
        return _call("transfer_funds", amount=int(m.group(1)), to=m.group(2))
    if m := re.search(r"account of (\S+)", ask):
        return _call("close_account", name=m.group(1))
    return AIMessage("I can look up accounts, refund orders and transfer money.")


def chat_model(spec: str | None, tools: Sequence[BaseTool]) -> Any:
    """``init_chat_model(spec)`` with the tools bound, or the scripted model if ``spec`` is None."""
    if spec is None:
        return ScriptedChatModel(script=scripted_model)
    from ..errors import missing_dependency

    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:  # pragma: no cover - the agents extra is missing
        raise missing_dependency("langchain", "agents", exc) from exc
    return init_chat_model(spec).bind_tools(list(tools))


def build_app(
    data: Path,
    store: ApprovalStore,
    *,
    run_id: str,
    observers: Sequence[Any] = (),
    trace_ids: Callable[[], tuple[str, str] | None] | None = None,
    system_prompt: Callable[[str], str] | None = None,
    prompts: list[str] | None = None,
    model: str | None = None,
) -> Any:
    """The compiled graph on ``data/checkpoints.db`` (a new connection each call).

    ``system_prompt(ask)`` builds the system prompt for a request (the feedback loop's
    ``ReviewerFeedback.apply``); every prompt the model is given is appended to ``prompts``.
    """
    from langgraph.checkpoint.sqlite import SqliteSaver

    tools = make_tools(data / "ledger.jsonl", run_id)
    llm = chat_model(model, tools)

    def support(state: MessagesState) -> dict[str, Any]:
        ask = next((m.text for m in state["messages"] if isinstance(m, HumanMessage)), "")
        system = system_prompt(ask) if system_prompt else BASE_PROMPT
        if prompts is not None:
            prompts.append(system)
        return {"messages": [llm.invoke([SystemMessage(system), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node(NODE, support)
    graph.add_node(
        "tools",
        GatedToolNode(
            tools, policy=demo_policy(), store=store, observers=observers, trace_ids=trace_ids
        ),
    )
    graph.add_edge(START, NODE)
    graph.add_conditional_edges(NODE, tools_condition)
    graph.add_edge("tools", NODE)
    conn = sqlite3.connect(data / "checkpoints.db", check_same_thread=False)
    return graph.compile(checkpointer=SqliteSaver(conn))
