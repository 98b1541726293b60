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


def test_per_call_each_gated_call_gets_its_own_interrupt(store: Any) -> None:
    ledger = Ledger()
    first = tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}),
        ("close_account", {"name": "old"}),
        ("lookup_account", {"name": "bob"}),
    )
    app = agent(first, ledger, store, policy=bank_policy(), interrupt_mode="per_call")
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


def test_per_call_interrupt_on_alone_behaves_like_langchain(store: Any) -> None:
    ledger = Ledger()
    app = agent(
        tool_call(
            ("close_account", {"name": "x"}), ("transfer_funds", {"amount": 99_999, "to": "z"})
        ),
        ledger,
        store,
        interrupt_on={"close_account": {"allowed_decisions": ["approve", "reject"]}},
        interrupt_mode="per_call",
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


# -- batched (the default, as in LangChain) ----------------------------------------------


def _turn() -> Any:
    return tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}),
        ("lookup_account", {"name": "bob"}),
        ("close_account", {"name": "old"}),
    )


def test_batched_one_interrupt_per_turn_in_call_order_nothing_runs_early(store: Any) -> None:
    ledger = Ledger()
    app = agent(_turn(), ledger, store, policy=bank_policy())
    cfg = thread()
    (intr,) = app.invoke({"messages": [("user", "go")]}, cfg)["__interrupt__"]
    names = [a["name"] for a in intr.value["action_requests"]]
    assert names == ["transfer_funds", "close_account"]
    assert ledger.entries == []  # the ungated lookup waits for the decisions too
    out = app.invoke(
        Command(resume={"decisions": [{"type": "approve"}, {"type": "reject", "message": "no"}]}),
        cfg,
    )
    assert "__interrupt__" not in out
    assert ledger.count("transfer_funds") == 1 and ledger.count("lookup_account") == 1
    assert ledger.count("close_account") == 0
    msgs = {m.name: m for m in out["messages"] if isinstance(m, ToolMessage)}
    rejected = msgs["close_account"]
    assert rejected.content == "User rejected the tool call for `close_account` with reason: no"
    assert rejected.additional_kwargs == {
        "lc_source": "hitl_interrupt_decision",
        "lc_data": {"decision": "reject"},
    }
    assert rejected.response_metadata["hitl"]["outcome"] == "reject"
    assert msgs["transfer_funds"].additional_kwargs == {}


