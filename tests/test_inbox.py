"""The approval inbox through its public API: listing, deciding, resuming, split mode."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langchain_core.messages import ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import (
    AlreadyDecided,
    ConfigurationError,
    DigestMismatch,
    InvalidDecision,
    MemoryStore,
    NotPending,
    RequestNotFound,
    open_store,
)
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.testing import tool_call

ALICE = Reviewer("alice", {"finance"})
BOB = Reviewer("bob", {"finance"})


def tool_texts(out: dict[str, Any]) -> list[str]:
    return [str(m.content) for m in out["messages"] if isinstance(m, ToolMessage)]


@pytest.fixture
def mem() -> MemoryStore:
    return MemoryStore()


class CountingGraph:
    """Wraps a compiled graph and counts the thread reads."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.get_state_calls = 0

    def get_state(self, *a: Any, **k: Any) -> Any:
        self.get_state_calls += 1
        return self.app.get_state(*a, **k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def test_approve_records_resumes_and_runs_once(store: Any) -> None:
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    cfg, intr, rid = interrupted(app)
    inbox = Inbox(store, app)
    res = inbox.approve(rid, reviewer=ALICE, reason="invoice 42 checked")
    assert res.outcome == "resumed" and res.resumed and res.final
    assert ledger.entries == [("transfer_funds", {"amount": 9_000, "to": "bob"})]
    assert (
        tool_texts(res.output) == ["sent 9000 to bob"]
        and res.output["messages"][-1].content == "done"
    )
    rec = inbox.get(rid)
    assert rec.status == "approved" and rec.decided_by == "alice"
    assert rec.decision is not None and rec.decision["type"] == "approve"
    assert rec.approvals[0]["reviewer"] == "alice" and rec.approvals[0]["roles"] == ["finance"]
    assert app.get_state(cfg).interrupts == ()
    decided = [e for e in inbox.history(rid) if e.event == "decided"]
    assert len(decided) == 1  # audited once, by the inbox (the engine skips it)
    d = decided[0]
    assert d.actor == "alice" and d.data["reviewer_roles"] == ["finance"]
    assert d.data["reason"] == "invoice 42 checked" and d.data["digest"] == rec.digest
    assert d.data["policy_version"] == rec.policy_version and d.data["requester"] == "carol"
    assert [e.event for e in inbox.history(rid)] == ["requested", "decided", "executed"]
    assert d.data["resumer"] == inbox.worker_id  # recorded and resumed by this inbox
    with pytest.raises(AlreadyDecided, match="already approved by alice") as exc:
        inbox.approve(rid, reviewer=BOB)
    assert exc.value.decided_by == "alice" and exc.value.status == "approved"
    assert ledger.count("transfer_funds") == 1
    assert store.verify_audit().ok


def test_pending_lists_filters_and_pages_from_the_index(mem: MemoryStore) -> None:
    ledger = MemLedger()
    saver = InMemorySaver()
    amounts = [8_600, 9_000, 9_500, 9_900]
    apps = [build_app(mem, saver, ledger, transfer(a)) for a in amounts]
    ids = [interrupted(app)[2] for app in apps]
    close_app = build_app(mem, saver, ledger, tool_call(("close_account", {"name": "old"})))
    close_cfg, _, close_id = interrupted(close_app)
    graph = CountingGraph(apps[0])
    inbox = Inbox(mem, graph)
    page = inbox.pending()
    assert [r.request_id for r in page] == [*ids, close_id] and page.next_cursor is None
    assert graph.get_state_calls == 0  # served by the store, never by reading threads
    assert [r.request_id for r in inbox.pending(tool="transfer_*")] == ids
    assert [r.request_id for r in inbox.pending(min_risk=0.95)] == [ids[2], ids[3], close_id]
    # "finance" may decide transfers (its role) and close_account (no roles needed)
    assert len(inbox.pending(role="finance")) == 5
    assert [r.request_id for r in inbox.pending(role="ops")] == [close_id]
    assert [
        r.request_id for r in inbox.pending(thread_id=close_cfg["configurable"]["thread_id"])
    ] == [close_id]
    assert inbox.pending(overdue=True).items == []
    assert inbox.count() == 5 and inbox.count(tool="close_*") == 1
    seen: list[str] = []
    cursor = None
    while True:
        p = inbox.pending(limit=2, cursor=cursor)
        seen += [r.request_id for r in p]
        if p.next_cursor is None:
            break
        cursor = p.next_cursor
    assert seen == [*ids, close_id]
    inbox.approve(ids[0], reviewer=ALICE)
    assert ids[0] not in [r.request_id for r in inbox.pending()]
    with pytest.raises(ConfigurationError, match="cursor"):
        inbox.pending(cursor="garbage!")
    with pytest.raises(ConfigurationError, match="limit"):
        inbox.pending(limit=0)


def test_reject_respond_and_edit(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    inbox = Inbox(mem, app)
    _, _, rid = interrupted(app)
    res = inbox.reject(rid, reviewer=ALICE, reason="bob is not a customer")
    assert res.resumed and ledger.entries == []
    assert "bob is not a customer" in tool_texts(res.output)[0]
    assert inbox.get(rid).status == "rejected"

    _, _, rid = interrupted(app)
    res = inbox.respond(rid, reviewer=ALICE, message="paid by hand")
    assert tool_texts(res.output) == ["paid by hand"] and ledger.entries == []

    _, _, rid = interrupted(app)
    res = inbox.edit(rid, reviewer=ALICE, args={"amount": 8_900, "to": "bob"}, reason="typo")
    assert res.resumed and res.follow_ups == ()
    assert ledger.entries == [("transfer_funds", {"amount": 8_900, "to": "bob"})]
    assert inbox.get(rid).status == "edited"


def test_risk_raising_edit_creates_a_follow_up_that_needs_approval(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    inbox = Inbox(mem, app)
    _, _, rid = interrupted(app)
    res = inbox.edit(rid, reviewer=ALICE, args={"amount": 9_900, "to": "bob"})
    assert ledger.entries == []
    (follow,) = res.follow_ups
    assert follow.parent_request_id == rid and follow.args == {"amount": 9_900, "to": "bob"}
    assert follow.requester == "carol"  # the requester carries over: SoD still applies
    assert [r.request_id for r in inbox.pending()] == [follow.request_id]
    inbox.approve(follow.request_id, reviewer=BOB)
    assert ledger.entries == [("transfer_funds", {"amount": 9_900, "to": "bob"})]


def test_bad_edits_are_refused_before_anything_is_recorded(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    inbox = Inbox(mem, app)
    cfg, intr, rid = interrupted(app)
    cases = [
        ({"args": {"amount": "lots", "to": "bob"}}, "schema"),
        ({"tool": "nuke", "args": {}}, "does not have"),
        ({"tool": "wipe_records", "args": {"name": "bob"}}, "denied by the policy"),
    ]
    for kwargs, text in cases:
        with pytest.raises(InvalidDecision, match=text):
            inbox.edit(rid, reviewer=ALICE, **kwargs)
    assert inbox.get(rid).status == "pending"
    assert [i.id for i in app.get_state(cfg).interrupts] == [intr.id]
    assert [e.event for e in inbox.history(rid)].count("refused") == 3
    inbox.approve(rid, reviewer=ALICE)
    assert ledger.count("transfer_funds") == 1


def test_digest_binds_the_decision_to_the_reviewed_action(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    inbox = Inbox(mem, app)
    _, _, rid = interrupted(app)
    with pytest.raises(DigestMismatch, match="different action"):
        inbox.approve(rid, reviewer=ALICE, digest="sha256:" + "0" * 64)
    assert inbox.get(rid).status == "pending" and ledger.entries == []
    refused = [e for e in inbox.history(rid) if e.event == "refused"]
    assert refused[0].data["error"] == "DigestMismatch" and refused[0].actor == "alice"
    inbox.approve(rid, reviewer=ALICE, digest=inbox.get(rid).digest)
    assert ledger.count("transfer_funds") == 1


def test_malformed_decisions_and_unknown_requests(mem: MemoryStore) -> None:
    app = build_app(mem, InMemorySaver(), MemLedger(), transfer())
    inbox = Inbox(mem, app)
    _, _, rid = interrupted(app)
    with pytest.raises(RequestNotFound, match="no approval request 'req_nope'"):
        inbox.approve("req_nope", reviewer=ALICE)
    with pytest.raises(InvalidDecision, match="malformed"):
        inbox.decide(rid, {"type": "aprove"}, reviewer=ALICE)
    with pytest.raises(InvalidDecision, match="names request"):
        inbox.decide(rid, {"type": "approve", "request_id": "req_other"}, reviewer=ALICE)
    with pytest.raises(ConfigurationError, match="Reviewer"):
        inbox.approve(rid, reviewer="alice")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ApprovalStore"):
        Inbox("memory://")  # type: ignore[arg-type]
    assert inbox.get(rid).status == "pending"


def test_resume_targets_only_a_pending_interrupt(mem: MemoryStore) -> None:
    """LangGraph ignores unknown interrupt ids and runs unknown threads from START."""
    ledger = MemLedger()
    saver = InMemorySaver()
    app = build_app(mem, saver, ledger, transfer())
    _, _, rid = interrupted(app)
    # the inbox holds a graph on another checkpointer: the thread does not exist there
    stranger = build_app(mem, InMemorySaver(), ledger, transfer())
    with pytest.raises(NotPending, match="no checkpoint"):
        Inbox(mem, stranger).approve(rid, reviewer=ALICE)
    assert mem.get_request(rid).status == "pending" and ledger.entries == []  # type: ignore[union-attr]

    # the thread moved on behind the index's back (a raw resume), then the row was reset
    cfg, intr, rid2 = interrupted(app)
    app.invoke(Command(resume={intr.id: {"type": "reject"}}), cfg)
    mem.update_request(rid2, status="pending", decision=None)
    with pytest.raises(NotPending, match="no pending interrupt"):
        Inbox(mem, app).approve(rid2, reviewer=ALICE)
    assert mem.get_request(rid2).status == "pending" and ledger.entries == []  # type: ignore[union-attr]
    assert [e.data["error"] for e in mem.list_audit(request_id=rid2) if e.event == "refused"] == [
        "NotPending"
    ]


def test_split_mode_records_then_a_worker_applies_once(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path}/hitl.db")
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    reviewer_side = Inbox(store)  # the reviewer's process has no graph
    runs = [interrupted(app) for _ in range(3)]
    results = [
        reviewer_side.approve(runs[0][2], reviewer=ALICE),
        reviewer_side.reject(runs[1][2], reviewer=ALICE, reason="no"),
    ]
    assert [r.outcome for r in results] == ["recorded", "recorded"] and ledger.entries == []
    assert app.get_state(runs[0][0]).interrupts  # still waiting
    worker = Inbox(store, app)
    report = worker.apply_decided()
    assert sorted(report.applied) == sorted([runs[0][2], runs[1][2]])
    assert ledger.count("transfer_funds") == 1
    assert not app.get_state(runs[0][0]).interrupts and not app.get_state(runs[1][0]).interrupts
    assert worker.apply_decided().applied == []
    assert Inbox(store, app).apply_decided().applied == []  # a second worker finds them claimed
    reviewer_side.approve(runs[2][2], reviewer=BOB)
    assert worker.apply_decided().applied == [runs[2][2]]
    assert ledger.count("transfer_funds") == 2
    with pytest.raises(ConfigurationError, match="needs the compiled graph"):
        reviewer_side.apply_decided()
    store.close()


def test_apply_reports_decisions_it_cannot_apply(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    cfg, intr, rid = interrupted(app)
    Inbox(mem).approve(rid, reviewer=ALICE)
    app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)  # applied by hand
    report = Inbox(mem, app).apply_decided()
    assert report.not_pending == [rid] and report.applied == []
    assert ledger.count("transfer_funds") == 1
    assert "apply_failed" in [e.event for e in mem.list_audit(request_id=rid)]

    # an edit recorded without the graph's checks, which the engine then refuses
    cfg, intr, rid = interrupted(app)
    Inbox(mem).edit(rid, reviewer=ALICE, args={"amount": "lots", "to": "bob"})
    report = Inbox(mem, app).apply_decided()
    assert report.reverted == [rid]
    rec = mem.get_request(rid)
    assert rec is not None and rec.status == "pending" and rec.decision is None
    assert "reverted" in [e.event for e in mem.list_audit(request_id=rid)]
    assert [i.id for i in app.get_state(cfg).interrupts] == [intr.id]
    Inbox(mem, app).approve(rid, reviewer=ALICE)
    assert ledger.count("transfer_funds") == 2


def test_several_interrupts_in_one_thread_are_decided_one_by_one(mem: MemoryStore) -> None:
    ledger = MemLedger()
    first = tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}), ("close_account", {"name": "old"})
    )
    for send in (False, True):
        app = build_app(mem, InMemorySaver(), ledger, first, send=send)
        inbox = Inbox(mem, app)
        cfg = {"configurable": {"thread_id": f"multi-{send}", "user_id": "carol"}}
        app.invoke({"messages": [("user", "both")]}, cfg)
        rows = inbox.pending(thread_id=f"multi-{send}").items
        assert sorted(r.tool for r in rows) == ["close_account", "transfer_funds"]
        by_tool = {r.tool: r.request_id for r in rows}
        res = inbox.approve(by_tool["close_account"], reviewer=ALICE)
        assert res.resumed and len(res.pending_interrupts()) == 1
        res = inbox.reject(by_tool["transfer_funds"], reviewer=ALICE, reason="no")
        assert res.resumed and res.pending_interrupts() == []
        assert app.get_state(cfg).interrupts == ()
    assert ledger.count("close_account") == 2 and ledger.count("transfer_funds") == 0


def test_reconcile_repairs_the_index(tmp_path: Any) -> None:
    path = tmp_path / "hitl.db"
    store = open_store(f"sqlite:///{path}")
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    inbox = Inbox(store, app)
    # 1. a pending row whose interrupt disappeared (the thread was resumed raw)
    cfg1, intr1, gone = interrupted(app)
    app.invoke(Command(resume={intr1.id: {"type": "reject"}}), cfg1)
    store.update_request(gone, status="pending", decision=None)
    # 2. an interrupt whose row was lost (a restore from an older backup)
    cfg2, _, lost = interrupted(app)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM hitl_requests WHERE request_id = ?", (lost,))
    # 3. a decision recorded by a reviewer whose resume never happened
    _, _, unapplied = interrupted(app)
    Inbox(store).approve(unapplied, reviewer=ALICE)
    # 4. a pending row pointing at a stale interrupt id
    _, intr4, stale = interrupted(app)
    store.update_request(stale, interrupt_id="0" * 32)
    # 5. a healthy one
    _, _, healthy = interrupted(app)

    first = inbox.reconcile()  # everything is younger than the grace period...
    assert set(first.skipped_recent) == {gone, unapplied} and not first.cancelled
    assert first.relinked == [stale]  # ...but relinking a live interrupt is always safe
    assert store.get_request(stale).interrupt_id == intr4.id  # type: ignore[union-attr]
    # the lost row's thread is unknown to the store: name it (a thread list from your app)
    report = inbox.reconcile(thread_ids=[cfg2["configurable"]["thread_id"]], grace=timedelta(0))
    assert report.cancelled == [gone]
    assert report.inserted == [lost]
    assert report.applied == [unapplied] and ledger.count("transfer_funds") == 1
    assert report.checked_threads == 5 and report.changed
    assert store.get_request(gone).status == "cancelled"  # type: ignore[union-attr]
    rebuilt = store.get_request(lost)
    assert rebuilt is not None and rebuilt.status == "pending" and rebuilt.requester == "carol"
    assert rebuilt.approver_roles == ["finance"] and rebuilt.tool == "transfer_funds"
    # the rebuilt row is a working request; the healthy one was left alone
    inbox.approve(lost, reviewer=ALICE)
    assert ledger.count("transfer_funds") == 2
    assert store.get_request(healthy).status == "pending"  # type: ignore[union-attr]
    again = inbox.reconcile(grace=timedelta(0))
    assert not again.changed, again
    assert store.verify_audit().ok
    store.close()


def test_async_twins(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    inbox = Inbox(mem, app)

    async def run() -> None:
        rids = [interrupted(app)[2] for _ in range(4)]
        page = await inbox.apending(tool="transfer_*")
        assert [r.request_id for r in page] == rids
        assert (await inbox.aapprove(rids[0], reviewer=ALICE)).resumed
        assert (await inbox.areject(rids[1], reviewer=ALICE, reason="no")).resumed
        res = await inbox.aedit(rids[2], reviewer=ALICE, args={"amount": 8_000, "to": "bob"})
        assert res.resumed
        assert tool_texts((await inbox.arespond(rids[3], reviewer=ALICE, message="hi")).output) == [
            "hi"
        ]
        with pytest.raises(AlreadyDecided):
            await inbox.aapprove(rids[0], reviewer=BOB)
        _, _, split = interrupted(app)
        await Inbox(mem).aapprove(split, reviewer=ALICE)
        report = await inbox.aapply_decided()
        assert report.applied == [split]

    asyncio.run(run())
    assert ledger.entries == [
        ("transfer_funds", {"amount": 9_000, "to": "bob"}),
        ("transfer_funds", {"amount": 8_000, "to": "bob"}),
        ("transfer_funds", {"amount": 9_000, "to": "bob"}),
    ]


class FlakyGraph(CountingGraph):
    """A graph whose next ``invoke`` fails (a database outage during the resume)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.fail_next = True

    def invoke(self, *a: Any, **k: Any) -> Any:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("checkpointer unavailable")
        return self.app.invoke(*a, **k)


def test_a_failed_resume_is_handed_over_to_workers(mem: MemoryStore) -> None:
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    cfg, _, rid = interrupted(app)
    with pytest.raises(RuntimeError, match="checkpointer unavailable"):
        Inbox(mem, FlakyGraph(app)).approve(rid, reviewer=ALICE)
    rec = mem.get_request(rid)
    assert rec is not None and rec.status == "approved" and "resume" not in rec.metadata
    assert ledger.entries == [] and app.get_state(cfg).interrupts  # recorded, not applied
    assert Inbox(mem, app).apply_decided().applied == [rid]
    assert ledger.count("transfer_funds") == 1


def test_a_crashed_resumer_is_taken_over_once_its_marker_is_stale(mem: MemoryStore) -> None:
    from hitl_langgraph.testing import FrozenClock

    clock = FrozenClock()
    ledger = MemLedger()
    app = build_app(mem, InMemorySaver(), ledger, transfer())
    # two decisions recorded by an inbox (with a graph) that died before resuming one
    # of them; the other it resumed, then died
    (cfg1, _, died), (cfg2, _, done) = interrupted(app), interrupted(app)
    for rid in (died, done):
        Inbox(mem).approve(rid, reviewer=ALICE)
        marker = {"resume": {"by": "inbox:dead", "at": clock.now.isoformat()}}
        mem.update_request(rid, metadata=marker)
    app.invoke(Command(resume={app.get_state(cfg2).interrupts[0].id: {"type": "approve"}}), cfg2)
    assert ledger.count("transfer_funds") == 1
    worker = Inbox(mem, app, clock=clock)
    assert worker.apply_decided().applied == []  # fresh markers: their inbox is on it
    clock.advance(minutes=4)
    assert worker.apply_decided().applied == []
    clock.advance(minutes=2)  # past stale_after (5 min)
    report = worker.apply_decided()
    assert report.applied == [died] and report.not_pending == []
    assert ledger.count("transfer_funds") == 2 and not app.get_state(cfg1).interrupts
    claim = mem.get_execution(f"resume:{done}")
    assert claim is not None and claim.state == "done"  # checked once, remembered
    assert Inbox(mem, app, clock=clock).apply_decided().applied == []
