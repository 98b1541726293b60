"""Deadlines and escalation with an injected clock (no sleeping)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, inbox_policy, interrupted, transfer
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import AlreadyDecided, ConfigurationError, MemoryStore, NotAuthorized
from hitl_langgraph.inbox import EscalationStep, Inbox, Reviewer
from hitl_langgraph.inbox.quorum import slot_key
from hitl_langgraph.notify import Notification
from hitl_langgraph.testing import FrozenClock

ALICE = Reviewer("alice", {"finance"})


def setup(
    clock: FrozenClock, *, on_expiry: Any = "reject", quorum: int = 1, **inbox_kw: Any
) -> tuple[MemoryStore, Any, MemLedger, Inbox]:
    store = MemoryStore()
    ledger = MemLedger()
    policy = inbox_policy(expires_after=timedelta(hours=1), on_expiry=on_expiry, quorum=quorum)
    app = build_app(store, InMemorySaver(), ledger, transfer(), policy=policy, clock=clock)
    return store, app, ledger, Inbox(store, app, clock=clock, **inbox_kw)


def test_overdue_request_is_rejected_once_by_the_system() -> None:
    clock = FrozenClock()
    store, app, ledger, inbox = setup(clock)
    cfg, _, rid = interrupted(app)
    rec = inbox.get(rid)
    assert rec.expires_at == clock.now + timedelta(hours=1)
    assert inbox.expire_overdue() == [] and inbox.pending(overdue=True).items == []
    clock.advance(minutes=59)
    assert inbox.expire_overdue() == []
    clock.advance(minutes=2)
    assert [r.request_id for r in inbox.pending(overdue=True)] == [rid]
    (res,) = inbox.expire_overdue()
    assert res.resumed and res.decision == "reject" and ledger.entries == []
    msg = [m for m in res.output["messages"] if isinstance(m, ToolMessage)][0]
    assert "deadline" in str(msg.content) and msg.status == "error"
    rec = inbox.get(rid)
    assert rec.status == "expired" and rec.decided_by == "system"
    assert rec.decided_at == clock.now and app.get_state(cfg).interrupts == ()
    assert inbox.expire_overdue() == []  # exactly once
    expired = [e for e in inbox.history(rid) if e.event == "expired"]
    assert len(expired) == 1 and expired[0].actor == "system"
    assert expired[0].data["decision"]["type"] == "reject"
    with pytest.raises(AlreadyDecided, match="expired by system"):
        inbox.approve(rid, reviewer=ALICE)


def test_on_expiry_approve_runs_the_action_once() -> None:
    clock = FrozenClock()
    _, app, ledger, inbox = setup(clock, on_expiry="approve")
    interrupted(app)
    clock.advance(hours=2)
    (res,) = inbox.sweep().expired
    assert res.resumed and res.decision == "approve"
    assert ledger.count("transfer_funds") == 1
    assert inbox.sweep().expired == []


def test_expiry_without_a_graph_is_applied_by_a_worker() -> None:
    clock = FrozenClock()
    store, app, ledger, _ = setup(clock)
    cfg, _, rid = interrupted(app)
    clock.advance(hours=2)
    sweeper = Inbox(store, clock=clock)  # e.g. `hitl sweep` from cron, without --graph
    (res,) = sweeper.expire_overdue()
    assert res.outcome == "recorded" and app.get_state(cfg).interrupts
    report = Inbox(store, app, clock=clock).apply_decided()
    assert report.applied == [rid] and app.get_state(cfg).interrupts == ()
    assert ledger.entries == []


def test_concurrent_sweepers_expire_each_request_once() -> None:
    clock = FrozenClock()
    store, app, ledger, _ = setup(clock, on_expiry="approve")
    rids = [interrupted(app)[2] for _ in range(3)]
    clock.advance(hours=2)
    sweepers = [Inbox(store, app, clock=clock) for _ in range(4)]
    barrier = threading.Barrier(4)
    found: list[str] = []
    lock = threading.Lock()

    def sweep(i: int) -> None:
        barrier.wait()
        got = [r.request_id for r in sweepers[i].expire_overdue()]
        with lock:
            found.extend(got)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(found) == sorted(rids)
    assert ledger.count("transfer_funds") == 3
    assert [e.event for e in store.list_audit()].count("expired") == 3


def test_gate_default_expiry_applies_when_the_rule_sets_none() -> None:
    clock = FrozenClock()
    store = MemoryStore()
    app = build_app(
        store,
        InMemorySaver(),
        MemLedger(),
        transfer(),
        clock=clock,
        default_expiry=timedelta(minutes=10),
    )
    _, _, rid = interrupted(app)
    assert store.get_request(rid).expires_at == clock.now + timedelta(minutes=10)  # type: ignore[union-attr]
    clock.advance(minutes=11)
    assert [r.request_id for r in Inbox(store, app, clock=clock).expire_overdue()] == [rid]


def test_escalation_widens_roles_after_a_delay_and_notifies() -> None:
    clock = FrozenClock()
    seen: list[Notification] = []
    steps = [
        EscalationStep(after=timedelta(minutes=30), add_roles={"finance-lead"}),
        EscalationStep(after=timedelta(minutes=50), add_roles={"cfo"}, notify=False, name="cfo"),
    ]
    store, app, ledger, inbox = setup(clock, escalation=steps, notifiers=[seen.append])
    _, _, rid = interrupted(app)
    lead = Reviewer("lena", {"finance-lead"})
    cfo = Reviewer("cy", {"cfo"})
    assert inbox.sweep().escalated == []
    with pytest.raises(NotAuthorized):
        inbox.approve(rid, reviewer=lead)
    clock.advance(minutes=31)
    report = inbox.sweep()
    (esc,) = report.escalated
    assert esc.step == 0 and esc.added_roles == ("finance-lead",)
    assert inbox.get(rid).approver_roles == ["finance", "finance-lead"]
    assert [r.request_id for r in inbox.pending(role="finance-lead")] == [rid]
    assert Inbox(store, app, clock=clock, escalation=steps).sweep().escalated == []  # once
    with pytest.raises(NotAuthorized):
        inbox.approve(rid, reviewer=cfo)
    clock.advance(minutes=20)
    (esc2,) = inbox.sweep().escalated
    assert esc2.step == 1 and inbox.get(rid).approver_roles == ["cfo", "finance", "finance-lead"]
    events = [e for e in inbox.history(rid) if e.event == "escalated"]
    assert [e.data["step"] for e in events] == [0, 1]
    assert events[1].data["step_name"] == "cfo" and events[1].actor == "system"
    assert [n.kind for n in seen].count("escalated") == 1  # the cfo step does not notify
    assert inbox.approve(rid, reviewer=cfo).resumed
    assert ledger.count("transfer_funds") == 1


def test_escalation_steps_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="non-negative timedelta"):
        EscalationStep(after=-timedelta(seconds=1))
    with pytest.raises(ConfigurationError, match="collection"):
        EscalationStep(after=timedelta(0), add_roles="cfo")
    with pytest.raises(ConfigurationError, match="EscalationStep"):
        Inbox(MemoryStore(), escalation=[timedelta(0)])  # type: ignore[list-item]


def test_quorum_completed_for_a_reviewer_who_crashed_after_the_last_vote() -> None:
    """The last approver took the final slot, then died before recording 'approved'."""
    clock = FrozenClock()
    store, app, ledger, inbox = setup(clock, quorum=2)
    _, _, rid = interrupted(app)
    inbox.approve(rid, reviewer=ALICE)
    vote = {"reviewer": "bob", "roles": ["finance"], "at": clock.now.isoformat(), "reason": None}
    assert store.claim_execution(slot_key(rid, 2), worker=json.dumps(vote), at=clock.now)
    late = Reviewer("dan", {"finance"})
    with pytest.raises(AlreadyDecided, match="already has its 2 approvals"):
        inbox.approve(rid, reviewer=late)  # bob may still be at work: leave it to him
    assert inbox.get(rid).status == "pending"
    clock.advance(minutes=10)  # now bob's claim is stale
    res = inbox.approve(rid, reviewer=late)
    assert res.resumed and ledger.count("transfer_funds") == 1
    rec = inbox.get(rid)
    assert rec.decided_by == "alice,bob" and rec.status == "approved"


def test_async_expiry() -> None:
    clock = FrozenClock()
    _, app, ledger, inbox = setup(clock, on_expiry="approve")
    interrupted(app)
    clock.advance(hours=2)
    (res,) = asyncio.run(inbox.aexpire_overdue())
    assert res.resumed and ledger.count("transfer_funds") == 1
    assert asyncio.run(inbox.asweep()).expired == []
