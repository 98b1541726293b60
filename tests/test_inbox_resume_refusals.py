"""The inbox's resume when the graph refuses a decision the inbox already accepted.

The inbox validates a decision against the stored request and the graph's policy before
recording it, but the graph re-checks it while resuming, with what the inbox cannot see
(the thread's state) and with the policy it runs *now*. These tests make the graph refuse
late, with real graphs on a real SQLite store, and check what is left behind:

* a direct resume the graph refuses is reverted to pending (``reverted`` audit row, no
  resume marker, no claim) and the refusal is raised; a valid decision still goes through;
* an expiry the graph refuses is reverted the same way, and reported as not resumed;
* a quorum decision the graph refuses keeps its approvals (they are the reviewers'
  record) and releases the resume claim, so nothing is half-reverted;
* a resume marker that cannot be read (its time is corrupt) does not hold the request:
  a worker claims and applies it, once.

Sync and async.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flaky_graphs import Flaky, build, paid, start
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import RiskPolicy, Rule
from hitl_langgraph.errors import DecisionError, InvalidDecision
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.inbox._base import RESUME_MARK
from hitl_langgraph.inbox._graph import resume_key
from hitl_langgraph.store.sqlite import SqliteStore
from hitl_langgraph.testing import FrozenClock

ALICE, BOB = Reviewer("alice"), Reviewer("bob")
SYNC_ASYNC = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "hitl.db"))
    s.setup()
    yield s
    s.close()


def events(store: SqliteStore, rid: str) -> list[str]:
    return [e.event for e in store.list_audit(request_id=rid)]


def run(is_async: bool, sync: Any, coro: Any) -> Any:
    """``asyncio.run(coro())`` or ``sync()``."""
    return asyncio.run(coro()) if is_async else sync()


def limit_in_state(state: Any) -> bool:
    """The thread's limit, which only the graph sees: over 100 is denied mid-run."""
    return state is not None


def state_limited() -> RiskPolicy:
    """Payments over 100 are denied, but only when the graph state is known (in the graph)."""
    return RiskPolicy(
        rules=[
            Rule(
                tool="pay",
                when=lambda action, ctx: limit_in_state(ctx.state) and action.args["amount"] > 100,
                route="deny",
                reason="over the thread's limit",
            ),
            Rule(tool="pay", score=0.9),
        ]
    )


def assert_reverted(store: SqliteStore, rid: str, decision: str) -> None:
    rec = store.get_request(rid)
    assert rec is not None
    assert (rec.status, rec.decision, rec.decided_by, rec.approvals) == ("pending", None, None, [])
    assert RESUME_MARK not in rec.metadata
    assert store.get_execution(resume_key(rid)) is None  # no claim left behind
    (reverted,) = [e for e in store.list_audit(request_id=rid) if e.event == "reverted"]
    assert reverted.data["reverted_decision"]["type"] == decision
    assert reverted.data["error"] == "InvalidDecision"
    assert store.verify_audit().ok


@SYNC_ASYNC
def test_a_direct_resume_the_graph_refuses_is_reverted_and_raised(
    store: SqliteStore, is_async: bool
) -> None:
    body = Flaky(fail=0)
    app = build(store, body, is_async=is_async, policy=state_limited())
    _, _, rid = start(app)
    inbox = Inbox(store, app)
    with pytest.raises(InvalidDecision, match="denied by the policy: over the thread's limit"):
        run(
            is_async,
            lambda: inbox.edit(rid, reviewer=ALICE, args={"amount": 500}),
            lambda: inbox.aedit(rid, reviewer=ALICE, args={"amount": 500}),
        )
    assert_reverted(store, rid, "edit")
    assert events(store, rid)[-3:] == ["decided", "refused", "reverted"]
    assert body.calls == 0  # nothing ran
    # a worker reading the trail from the start sees the old ``decided`` row: it skips it
    worker = Inbox(store, app, worker_id="w2")
    report = run(is_async, worker.apply_decided, worker.aapply_decided)
    assert (report.applied, report.reverted, report.errors) == ([], [], {})
    # the refused value was not stored by LangGraph: a valid decision still goes through
    out = run(
        is_async,
        lambda: inbox.approve(rid, reviewer=ALICE),
        lambda: inbox.aapprove(rid, reviewer=ALICE),
    )
    assert out.resumed and paid(out.output) == ["paid 5"] and body.done == 1
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "approved" and rec.decided_by == "alice"


class Switch:
    """A policy rule that can change while requests wait (a deploy, a config reload)."""

    def __init__(self) -> None:
        self.strict = False

    def __call__(self, args: Any) -> bool:
        return self.strict


