"""Gate events reach observers once, including decisions recorded through the inbox."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures_graph import Ledger, bank_policy, bank_tools, scripted_turns, thread
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from hitl_langgraph import GatedToolNode, GateEvent, Inbox, NotAuthorized, Reviewer, open_store
from hitl_langgraph.testing import tool_call


def build(store: Any, ledger: Ledger, events: list[GateEvent], **gate: Any) -> Any:
    model = scripted_turns(tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})))
    g = StateGraph(MessagesState)
    g.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_node(
        "tools",
        GatedToolNode(
            bank_tools(ledger), policy=bank_policy(), store=store, observers=[events.append], **gate
        ),
    )
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver())


def test_inbox_decision_reaches_gate_observers_once(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    ledger, events = Ledger(), []
    app = build(store, ledger, events)
    cfg = thread()
    intr = app.invoke({"messages": [("user", "pay")]}, cfg)["__interrupt__"][0]
    (requested,) = [e for e in events if e.kind == "requested"]
    assert requested.approver_roles == ("finance",) and requested.score == 0.9
    rid = intr.value["action_requests"][0]["request_id"]
    Inbox(store, app).approve(rid, reviewer=Reviewer("alice", {"finance"}))
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)  # a late duplicate resume
    decided = [e for e in events if e.kind == "decided"]
    assert [(e.reviewer, e.decision) for e in decided] == [("alice", "approve")]
    assert [e.kind for e in events].count("executed") == 1 and ledger.count("transfer_funds") == 1


def test_gate_can_require_inbox_recorded_decisions(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    ledger, events = Ledger(), []
    app = build(store, ledger, events, require_recorded_decisions=True)
    cfg = thread()
    intr = app.invoke({"messages": [("user", "pay")]}, cfg)["__interrupt__"][0]
    with pytest.raises(NotAuthorized, match="inbox"):
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert ledger.entries == [] and app.get_state(cfg).interrupts[0].id == intr.id
    rid = intr.value["action_requests"][0]["request_id"]
    result = Inbox(store, app).approve(rid, reviewer=Reviewer("alice", {"finance"}))
    assert result.outcome == "resumed" and ledger.count("transfer_funds") == 1
