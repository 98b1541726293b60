"""Fault suite, issue 10 parts 5-6: hostile text is refused before anything is saved and
never crashes a run (SQLite and Postgres), and webhook deliveries cannot be replayed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from faults_support import Stack, stack_fixture  # noqa: F401
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from hitl_langgraph import Inbox, Reviewer
from hitl_langgraph.errors import HitlError, InvalidDecision
from hitl_langgraph.store.base import RequestFilter
from hitl_langgraph.testing import tool_call

pytestmark = pytest.mark.faults

FINANCE = Reviewer("frank", {"finance"})
HOSTILE = ["\ud800", "a\x00b", "\x1b[31mred", "x\x7f", "\x85"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_model_args_get_a_tool_message_not_a_crash(stack: Stack, bad: str) -> None:
    first = tool_call(("transfer_funds", {"amount": 9_000, "to": bad}))
    app = stack.app(first=first)
    cfg = {"configurable": {"thread_id": f"t-hostile-{HOSTILE.index(bad)}", "user_id": "carol"}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    assert "__interrupt__" not in out
    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert msg.status == "error" and "refused before anything was stored" in str(msg.content)
    assert stack.ledger.entries == []
    assert stack.store.list_requests(RequestFilter(status=None), limit=10) == []
    refused = [e for e in stack.store.list_audit() if e.event == "refused"]
    assert refused and refused[-1].data["error"] == "InvalidAction"


def test_hostile_args_next_to_a_clean_call_leave_the_clean_one_gated(stack: Stack) -> None:
    first = tool_call(
        ("lookup_account", {"name": "a\x00"}), ("transfer_funds", {"amount": 9_000, "to": "bob"})
    )
    app = stack.app(first=first)
    cfg = {"configurable": {"thread_id": "t-mixed", "user_id": "carol"}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    (intr,) = out["__interrupt__"]
    assert intr.value["action_requests"][0]["name"] == "transfer_funds"
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert stack.ledger.count("transfer_funds") == 1 and stack.ledger.count("lookup_account") == 0


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_inbox_reason_and_edit_args_are_refused(stack: Stack, bad: str) -> None:
    app, cfg, intr, rid = stack.paused()
    inbox = Inbox(stack.store, app)
    with pytest.raises(InvalidDecision):
        inbox.reject(rid, reviewer=FINANCE, reason=f"no {bad}")
    with pytest.raises(InvalidDecision):
        inbox.edit(rid, reviewer=FINANCE, args={"amount": 5, "to": bad})
    with pytest.raises(InvalidDecision):
        app.invoke(
            Command(
                resume={
                    intr.id: {
                        "type": "edit",
                        "edited_action": {"name": "transfer_funds", "args": {bad: 1}},
                    }
                }
            ),
            cfg,
        )
    assert inbox.get(rid).status == "pending"
    inbox.approve(rid, reviewer=FINANCE, reason="fine")
    assert stack.ledger.count("transfer_funds") == 1


@pytest.mark.parametrize("bad", ["fr\x00ank", "fr\ud800ank", "fr\x1bank"])
def test_hostile_reviewer_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidDecision):
        Reviewer(bad, {"finance"})


def test_hostile_requester_id_is_refused_with_a_tool_message(stack: Stack) -> None:
    app = stack.app(first=tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})))
    cfg = {"configurable": {"thread_id": "t-req", "user_id": "car\x00ol"}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert "requester and thread ids" in str(msg.content) and stack.ledger.entries == []


# -- webhooks --------------------------------------------------------------------------------
SECRET = "s3cret"


def _body(delivery: str) -> bytes:
    return json.dumps({"id": delivery, "notification": {"kind": "requested"}}).encode()


def test_webhook_signature_covers_timestamp_and_delivery() -> None:
    from hitl_langgraph.notify import InMemoryReplayCache, sign, sign_delivery, verify_signature

    body = _body("d1")
    header = sign_delivery(SECRET, body, delivery="d1", timestamp=1_000_000)
    cache = InMemoryReplayCache(clock=lambda: 1_000_000.0)
    assert verify_signature(SECRET, body, header, now=1_000_010, replay_cache=cache)
    # replayed: refused
    assert not verify_signature(SECRET, body, header, now=1_000_020, replay_cache=cache)
    # another delivery id or timestamp under the same MAC: refused
    forged = header.replace("id=d1", "id=d2")
    assert not verify_signature(SECRET, body, forged, now=1_000_010, replay_cache=cache)
    moved = header.replace("t=1000000", "t=1000100")
    assert not verify_signature(SECRET, body, moved, now=1_000_100, replay_cache=cache)
    # the old body-only form has no timestamp: refused
    assert not verify_signature(SECRET, body, sign(SECRET, body), replay_cache=cache)


@pytest.mark.parametrize("skew", [-301, 301, 10_000])
def test_stale_webhook_deliveries_are_refused(skew: int) -> None:
    from hitl_langgraph.errors import WebhookRejected
    from hitl_langgraph.notify import InMemoryReplayCache, check_delivery, sign_delivery

    body = _body("d9")
    header = sign_delivery(SECRET, body, delivery="d9", timestamp=2_000_000)
    cache: Any = InMemoryReplayCache()
    with pytest.raises(WebhookRejected, match="stale"):
        check_delivery(SECRET, body, header, now=2_000_000 + skew, replay_cache=cache)
    assert check_delivery(
        SECRET, body, header, now=2_000_000 + skew, tolerance=abs(skew) + 1, replay_cache=cache
    )
    assert isinstance(WebhookRejected("x"), HitlError)
