"""Reviewer authority, separation of duties and quorum, through the inbox."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, inbox_policy, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import (
    AlreadyDecided,
    ConfigurationError,
    InvalidDecision,
    MemoryStore,
    NotAuthorized,
)
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.testing import tool_call

ALICE = Reviewer("alice", {"finance"})
BOB = Reviewer("bob", {"finance", "audit"})
DAN = Reviewer("dan", {"finance"})


def gated(quorum: int = 1, store: Any = None, **inbox_kw: Any) -> tuple[Any, Any, MemLedger, Inbox]:
    store = store or MemoryStore()
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer(), policy=inbox_policy(quorum=quorum))
    return store, app, ledger, Inbox(store, app, **inbox_kw)


def assert_untouched(inbox: Inbox, app: Any, cfg: Any, intr: Any, rid: str) -> None:
    assert inbox.get(rid).status == "pending"
    assert [i.id for i in app.get_state(cfg).interrupts] == [intr.id]


def test_reviewer_identity_is_validated() -> None:
    assert Reviewer("alice", ["a", "b"]).roles == frozenset({"a", "b"})
    assert Reviewer(" alice ").id == "alice"
    with pytest.raises(ConfigurationError, match="non-empty"):
        Reviewer("")
    with pytest.raises(ConfigurationError, match="not the string"):
        Reviewer("alice", "finance")


def test_roles_limit_who_may_decide_and_refusals_are_audited() -> None:
    store, app, ledger, inbox = gated()
    cfg, intr, rid = interrupted(app)
    for who, decide in [
        (Reviewer("eve", {"ops"}), lambda r: inbox.approve(rid, reviewer=r)),
        (Reviewer("eve", ()), lambda r: inbox.reject(rid, reviewer=r, reason="no")),
        (Reviewer("system", {"finance"}), lambda r: inbox.approve(rid, reviewer=r)),
    ]:
        with pytest.raises(NotAuthorized) as exc:
            decide(who)
        assert rid in str(exc.value)
    assert "needs one of the roles ['finance']" in str(
        pytest.raises(NotAuthorized, inbox.approve, rid, reviewer=Reviewer("eve", {"ops"})).value
    )
    assert_untouched(inbox, app, cfg, intr, rid)
    refused = [e for e in inbox.history(rid) if e.event == "refused"]
    assert [e.actor for e in refused] == ["eve", "eve", "system", "eve"]
    assert refused[0].data["error"] == "NotAuthorized" and refused[0].data["reviewer_roles"] == [
        "ops"
    ]
    assert refused[0].data["decision"] == "approve" and ledger.entries == []
    # a request whose rule names no roles is open to any reviewer
    close = build_app(store, InMemorySaver(), ledger, tool_call(("close_account", {"name": "x"})))
    _, _, close_id = interrupted(close)
    assert Inbox(store, close).approve(close_id, reviewer=Reviewer("eve")).resumed
    assert ledger.count("close_account") == 1


def test_separation_of_duties() -> None:
    _, app, ledger, inbox = gated()
    carol = Reviewer("carol", {"finance"})  # carol's run proposed the transfer
    cfg, intr, rid = interrupted(app, user="carol")
    with pytest.raises(NotAuthorized, match="separation of duties"):
        inbox.approve(rid, reviewer=carol)
    with pytest.raises(NotAuthorized, match="separation of duties"):
        inbox.edit(rid, reviewer=carol, args={"amount": 1, "to": "bob"})
    assert_untouched(inbox, app, cfg, intr, rid)
    # withdrawing one's own request is fine
    assert inbox.reject(rid, reviewer=carol, reason="changed my mind").resumed
    # and the check can be switched off (e.g. a single-operator deployment)
    _, _, rid2 = interrupted(app, user="carol")
    lenient = Inbox(inbox.store, app, separation_of_duties=False)
    assert lenient.approve(rid2, reviewer=carol).resumed
    assert ledger.count("transfer_funds") == 1


def test_an_edit_may_not_reach_a_tool_the_reviewer_may_not_approve() -> None:
    _, app, ledger, inbox = gated()
    cfg, intr, rid = interrupted(app)
    with pytest.raises(NotAuthorized, match="into a call to delete_customer.*admin"):
        inbox.edit(rid, reviewer=ALICE, tool="delete_customer", args={"name": "bob"})
    assert_untouched(inbox, app, cfg, intr, rid)
    admin = Reviewer("root", {"finance", "admin"})
    res = inbox.edit(rid, reviewer=admin, tool="delete_customer", args={"name": "bob"})
    (follow,) = res.follow_ups  # cross-tool edits get their own approval, by an admin
    assert follow.tool == "delete_customer" and follow.approver_roles == ["admin"]
    with pytest.raises(NotAuthorized):
        inbox.approve(follow.request_id, reviewer=ALICE)
    inbox.approve(follow.request_id, reviewer=Reviewer("ada", {"admin"}))
    assert ledger.entries == [("delete_customer", {"name": "bob"})]


def test_quorum_needs_distinct_approvers_and_runs_after_the_last() -> None:
    store, app, ledger, inbox = gated(quorum=2)
    cfg, intr, rid = interrupted(app)
    # the engine refuses a raw resume for a quorum request: it must go through the inbox
    with pytest.raises(NotAuthorized, match="quorum of 2"):
        app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    first = inbox.approve(rid, reviewer=ALICE, reason="looks right")
    assert first.outcome == "partial" and first.approvals == 1 and first.quorum == 2
    assert not first.final and ledger.entries == []
    assert_untouched(inbox, app, cfg, intr, rid)
    assert [a["reviewer"] for a in inbox.get(rid).approvals] == ["alice"]
    with pytest.raises(NotAuthorized, match="already approved.*2 approvals from distinct"):
        inbox.approve(rid, reviewer=ALICE)
    with pytest.raises(InvalidDecision, match="needs 2 approvals"):
        inbox.edit(rid, reviewer=BOB, args={"amount": 1, "to": "bob"})
    second = inbox.approve(rid, reviewer=BOB)
    assert second.resumed and second.approvals == 2
    assert ledger.count("transfer_funds") == 1
    rec = inbox.get(rid)
    assert rec.status == "approved" and rec.decided_by == "alice,bob"
    assert [a["reviewer"] for a in rec.approvals] == ["alice", "bob"]
    events = [e for e in inbox.history(rid) if e.event in ("approval", "decided")]
    assert [(e.event, e.actor) for e in events] == [("approval", "alice"), ("decided", "bob")]
    assert [a["reviewer"] for a in events[-1].data["approvals"]] == ["alice", "bob"]
    with pytest.raises(AlreadyDecided, match="alice,bob"):
        inbox.approve(rid, reviewer=DAN)


def test_one_rejection_ends_a_quorum_unless_configured() -> None:
    store, app, ledger, inbox = gated(quorum=2)
    _, _, rid = interrupted(app)
    inbox.approve(rid, reviewer=ALICE)
    res = inbox.reject(rid, reviewer=BOB, reason="wrong account")
    assert res.resumed and inbox.get(rid).status == "rejected" and ledger.entries == []
    with pytest.raises(AlreadyDecided, match="rejected by bob"):
        inbox.approve(rid, reviewer=DAN)

    patient = Inbox(store, app, reject_ends_quorum=False)
    cfg, intr, rid = interrupted(app)
    obj = patient.reject(rid, reviewer=BOB, reason="not sure")
    assert obj.outcome == "objection" and not obj.final
    assert inbox.get(rid).status == "pending" and app.get_state(cfg).interrupts
    assert [o["reviewer"] for o in inbox.get(rid).metadata["objections"]] == ["bob"]
    assert patient.approve(rid, reviewer=ALICE).outcome == "partial"
    assert patient.approve(rid, reviewer=DAN).resumed
    assert ledger.count("transfer_funds") == 1
    assert "objection" in [e.event for e in inbox.history(rid)]


def test_concurrent_quorum_votes_count_each_distinct_reviewer_once(store: Any) -> None:
    _, app, ledger, inbox = gated(quorum=3, store=store)
    _, _, rid = interrupted(app)
    reviewers = [Reviewer(f"r{i}", {"finance"}) for i in range(8)] + [ALICE, ALICE]
    barrier = threading.Barrier(len(reviewers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def vote(r: Reviewer) -> None:
        barrier.wait()
        try:
            out = inbox.approve(rid, reviewer=r).outcome
        except (AlreadyDecided, NotAuthorized) as exc:
            out = type(exc).__name__
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=vote, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # three votes count: two partial (or "recorded" when the third completed the quorum
    # before the vote's own write landed), one that completes it and resumes
    assert outcomes.count("resumed") == 1, outcomes
    assert outcomes.count("partial") + outcomes.count("recorded") == 2, outcomes
    assert ledger.count("transfer_funds") == 1
    rec = inbox.get(rid)
    voters = [a["reviewer"] for a in rec.approvals]
    assert rec.status == "approved" and len(voters) == len(set(voters)) == 3
