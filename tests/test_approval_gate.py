"""approval_gate: gating a non-tool action held in the state."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures_graph import thread
from langgraph.graph import START, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict

from hitl_langgraph import ConfigurationError, RiskPolicy, Rule, approval_gate, open_store


class State(TypedDict, total=False):
    payment: dict[str, Any] | None
    sent: list[dict[str, Any]]
    outcome: dict[str, Any]
    status: str


def build(store: Any, checkpointer: Any) -> Any:
    policy = RiskPolicy(
        rules=[Rule(tool="payment", score=lambda a: min(a["amount"] / 10_000, 1.0))]
    )

    def send(state: State) -> dict[str, Any]:
        return {"sent": [*state.get("sent", []), state["payment"]], "status": "sent"}

    def redraft(state: State) -> dict[str, Any]:
        return {"status": "rejected"}

    g = StateGraph(State)
    g.add_node(
        "review",
        approval_gate(
            "payment",
            policy=policy,
            store=store,
            on_approve="send",
            on_reject="redraft",
            decision_key="outcome",
        ),
        destinations=("send", "redraft"),
    )
    g.add_node("send", send)
    g.add_node("redraft", redraft)
    g.add_edge(START, "review")
    return g.compile(checkpointer=checkpointer)


@pytest.fixture
def app(checkpointer: Any, tmp_path: Any) -> Any:
    return build(open_store(f"sqlite:///{tmp_path}/h.db"), checkpointer)


def test_low_risk_goes_straight_through(app: Any) -> None:
    out = app.invoke({"payment": {"amount": 100, "to": "acme"}}, thread())
    assert out["status"] == "sent" and out["outcome"]["route"] == "auto"


def test_high_risk_waits_and_approval_routes_on(app: Any) -> None:
    cfg = thread()
    out = app.invoke({"payment": {"amount": 12_000, "to": "acme"}}, cfg)
    intr = out["__interrupt__"][0]
    assert intr.value["action_requests"][0]["name"] == "payment"
    out = app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert out["status"] == "sent" and out["sent"] == [{"amount": 12_000, "to": "acme"}]
    assert out["outcome"]["outcome"] == "run"


def test_reject_routes_to_on_reject(app: Any) -> None:
    cfg = thread()
    intr = app.invoke({"payment": {"amount": 12_000, "to": "acme"}}, cfg)["__interrupt__"][0]
    out = app.invoke(Command(resume={intr.id: {"type": "reject", "message": "too much"}}), cfg)
    assert out["status"] == "rejected" and "sent" not in out
    assert out["outcome"]["message"] == "too much"


def test_edit_writes_the_new_args_back(app: Any) -> None:
    cfg = thread()
    intr = app.invoke({"payment": {"amount": 12_000, "to": "acme"}}, cfg)["__interrupt__"][0]
    edit = {
        "type": "edit",
        "edited_action": {"name": "payment", "args": {"amount": 800, "to": "acme"}},
    }
    out = app.invoke(Command(resume={intr.id: edit}), cfg)
    assert out["sent"] == [{"amount": 800, "to": "acme"}] and out["outcome"]["outcome"] == "edited"


def test_missing_action_and_bad_setup(app: Any) -> None:
    assert app.invoke({"payment": None}, thread())["status"] == "sent"
    with pytest.raises(ConfigurationError):
        approval_gate("payment", on_approve="a", on_reject="b")