def test_batched_decisions_by_request_id_any_order_and_subsets(store: Any) -> None:
    ledger = Ledger()
    app = agent(_turn(), ledger, store, policy=bank_policy())
    cfg = thread()
    (intr,) = app.invoke({"messages": [("user", "go")]}, cfg)["__interrupt__"]
    ids = {a["name"]: a["request_id"] for a in intr.value["action_requests"]}
    out = app.invoke(
        Command(resume={intr.id: {"decisions": [
            {"type": "respond", "message": "closed already", "request_id": ids["close_account"]},
        ]}}),
        cfg,
    )  # fmt: skip
    (again,) = out["__interrupt__"]  # the undecided call is asked again; nothing ran
    assert [a["name"] for a in again.value["action_requests"]] == ["transfer_funds"]
    assert ledger.entries == []
    out = app.invoke(Command(resume={again.id: {"type": "approve"}}), cfg)
    assert ledger.count("transfer_funds") == 1 and ledger.count("close_account") == 0
    msgs = {m.name: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert msgs["close_account"].content == "closed already"
    assert msgs["close_account"].additional_kwargs["lc_data"] == {"decision": "respond"}


def test_batched_edit_runs_the_reviewers_call_once_with_langchains_notice(store: Any) -> None:
    ledger = Ledger()
    app = agent(
        tool_call(("close_account", {"name": "old"})), ledger, store,
        interrupt_on={"close_account": True},
    )  # fmt: skip
    cfg = thread()
    (intr,) = app.invoke({"messages": [("user", "go")]}, cfg)["__interrupt__"]
    edit = {"type": "edit", "edited_action": {"name": "close_account", "args": {"name": "new"}}}
    out = app.invoke(Command(resume={"decisions": [edit]}), cfg)
    assert ledger.entries == [("close_account", {"name": "new"})]
    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert 'Executed instead: close_account with arguments {"name": "new"}' in msg.content


def test_interrupt_on_forms(store: Any) -> None:
    def describe(call: Any, state: Any, runtime: Any) -> str:
        return f"close {call['args']['name']}?"

    ledger = Ledger()
    app = agent(
        _turn(), ledger, store,
        interrupt_on={
            "transfer_funds": {"allowed_decisions": ["approve"], "when": lambda r: False},
            "close_account": {"allowed_decisions": ["approve", "reject"], "description": describe},
            "lookup_account": {"allowed_decisions": ["approve"], "description": "Look up?"},
        },
        description_prefix="unused here",
    )  # fmt: skip
    cfg = thread()
    (intr,) = app.invoke({"messages": [("user", "go")]}, cfg)["__interrupt__"]
    reqs = {a["name"]: a for a in intr.value["action_requests"]}
    assert list(reqs) == ["lookup_account", "close_account"]  # `when` False: not asked
    assert reqs["close_account"]["description"] == "close old?"
    assert reqs["lookup_account"]["description"] == "Look up?"
    assert intr.value["review_configs"][1]["allowed_decisions"] == ["approve", "reject"]

    prefixed = agent(
        _turn(), Ledger(), store, interrupt_on={"close_account": True}, description_prefix="Check"
    )
    (intr,) = prefixed.invoke({"messages": [("user", "go")]}, thread())["__interrupt__"]
    assert intr.value["description"] == "Check\n\nTool: close_account\nArgs: {'name': 'old'}"
    assert intr.value["allowed_decisions"] == ["approve", "edit", "reject", "respond"]


@pytest.mark.parametrize(
    ("interrupt_on", "kwargs", "match"),
    [
        ({"close_account": {"alowed_decisions": ["approve"]}}, {}, "alowed_decisions"),
        ({"close_account": {"allowed_decisions": []}}, {}, "close_account"),
        ({"close_account": {"allowed_decisions": ["maybe"]}}, {}, "maybe"),
        ({"sned_email": True}, {"tools": ["close_account"]}, "sned_email"),
        ({"close_account": True}, {"interrupt_mode": "sometimes"}, "sometimes"),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    interrupt_on: Any, kwargs: Any, match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        HITLMiddleware(store=open_store("memory://"), interrupt_on=interrupt_on, **kwargs)


@pytest.mark.parametrize("mode", ["batched", "per_call"])
def test_a_gated_call_without_id_is_refused(store: Any, mode: str) -> None:
    first = tool_call(("close_account", {"name": "old"}))
    first.tool_calls[0]["id"] = None
    app = agent(first, Ledger(), store, interrupt_on={"close_account": True}, interrupt_mode=mode)
    with pytest.raises(ValueError, match="`close_account` has no ID"):
        app.invoke({"messages": [("user", "go")]}, thread())


def test_the_stricter_of_interrupt_on_and_the_policy_wins(store: Any) -> None:
    policy = RiskPolicy(
        rules=[Rule(tool="close_account", score=1.0, route="deny"), Rule(tool="*", score=0.0)]
    )
    ledger = Ledger()
    app = agent(
        tool_call(("close_account", {"name": "x"}), ("lookup_account", {"name": "y"})),
        ledger, store, policy=policy,
        interrupt_on={"close_account": True, "lookup_account": True},
    )  # fmt: skip
    cfg = thread()
    (intr,) = app.invoke({"messages": [("user", "go")]}, cfg)["__interrupt__"]
    # close_account: the policy's deny is stricter than interrupt_on's approval
    assert [a["name"] for a in intr.value["action_requests"]] == ["lookup_account"]
    out = app.invoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg)
    assert ledger.count("close_account") == 0 and ledger.count("lookup_account") == 1
    msgs = {m.name: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert msgs["close_account"].status == "error" and "denied" in msgs["close_account"].content
