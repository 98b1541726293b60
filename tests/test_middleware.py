"""HITLMiddleware inside langchain's create_agent."""

from __future__ import annotations

from typing import Any

import pytest
from fixtures_graph import Ledger, bank_policy, bank_tools, scripted_turns, thread
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import (
    Action,
    ConfigurationError,
    DigestMismatch,
    HITLMiddleware,
    InvalidDecision,
    RiskPolicy,
    Rule,
    open_store,
)
from hitl_langgraph.testing import tool_call


def agent(first: Any, ledger: Ledger, store: Any, **mw: Any) -> Any:
    middleware = HITLMiddleware(store=store, **mw)
    return create_agent(
        scripted_turns(first),
        tools=bank_tools(ledger),
        middleware=[middleware],
        checkpointer=InMemorySaver(),
    )


@pytest.fixture
def store(tmp_path: Any) -> Any:
    return open_store(f"sqlite:///{tmp_path}/h.db")


def test_each_gated_call_gets_its_own_interrupt(store: Any) -> None:
    ledger = Ledger()
    first = tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}),
        ("close_account", {"name": "old"}),
        ("lookup_account", {"name": "bob"}),
    )
    app = agent(first, ledger, store, policy=bank_policy())
    cfg = thread()
    out = app.invoke({"messages": [("user", "go")]}, cfg)
    interrupts = out["__interrupt__"]
    assert sorted(i.value["action_requests"][0]["name"] for i in interrupts) == [
        "close_account",
        "transfer_funds",
    ]
    assert ledger.count("lookup_account") == 1
    by = {i.value["action_requests"][0]["name"]: i for i in interrupts}
    out = app.invoke(
        Command(resume={by["close_account"].id: {"type": "reject", "message": "keep it"}}), cfg
    )
    assert ledger.count("close_account") == 0
    out = app.invoke(
        Command(resume={by["transfer_funds"].id: {"decisions": [{"type": "approve"}]}}), cfg
    )
    assert ledger.count("transfer_funds") == 1 and ledger.count("lookup_account") == 1
    msgs = {m.name: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert (
        "keep it" in msgs["close_account"].content
        and msgs["transfer_funds"].content == "sent 9000 to bob"
    )


def test_cross_tool_edit_does_not_bypass_the_target_gate(store: Any) -> None:
    """LangChain's middleware runs a cross-tool edit ungated (langchain#40166); we do not."""
    ledger = Ledger()
    app = agent(
        tool_call(("lookup_account", {"name": "bob"})),
        ledger,
        store,
        policy=bank_policy(),
        interrupt_on={"lookup_account": True},
    )
    cfg = thread()
    intr = app.invoke({"messages": [("user", "go")]}, cfg)["__interrupt__"][0]
    edit = {"type": "edit", "edited_action": {"name": "close_account", "args": {"name": "bob"}}}
    out = app.invoke(Command(resume={intr.id: edit}), cfg)
    assert ledger.entries == []
    (follow,) = out["__interrupt__"]
    assert follow.value["action_requests"][0]["name"] == "close_account"
    with pytest.raises(DigestMismatch):
        app.invoke(Command(resume={follow.id: {"type": "approve", "digest": "sha256:bad"}}), cfg)
    app.invoke(Command(resume={follow.id: {"type": "approve"}}), cfg)
    assert ledger.entries == [("close_account", {"name": "bob"})]


def test_interrupt_on_alone_behaves_like_langchain(store: Any) -> None:
    ledger = Ledger()
    app = agent(
        tool_call(
            ("close_account", {"name": "x"}), ("transfer_funds", {"amount": 99_999, "to": "z"})
        ),
        ledger,
        store,
        interrupt_on={"close_account": {"allowed_decisions": ["approve", "reject"]}},
    )
    cfg = thread()
    out = app.invoke({"messages": [("user", "go")]}, cfg)
    (intr,) = out["__interrupt__"]  # transfer_funds is not listed: it runs
    assert ledger.count("transfer_funds") == 1
    assert intr.value["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
    with pytest.raises(InvalidDecision, match="not allowed"):
        app.invoke(Command(resume={intr.id: {"type": "respond", "message": "x"}}), cfg)
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert ledger.count("close_account") == 1


def test_async_agent_path(store: Any) -> None:
    import asyncio

    ledger = Ledger()
    app = agent(
        tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})),
        ledger,
        store,
        policy=bank_policy(),
    )

    async def run() -> None:
        cfg = thread()
        out = await app.ainvoke({"messages": [("user", "go")]}, cfg)
        intr = out["__interrupt__"][0]
        await app.ainvoke(Command(resume={intr.id: {"type": "approve"}}), cfg)

    asyncio.run(run())
    assert ledger.count("transfer_funds") == 1


def test_needs_a_store_and_a_policy() -> None:
    with pytest.raises(ConfigurationError):
        HITLMiddleware(policy=bank_policy())
    with pytest.raises(ConfigurationError):
        HITLMiddleware(store=open_store("memory://"))


def test_interrupt_on_keeps_the_policy_adjusters(store: Any) -> None:
    def bump(action: Any, ctx: Any) -> tuple[float, str]:
        return 0.5, "adjusted by reviews: +0.50"

    policy = RiskPolicy(rules=[Rule(tool="lookup_*", score=0.4)], adjusters=[bump])
    mw = HITLMiddleware(policy, store=store, interrupt_on={"close_account": True})
    a = mw.engine.policy.assess(Action("lookup_account", {"name": "x"}))
    assert a.route == "approve" and "adjusted by reviews: +0.50" in a.reasons