def switchable(switch: Switch, **rule: Any) -> RiskPolicy:
    """``pay`` is gated; once ``switch.strict``, an approval is no longer allowed."""
    return RiskPolicy(
        rules=[
            Rule(tool="pay", when=switch, score=0.9, allowed_decisions=("reject", "edit"), **rule),
            Rule(tool="pay", score=0.9, **rule),
        ]
    )


@SYNC_ASYNC
def test_an_expiry_the_graph_refuses_is_reverted_not_resumed(
    store: SqliteStore, is_async: bool
) -> None:
    clock, switch = FrozenClock(), Switch()
    body = Flaky(fail=0)
    policy = switchable(switch, expires_after=timedelta(hours=1), on_expiry="approve")
    app = build(store, body, is_async=is_async, policy=policy, clock=clock)
    _, _, rid = start(app)
    switch.strict = True  # approvals of pay are no longer allowed when the deadline passes
    clock.advance(hours=2)
    sweeper = Inbox(store, app, clock=clock)
    report = run(is_async, sweeper.sweep, sweeper.asweep)
    (res,) = report.expired
    assert res.request_id == rid and res.outcome != "resumed"
    assert body.calls == 0
    assert_reverted(store, rid, "approve")
    assert events(store, rid)[-3:] == ["expired", "refused", "reverted"]
    # its deadline is cleared, so the next sweeps leave it to a human instead of expiring,
    # refusing and reverting it again every time
    rec = store.get_request(rid)
    assert rec is not None and rec.expires_at is None
    trail = events(store, rid)
    clock.advance(hours=2)
    again = run(is_async, sweeper.sweep, sweeper.asweep)
    assert again.expired == [] and events(store, rid) == trail
    assert store.verify_audit().ok


@SYNC_ASYNC
def test_a_quorum_decision_the_graph_refuses_keeps_its_approvals(
    store: SqliteStore, is_async: bool
) -> None:
    switch = Switch()
    body = Flaky(fail=0)
    app = build(store, body, is_async=is_async, policy=switchable(switch, quorum=2))
    _, _, rid = start(app)
    inbox = Inbox(store, app)
    first = run(
        is_async,
        lambda: inbox.approve(rid, reviewer=ALICE),
        lambda: inbox.aapprove(rid, reviewer=ALICE),
    )
    assert not first.resumed
    switch.strict = True
    with pytest.raises(DecisionError, match="not allowed"):
        run(
            is_async,
            lambda: inbox.approve(rid, reviewer=BOB),
            lambda: inbox.aapprove(rid, reviewer=BOB),
        )
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "approved" and body.calls == 0
    assert sorted(a["reviewer"] for a in rec.approvals) == ["alice", "bob"]
    assert events(store, rid)[-2:] == ["decided", "refused"]  # the refusal is on the trail
    assert store.get_execution(resume_key(rid)) is None  # the claim was released
    assert store.verify_audit().ok


@SYNC_ASYNC
def test_a_corrupt_resume_marker_does_not_hold_the_request(
    store: SqliteStore, is_async: bool
) -> None:
    body = Flaky(fail=0)
    app = build(store, body, is_async=is_async, checkpointer=InMemorySaver())
    _, _, rid = start(app)
    Inbox(store).approve(rid, reviewer=ALICE)  # recorded without a graph (split mode)
    rec = store.get_request(rid)
    assert rec is not None
    store.update_request(  # a marker from another host whose time cannot be read
        rid,
        expected_status=rec.status,
        metadata={**rec.metadata, RESUME_MARK: {"by": "other-host:1:x", "at": "not a time"}},
        updated_at=rec.updated_at,
    )
    worker = Inbox(store, app, stale_after=timedelta(days=1))
    report = run(is_async, worker.apply_decided, worker.aapply_decided)
    assert report.applied == [rid] and not report.errors
    assert paid(report.outputs[rid]) == ["paid 5"] and body.done == 1
    claim = store.get_execution(resume_key(rid))
    assert claim is not None and claim.state == "done"
    again = run(is_async, worker.apply_decided, worker.aapply_decided)
    assert again.applied == [] and body.done == 1


def test_an_async_worker_reports_a_thread_that_does_not_wait(store: SqliteStore) -> None:
    body = Flaky(fail=0)
    app = build(store, body, is_async=True)
    _, _, rid = start(app)
    Inbox(store).approve(rid, reviewer=ALICE)
    elsewhere = build(store, body, is_async=True)  # another (empty) checkpointer
    report = asyncio.run(Inbox(store, elsewhere).aapply_decided())
    assert report.not_pending == [rid] and report.applied == [] and body.calls == 0
    claim = store.get_execution(resume_key(rid))
    assert claim is not None and claim.state == "failed"
    assert "has no checkpoint in this graph's checkpointer" in (claim.error or "")
    assert events(store, rid)[-1] == "apply_failed"
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "approved"  # the decision is kept
