"""GatedToolNode through its public API, on every LangGraph checkpointer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from fixtures_graph import Ledger, build_bank_app, pause_bank, thread
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from hitl_langgraph import (
    AlreadyDecided,
    DigestMismatch,
    InvalidDecision,
    RequestFilter,
    open_store,
)
from hitl_langgraph.testing import tool_call


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Any:
    s = open_store(f"sqlite:///{tmp_path}/hitl.db")
    yield s
    s.close()


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def test_auto_call_runs_without_interrupt(checkpointer: Any, sqlite_store: Any) -> None:
    ledger = Ledger()
    app = build_bank_app(
        sqlite_store, checkpointer, tool_call(("lookup_account", {"name": "bob"})), ledger
    )
    out = app.invoke({"messages": [("user", "balance?")]}, thread())
    assert "__interrupt__" not in out
    assert ledger.count("lookup_account") == 1
    assert tool_messages(out)[0].content == "account bob: balance 100"
    assert sqlite_store.count_requests(RequestFilter(status=None)) == 0


def test_gated_transfer_pauses_then_runs_once_after_approval(checkpointer: Any, store: Any) -> None:
    ledger = Ledger()
    first = tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    app = build_bank_app(store, checkpointer, first, ledger)
    cfg = thread()
    out = app.invoke({"messages": [("user", "pay bob 9000")]}, cfg)
    (intr,) = out["__interrupt__"]
    req = intr.value["action_requests"][0]
    assert (
        req["name"] == "transfer_funds" and req["risk_score"] == 0.9 and req["route"] == "approve"
    )
    assert intr.value["review_configs"][0]["allowed_decisions"] == [
        "approve",
        "edit",
        "reject",
        "respond",
    ]
    assert ledger.entries == []
    rec = store.get_request(req["request_id"])
    assert (
        rec.status == "pending"
        and rec.interrupt_id == intr.id
        and rec.thread_id == cfg["configurable"]["thread_id"]
    )
    assert rec.approver_roles == ["finance"] and rec.digest == req["digest"]
    assert [r.request_id for r in store.list_requests()] == [req["request_id"]]

    out = app.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}]}}), cfg)
    assert ledger.count("transfer_funds") == 1
    assert tool_messages(out)[0].content == "sent 9000 to bob"
    assert out["messages"][-1].content == "done"
    assert store.get_request(req["request_id"]).status == "approved"
    # a second resume after completion does not run it again
    app.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}]}}), cfg)
    assert ledger.count("transfer_funds") == 1
    assert store.verify_audit().ok


def test_rejection_runs_nothing_and_tells_the_model_why(
    checkpointer: Any, sqlite_store: Any
) -> None:
    app, cfg, intr, ledger = pause_bank(
        sqlite_store, checkpointer, tool_call(("transfer_funds", {"amount": 9_500, "to": "eve"}))
    )
    out = app.invoke(
        Command(resume={intr.id: {"type": "reject", "message": "eve is not a customer"}}), cfg
    )
    assert ledger.entries == []
    msg = tool_messages(out)[0]
    assert msg.status == "error" and "eve is not a customer" in msg.content
    assert (
        sqlite_store.get_request(intr.value["action_requests"][0]["request_id"]).status
        == "rejected"
    )


def test_respond_returns_the_human_answer_in_place_of_the_tool(sqlite_store: Any) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    app, cfg, intr, ledger = pause_bank(
        sqlite_store, InMemorySaver(), tool_call(("close_account", {"name": "bob"}))
    )
    out = app.invoke(
        Command(
            resume={intr.id: {"decisions": [{"type": "respond", "message": "closed by hand"}]}}
        ),
        cfg,
    )
    assert ledger.entries == []
    assert tool_messages(out)[0].content == "closed by hand"


def test_denied_call_never_runs(checkpointer: Any, sqlite_store: Any) -> None:
    ledger = Ledger()
    app = build_bank_app(
        sqlite_store, checkpointer, tool_call(("wipe_records", {"name": "bob"})), ledger
    )
    out = app.invoke({"messages": [("user", "wipe bob")]}, thread())
    assert "__interrupt__" not in out
    msg = tool_messages(out)[0]
    assert (
        msg.status == "error"
        and "denied by policy" in msg.content
        and "never allowed" in msg.content
    )
    assert ledger.entries == []
    (rec,) = sqlite_store.list_requests(RequestFilter(status=("denied",)))
    assert rec.tool == "wipe_records"


def test_parallel_calls_in_one_task_are_decided_independently(
    checkpointer: Any, sqlite_store: Any
) -> None:
    ledger = Ledger()
    first = tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}),
        ("lookup_account", {"name": "bob"}),
        ("close_account", {"name": "old"}),
    )
    app = build_bank_app(sqlite_store, checkpointer, first, ledger)
    cfg = thread()
    intr = app.invoke({"messages": [("user", "do it all")]}, cfg)["__interrupt__"][0]
    ids = [a["request_id"] for a in intr.value["action_requests"]]
    assert [a["name"] for a in intr.value["action_requests"]] == ["transfer_funds", "close_account"]
    # answer the second one first, by request id: it runs now, the other stays pending
    out = app.invoke(
        Command(resume={intr.id: {"decisions": [{"type": "approve", "request_id": ids[1]}]}}), cfg
    )
    assert ledger.count("close_account") == 1 and ledger.count("transfer_funds") == 0
    (intr2,) = out["__interrupt__"]
    assert intr2.id != intr.id
    assert [a["request_id"] for a in intr2.value["action_requests"]] == [ids[0]]
    assert sqlite_store.get_request(ids[0]).interrupt_id == intr2.id
    out = app.invoke(
        Command(resume={intr2.id: {"decisions": [{"type": "approve", "request_id": ids[0]}]}}), cfg
    )
    assert "__interrupt__" not in out
    assert ledger.count("transfer_funds") == 1 and ledger.count("close_account") == 1
    assert ledger.count("lookup_account") == 1
    contents = [m.content for m in tool_messages(out)]
    assert contents == ["sent 9000 to bob", "account bob: balance 100", "closed old"]
    events = [e.event for e in sqlite_store.list_audit()]
    assert events.count("requested") == 2 and events.count("decided") == 2


def test_send_routing_gives_each_gated_call_its_own_interrupt(
    checkpointer: Any, sqlite_store: Any
) -> None:
    ledger = Ledger()
    first = tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}), ("close_account", {"name": "old"})
    )
    app = build_bank_app(sqlite_store, checkpointer, first, ledger, send=True)
    cfg = thread()
    out = app.invoke({"messages": [("user", "both")]}, cfg)
    interrupts = out["__interrupt__"]
    assert len(interrupts) == 2 and interrupts[0].id != interrupts[1].id
    by_tool = {i.value["action_requests"][0]["name"]: i for i in interrupts}
    out = app.invoke(Command(resume={by_tool["close_account"].id: {"type": "approve"}}), cfg)
    assert ledger.count("close_account") == 1 and ledger.count("transfer_funds") == 0
    assert [i.id for i in out["__interrupt__"]] == [by_tool["transfer_funds"].id]
    out = app.invoke(Command(resume={by_tool["transfer_funds"].id: {"type": "reject"}}), cfg)
    assert ledger.count("transfer_funds") == 0 and ledger.count("close_account") == 1
    assert out["messages"][-1].content == "done"


BAD_PAYLOADS = [
    ("not a dict", InvalidDecision, "must be a dict"),
    ({"decisions": []}, InvalidDecision, "decisions"),
    ({"decisions": [{"type": "aprove"}]}, InvalidDecision, "malformed"),
    ({"decisions": [{"type": "approve", "extra": 1}]}, InvalidDecision, "extra"),
    (
        {"decisions": [{"type": "approve"}, {"type": "approve"}]},
        InvalidDecision,
        r"2 decision\(s\) for 1",
    ),
    (
        {"decisions": [{"type": "approve", "request_id": "req_nope"}]},
        InvalidDecision,
        "not pending",
    ),
    (
        {"decisions": [{"type": "approve", "digest": "sha256:00"}]},
        DigestMismatch,
        "different action",
    ),
    (
        {
            "decisions": [
                {
                    "type": "edit",
                    "edited_action": {"name": "transfer_funds", "args": {"amount": "x"}},
                }
            ]
        },
        InvalidDecision,
        "schema",
    ),
    (
        {"decisions": [{"type": "edit", "edited_action": {"name": "nuke", "args": {}}}]},
        InvalidDecision,
        "does not have",
    ),
    (
        {
            "decisions": [
                {"type": "edit", "edited_action": {"name": "wipe_records", "args": {"name": "x"}}}
            ]
        },
        InvalidDecision,
        "denied by the policy",
    ),
]


@pytest.mark.parametrize(("payload", "error", "text"), BAD_PAYLOADS)
def test_bad_resume_payload_is_refused_and_nothing_changes(
    checkpointer: Any, sqlite_store: Any, payload: Any, error: type[Exception], text: str
) -> None:
    app, cfg, intr, ledger = pause_bank(
        sqlite_store, checkpointer, tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    )
    before = app.get_state(cfg)
    with pytest.raises(error, match=text):
        app.invoke(Command(resume={intr.id: payload}), cfg)
    after = app.get_state(cfg)
    assert [i.id for i in after.interrupts] == [intr.id]
    assert after.values == before.values and after.next == ("tools",)
    rid = intr.value["action_requests"][0]["request_id"]
    assert sqlite_store.get_request(rid).status == "pending"
    assert "refused" in [e.event for e in sqlite_store.list_audit()]
    # the bad value did not stick: a valid decision still goes through, once
    app.invoke(
        Command(
            resume={
                intr.id: {"type": "approve", "digest": intr.value["action_requests"][0]["digest"]}
            }
        ),
        cfg,
    )
    assert ledger.count("transfer_funds") == 1


def test_edit_within_risk_runs_edited_args_once(checkpointer: Any, sqlite_store: Any) -> None:
    app, cfg, intr, ledger = pause_bank(
        sqlite_store, checkpointer, tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    )
    edit = {
        "type": "edit",
        "edited_action": {"name": "transfer_funds", "args": {"amount": 8_900, "to": "bob"}},
    }
    out = app.invoke(Command(resume={intr.id: edit}), cfg)
    assert ledger.entries == [("transfer_funds", {"amount": 8_900, "to": "bob"})]
    msg = tool_messages(out)[0]
    assert (
        "human reviewer replaced this tool call" in msg.content
        and "sent 8900 to bob" in msg.content
    )


def test_edit_that_raises_risk_needs_a_new_approval(checkpointer: Any, sqlite_store: Any) -> None:
    app, cfg, intr, ledger = pause_bank(
        sqlite_store, checkpointer, tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    )
    rid = intr.value["action_requests"][0]["request_id"]
    edit = {
        "type": "edit",
        "edited_action": {"name": "transfer_funds", "args": {"amount": 9_900, "to": "bob"}},
    }
    out = app.invoke(Command(resume={intr.id: edit}), cfg)
    assert ledger.entries == []
    (follow,) = out["__interrupt__"]
    fr = follow.value["action_requests"][0]
    assert fr["args"] == {"amount": 9_900, "to": "bob"} and fr["parent_request_id"] == rid
    assert sqlite_store.get_request(rid).status == "edited"
    assert sqlite_store.get_request(fr["request_id"]).status == "pending"
    app.invoke(Command(resume={follow.id: {"type": "approve"}}), cfg)
    assert ledger.entries == [("transfer_funds", {"amount": 9_900, "to": "bob"})]


def test_cross_tool_edit_is_gated_by_the_target_tool(checkpointer: Any, sqlite_store: Any) -> None:
    app, cfg, intr, ledger = pause_bank(
        sqlite_store,
        checkpointer,
        tool_call(
            ("lookup_account", {"name": "x"}), ("transfer_funds", {"amount": 9_000, "to": "bob"})
        ),
    )
    edit = {"type": "edit", "edited_action": {"name": "close_account", "args": {"name": "bob"}}}
    out = app.invoke(Command(resume={intr.id: edit}), cfg)
    assert ledger.count("close_account") == 0
    (follow,) = out["__interrupt__"]
    assert follow.value["action_requests"][0]["name"] == "close_account"
    app.invoke(Command(resume={follow.id: {"type": "reject", "message": "no"}}), cfg)
    assert ledger.count("close_account") == 0 and ledger.count("transfer_funds") == 0
    assert ledger.count("lookup_account") == 1


def test_replays_repeat_nothing_visible(sqlite_store: Any, tmp_path: Any) -> None:
    """Many resumes that leave the interrupt pending write the request once."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    ledger = Ledger()
    saver = SqliteSaver(sqlite3.connect(tmp_path / "cp.db", check_same_thread=False))
    app = build_bank_app(
        sqlite_store,
        saver,
        tool_call(
            ("lookup_account", {"name": "a"}), ("transfer_funds", {"amount": 9_000, "to": "bob"})
        ),
        ledger,
    )
    cfg = thread()
    intr = app.invoke({"messages": [("user", "pay")]}, cfg)["__interrupt__"][0]
    for _ in range(3):
        with pytest.raises(InvalidDecision):
            app.invoke(Command(resume={intr.id: {"decisions": []}}), cfg)
        app.invoke(None, cfg)  # plain re-invoke: re-raises the same interrupt
    rid = intr.value["action_requests"][0]["request_id"]
    assert [e.event for e in sqlite_store.list_audit(request_id=rid)] == ["requested"]
    assert app.get_state(cfg).interrupts[0].value["action_requests"][0]["request_id"] == rid
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert ledger.count("transfer_funds") == 1 and ledger.count("lookup_account") == 1


