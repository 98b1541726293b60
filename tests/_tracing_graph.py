"""A small LangGraph agent for the tracing tests: fake chat model, one tool, no network.

One run makes 9 LangChain spans (LangGraph, agent x2, model x2, route x2, tools, lookup);
the tool reports a gate event to ``on_tool`` (if given) from inside the tool call.

:func:`build_bank_agent` is the gated banking agent of the review tests and benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from hitl_langgraph.gates.events import EventKind, GateEvent

SPANS_PER_RUN = 9


def make_event(kind: EventKind = "executed", **overrides: Any) -> GateEvent:
    """A GateEvent with every field filled in (override any of them)."""
    fields: dict[str, Any] = {
        "kind": kind,
        "request_id": "req-1",
        "node": "tools",
        "tool": "lookup",
        "args": {"q": "refund policy", "limit": 3},
        "digest": "sha256:abc123",
        "score": 0.72,
        "route": "approve",
        "reasons": ("tool lookup is sensitive", "amount > 100"),
        "policy_version": "policy-v7",
        "at": datetime.now(timezone.utc),
        "thread_id": "thread-9",
        "user_id": "user-3",
        "decision": "approve",
        "reviewer": "alice",
        "reviewer_roles": ("ops", "lead"),
        "waited_seconds": 12.5,
        "sampled_for_review": False,
        "error": None,
        "extra": {"ticket": "T-1"},
    }
    fields.update(overrides)
    return GateEvent(**fields)


def build_graph(on_tool: Callable[[GateEvent], None] | None = None) -> Any:
    """Compile the agent; a fresh fake model per call of :func:`run`."""

    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        if on_tool is not None:
            on_tool(make_event("executed", args={"q": q}))
        return f"found: {q}"

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        turn = sum(isinstance(m, AIMessage) for m in state["messages"])
        reply = (
            AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "refunds"}, "id": "c1"}])
            if turn == 0
            else AIMessage("Refunds take 5 days.")
        )
        model = GenericFakeChatModel(messages=iter([reply]))
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([lookup]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile()


def run(app: Any, text: str = "How long do refunds take?") -> dict[str, Any]:
    """Invoke the graph once."""
    result: dict[str, Any] = app.invoke({"messages": [HumanMessage(text)]})
    return result


def build_bank_agent(store: Any, tracing: Any, sampler: Any) -> tuple[Any, Any]:
    """The banking agent (app, ledger): one ``transfer_funds(6000)`` call, which
    ``bank_policy`` scores 0.6 and routes ``review``; the gate reports to a span recorder
    and ``sampler``. Checkpointed in memory, so each run needs a ``thread_id``."""
    from fixtures_graph import Ledger, bank_policy, bank_tools, scripted_turns
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.prebuilt import tools_condition

    from hitl_langgraph import GatedToolNode
    from hitl_langgraph.tracing import GateSpanRecorder

    ledger = Ledger()
    call = {"name": "transfer_funds", "args": {"amount": 6000, "to": "bob"}, "id": "c1"}
    model = scripted_turns(AIMessage("", tool_calls=[call]))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    tools = GatedToolNode(
        bank_tools(ledger),
        policy=bank_policy(),
        store=store,
        observers=[GateSpanRecorder(tracing), sampler],
    )
    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver()), ledger
