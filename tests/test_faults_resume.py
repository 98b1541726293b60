"""Fault suite, issue 10 parts 1-2: a resume value counts only once recorded, and a
decision binds to the request (and interrupt) it was made for. SQLite and Postgres, real
savers; every break listed in the issue has a test here."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from faults_support import FailingStore, Stack, resume_and_die, stack_fixture  # noqa: F401
from inbox_graphs import interrupted, transfer
from langgraph.types import Command

from hitl_langgraph import Inbox, Reviewer
from hitl_langgraph.errors import (
    AlreadyDecided,
    DecisionError,
    DecisionNotRecorded,
    DigestMismatch,
    InvalidDecision,
    StoreError,
    TamperedRequest,
    WrongRequest,
)

pytestmark = pytest.mark.faults

FINANCE = Reviewer("frank", {"finance"})
EDIT_TO_CLOSE = {
    "type": "edit",
    "edited_action": {"name": "close_account", "args": {"name": "acme"}},
}


def _status(st: Stack, rid: str) -> str:
    rec = st.store.get_request(rid)
    assert rec is not None
    return rec.status


# -- part 1: a failed resume is never replayed ---------------------------------------------
def test_store_error_on_approve_then_plain_reject_rejects(stack: Stack) -> None:
    flaky = FailingStore(stack.store)
    app, cfg, intr, rid = stack.paused(flaky)
    flaky.fail = StoreError("database is locked")
    with pytest.raises(DecisionNotRecorded, match="still pending") as err:
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert isinstance(err.value, StoreError) and flaky.failed == 1
    assert _status(stack, rid) == "pending" and stack.ledger.entries == []
    app.invoke(Command(resume={intr.id: {"type": "reject", "message": "no"}}), cfg)
    assert _status(stack, rid) == "rejected"
    assert stack.ledger.count("transfer_funds") == 0  # the stored approve was not replayed


def test_store_error_then_inbox_reject_counts(stack: Stack) -> None:
    flaky = FailingStore(stack.store)
    app, cfg, intr, rid = stack.paused(flaky)
    flaky.fail = StoreError("database is locked")
    with pytest.raises(DecisionNotRecorded):
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    res = Inbox(stack.store, app).reject(rid, reviewer=FINANCE, reason="not today")
    assert res.record.status == "rejected"
    # and the next plain resume does not run the action either
    with contextlib.suppress(DecisionError):  # the thread has moved on
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert stack.ledger.count("transfer_funds") == 0
    assert app.get_state(cfg).interrupts == ()


def test_lone_surrogate_reject_is_refused_and_later_approve_counts(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused()
    with pytest.raises(InvalidDecision, match="lone surrogate"):
        app.invoke(Command(resume={intr.id: {"type": "reject", "message": "no\ud800"}}), cfg)
    assert _status(stack, rid) == "pending"
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert _status(stack, rid) == "approved"
    assert stack.ledger.count("transfer_funds") == 1


def test_nul_in_reject_message_never_wedges_the_thread(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused()
    for _ in range(2):
        with pytest.raises(InvalidDecision, match="NUL"):
            app.invoke(Command(resume={intr.id: {"type": "reject", "message": "a\x00b"}}), cfg)
    res = Inbox(stack.store, app).approve(rid, reviewer=FINANCE)
    assert res.record.status == "approved" and stack.ledger.count("transfer_funds") == 1


def test_encoding_error_from_the_store_is_typed_and_not_replayed(stack: Stack) -> None:
    flaky = FailingStore(stack.store)
    app, cfg, intr, rid = stack.paused(flaky)
    flaky.fail = UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
    with pytest.raises(DecisionNotRecorded, match="UnicodeEncodeError"):
        app.invoke(Command(resume={intr.id: {"type": "reject", "message": "stop"}}), cfg)
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert _status(stack, rid) == "approved" and stack.ledger.count("transfer_funds") == 1


@pytest.mark.slow
def test_killed_before_the_store_write_leaves_it_pending(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused()
    assert resume_and_die(stack, cfg, intr.id, {"type": "approve"}, "before_store") == 9
    assert _status(stack, rid) == "pending" and stack.ledger.entries == []
    app.invoke(Command(resume={intr.id: {"type": "reject", "message": "no"}}), cfg)
    assert _status(stack, rid) == "rejected" and stack.ledger.count("transfer_funds") == 0


@pytest.mark.slow
def test_killed_after_the_store_write_the_recorded_decision_is_the_one(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused()
    assert resume_and_die(stack, cfg, intr.id, {"type": "approve"}, "after_store") == 9
    # recorded (durably, audited) but LangGraph never stored the resume value
    assert _status(stack, rid) == "approved" and stack.ledger.entries == []
    assert app.get_state(cfg).interrupts  # still paused
    with pytest.raises(AlreadyDecided, match="approved"):
        app.invoke(Command(resume={intr.id: {"type": "reject", "message": "no"}}), cfg)
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)  # a replay: nothing new
    assert stack.ledger.count("transfer_funds") == 1


# -- part 2: decisions bind to their request ------------------------------------------------
def test_edit_replayed_to_the_old_interrupt_does_not_decide_the_follow_up(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused()
    out = app.invoke(Command(resume={intr.id: EDIT_TO_CLOSE}), cfg)
    (follow,) = out["__interrupt__"]
    assert follow.id != intr.id
    assert follow.value["action_requests"][0]["name"] == "close_account"
    with pytest.raises(WrongRequest, match="not applied"):
        app.invoke(Command(resume={intr.id: EDIT_TO_CLOSE}), cfg)
    assert stack.ledger.count("close_account") == 0
    frid = follow.value["action_requests"][0]["request_id"]
    assert _status(stack, frid) == "pending"
    app.invoke(Command(resume={follow.id: {"type": "approve"}}), cfg)
    assert stack.ledger.count("close_account") == 1 and stack.ledger.count("transfer_funds") == 0


def test_digest_of_an_identical_request_elsewhere_is_refused(stack: Stack) -> None:
    app = stack.app(first=transfer())
    cfg1, intr1, rid1 = interrupted(app)
    cfg2, intr2, rid2 = interrupted(app)
    d1 = intr1.value["action_requests"][0]["digest"]
    d2 = intr2.value["action_requests"][0]["digest"]
    assert d1 != d2  # same tool and args, different requests
    with pytest.raises(DigestMismatch):
        app.invoke(Command(resume={intr2.id: {"type": "approve", "digest": d1}}), cfg2)
    with pytest.raises(DigestMismatch):
        Inbox(stack.store, app).approve(rid2, reviewer=FINANCE, digest=d1)
    assert _status(stack, rid2) == "pending" and stack.ledger.entries == []
    app.invoke(Command(resume={intr2.id: {"type": "approve", "digest": d2}}), cfg2)
    assert stack.ledger.count("transfer_funds") == 1


def test_request_id_of_another_request_is_refused(stack: Stack) -> None:
    app = stack.app(first=transfer())
    _, _, rid1 = interrupted(app)
    cfg2, intr2, rid2 = interrupted(app)
    with pytest.raises(InvalidDecision, match="not pending here"):
        app.invoke(Command(resume={intr2.id: {"type": "approve", "request_id": rid1}}), cfg2)
    assert _status(stack, rid1) == _status(stack, rid2) == "pending"


def test_tampered_store_row_is_not_decidable(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused()
    stack.store.update_request(rid, expected_status="pending", args={"amount": 1, "to": "bob"})
    inbox = Inbox(stack.store, app)
    with pytest.raises(TamperedRequest, match="changed in the store"):
        inbox.get(rid)
    with pytest.raises(TamperedRequest):
        inbox.approve(rid, reviewer=FINANCE)
    with pytest.raises(TamperedRequest):
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert _status(stack, rid) == "pending" and stack.ledger.entries == []


def test_tampered_row_with_a_recomputed_digest_is_caught_against_the_thread(stack: Stack) -> None:
    from hitl_langgraph.policy import request_digest

    app, cfg, intr, rid = stack.paused()
    forged: dict[str, Any] = {"amount": 1, "to": "bob"}
    stack.store.update_request(
        rid,
        expected_status="pending",
        args=forged,
        digest=request_digest(rid, "transfer_funds", forged),
    )
    with pytest.raises(TamperedRequest, match="not the action the thread would run"):
        Inbox(stack.store, app).approve(rid, reviewer=FINANCE)
    with pytest.raises(TamperedRequest):
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    assert _status(stack, rid) == "pending" and stack.ledger.entries == []


def test_rows_from_before_request_digests_still_decide(stack: Stack) -> None:
    from hitl_langgraph.policy import digest_of

    app, cfg, intr, rid = stack.paused()
    rec = stack.store.get_request(rid)
    assert rec is not None
    legacy = digest_of(rec.tool, rec.args)  # what rows held before digests covered the request
    stack.store.update_request(rid, expected_status="pending", digest=legacy)
    inbox = Inbox(stack.store, app)
    assert inbox.get(rid).digest == legacy
    inbox.approve(rid, reviewer=FINANCE, digest=legacy)
    assert _status(stack, rid) == "approved" and stack.ledger.count("transfer_funds") == 1