def test_concurrent_raw_resumes_execute_once(sqlite_store: Any, tmp_path: Any) -> None:
    """Raw LangGraph runs the approved action twice here; the journal stops it."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    ledger = Ledger()
    saver = SqliteSaver(sqlite3.connect(tmp_path / "cp.db", check_same_thread=False))
    app = build_bank_app(
        sqlite_store, saver, tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})), ledger
    )
    errors: list[BaseException] = []
    for _ in range(5):
        cfg = thread()
        intr = app.invoke({"messages": [("user", "pay")]}, cfg)["__interrupt__"][0]
        barrier = threading.Barrier(4)

        def resume(cfg: Any = cfg, intr: Any = intr, barrier: Any = barrier) -> None:
            barrier.wait()
            try:
                app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
            except Exception as exc:  # a racing checkpoint write may fail; no repeat effect
                errors.append(exc)

        threads = [threading.Thread(target=resume) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert ledger.count("transfer_funds") == 5, (ledger.entries, errors)


def test_conflicting_decision_after_a_recorded_one_is_refused(sqlite_store: Any) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    app, cfg, intr, ledger = pause_bank(
        sqlite_store, InMemorySaver(), tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    )
    rid = intr.value["action_requests"][0]["request_id"]
    # a decision recorded out of band (as the inbox does), then a conflicting raw resume
    sqlite_store.update_request(
        rid,
        expected_status="pending",
        status="rejected",
        decision={"type": "reject", "message": "no"},
        decided_by="alice",
    )
    with pytest.raises(AlreadyDecided, match="alice"):
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert ledger.entries == []
    out = app.invoke(Command(resume={intr.id: {"type": "reject", "request_id": rid}}), cfg)
    assert ledger.entries == [] and "__interrupt__" not in out


def test_stream_and_async_paths(sqlite_store: Any) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    ledger = Ledger()
    app = build_bank_app(
        sqlite_store,
        InMemorySaver(),
        tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})),
        ledger,
    )
    cfg = thread()
    chunks = list(app.stream({"messages": [("user", "pay")]}, cfg, stream_mode="updates"))
    intr = next(c["__interrupt__"][0] for c in chunks if "__interrupt__" in c)
    list(app.stream(Command(resume={intr.id: {"type": "approve"}}), cfg, stream_mode="updates"))
    assert ledger.count("transfer_funds") == 1

    async def run() -> None:
        cfg2 = thread()
        out = await app.ainvoke({"messages": [("user", "pay")]}, cfg2)
        i2 = out["__interrupt__"][0]
        with pytest.raises(InvalidDecision):
            await app.ainvoke(Command(resume={i2.id: {"decisions": []}}), cfg2)
        out = await app.ainvoke(Command(resume={i2.id: {"type": "approve"}}), cfg2)
        assert tool_messages(out)[0].content == "sent 9000 to bob"

    asyncio.run(run())
    assert ledger.count("transfer_funds") == 2


def test_the_recorded_decision_is_what_gets_applied(sqlite_store: Any) -> None:
    """A resume must match what the inbox recorded; the recorded words reach the model."""
    from langgraph.checkpoint.memory import InMemorySaver

    ledger = Ledger()
    first = tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    app = build_bank_app(sqlite_store, InMemorySaver(), first, ledger)
    cfg = thread()
    intr = app.invoke({"messages": [("user", "pay")]}, cfg)["__interrupt__"][0]
    rid = intr.value["action_requests"][0]["request_id"]
    recorded = {
        "type": "edit",
        "edited_action": {"name": "transfer_funds", "args": {"amount": 10, "to": "bob"}},
    }
    sqlite_store.update_request(
        rid, expected_status="pending", status="edited", decision=recorded, decided_by="alice"
    )
    other = {
        "type": "edit",
        "edited_action": {"name": "transfer_funds", "args": {"amount": 9_999, "to": "eve"}},
    }
    with pytest.raises(AlreadyDecided, match="different 'edit'"):
        app.invoke(Command(resume={intr.id: other}), cfg)
    assert ledger.entries == []
    app.invoke(Command(resume={intr.id: recorded}), cfg)
    assert ledger.entries == [("transfer_funds", {"amount": 10, "to": "bob"})]


def test_recorded_reject_message_reaches_the_model(sqlite_store: Any) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    ledger = Ledger()
    first = tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
    app = build_bank_app(sqlite_store, InMemorySaver(), first, ledger)
    cfg = thread()
    intr = app.invoke({"messages": [("user", "pay")]}, cfg)["__interrupt__"][0]
    rid = intr.value["action_requests"][0]["request_id"]
    sqlite_store.update_request(
        rid,
        expected_status="pending",
        status="rejected",
        decision={"type": "reject", "message": "account frozen"},
        decided_by="alice",
    )
    out = app.invoke(Command(resume={intr.id: {"type": "reject"}}), cfg)
    assert "account frozen" in tool_messages(out)[0].content and ledger.entries == []


# -- drop-in: ToolNode's own error handling and wrapper dispatch (issue 11) ------------
# (LangGraph's full ToolNode suite runs in tests/ecosystem; these keep the essentials
# covered when the sdist cannot be downloaded.)


def _all_auto(tools: list[Any], **kwargs: Any) -> Any:
    from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store

    return GatedToolNode(
        tools, policy=RiskPolicy(rules=[Rule(tool="*", score=0.0)]),
        store=open_store("memory://"), **kwargs,
    )  # fmt: skip


def _run(node: Any, call: dict[str, Any], *, aio: bool = False) -> ToolMessage:
    from langchain_core.messages import AIMessage
    from langgraph.graph import START, MessagesState, StateGraph

    graph = StateGraph(MessagesState)
    graph.add_node("tools", node)
    graph.add_edge(START, "tools")
    app = graph.compile()
    state = {"messages": [AIMessage("", tool_calls=[call])]}
    out = asyncio.run(app.ainvoke(state)) if aio else app.invoke(state)
    msg = out["messages"][-1]
    assert isinstance(msg, ToolMessage)
    return msg


def _boom_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def boom(x: int) -> str:
        """Raise."""
        raise KeyError(x)

    return boom


@pytest.mark.parametrize("flag", [ValueError, (ValueError, TypeError), False])
def test_handle_tool_errors_types_let_other_errors_through_as_toolnode(flag: Any) -> None:
    node = _all_auto([_boom_tool()], handle_tool_errors=flag)
    call = {"name": "boom", "args": {"x": 1}, "id": "1", "type": "tool_call"}
    with pytest.raises(KeyError):
        _run(node, call)


def test_handle_tool_errors_callable_and_true_still_handle() -> None:
    node = _all_auto([_boom_tool()], handle_tool_errors=lambda e: f"handled {e!r}")
    call = {"name": "boom", "args": {"x": 1}, "id": "1", "type": "tool_call"}
    msg = _run(node, call)
    assert msg.status == "error" and msg.content == "handled KeyError(1)"


def test_a_sync_wrapper_runs_under_ainvoke_as_in_toolnode() -> None:
    from langchain_core.tools import tool

    @tool
    def echo(x: str) -> str:
        """Echo."""
        return x

    seen: list[str] = []

    def wrap(request: Any, execute: Any) -> Any:
        seen.append(request.tool_call["name"])
        return execute(request.override(tool_call={**request.tool_call, "args": {"x": "2"}}))

    node = _all_auto([echo], wrap_tool_call=wrap)
    call = {"name": "echo", "args": {"x": "1"}, "id": "1", "type": "tool_call"}
    msg = _run(node, call, aio=True)
    assert (seen, msg.content) == (["echo"], "2")
