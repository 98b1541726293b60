"""The inbox's resume failure paths: nothing decided is lost when a resume fails.

* A resume that raises after the decision was recorded hands the request over to
  ``apply_decided`` (marker cleared), and a worker applies it exactly once.
* ``apply_decided`` whose resume raises releases its claim, reports the error and
  retries on its next call.
* An expiry whose resume fails, or whose thread does not wait for it, is recorded and
  handed over the same way.
* A recorded decision the graph refuses (an edit the tool's schema rejects) is reverted
  to pending, with a ``reverted`` audit row.

Sync and async, on every store backend.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from flaky_graphs import Flaky, build, paid, start
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import RiskPolicy, Rule
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.inbox._base import RESUME_MARK
from hitl_langgraph.inbox._graph import resume_key
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.testing import FrozenClock

ALICE = Reviewer("alice")


def apply(inbox: Inbox, is_async: bool) -> Any:
    return asyncio.run(inbox.aapply_decided()) if is_async else inbox.apply_decided()


def events(store: ApprovalStore, rid: str) -> list[str]:
    return [e.event for e in store.list_audit(request_id=rid)]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_failed_resume_is_handed_over_and_applied_once(
    store: ApprovalStore, is_async: bool
) -> None:
    body = Flaky(fail=1)
    app = build(store, body, is_async=is_async)
    _, _, rid = start(app)
    inbox, worker = Inbox(store, app), Inbox(store, app, worker_id="w2")
    with pytest.raises(RuntimeError, match="bank API unavailable"):
        if is_async:
            asyncio.run(inbox.aapprove(rid, reviewer=ALICE))
        else:
            inbox.approve(rid, reviewer=ALICE)
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "approved"  # the decision is kept
    assert RESUME_MARK not in rec.metadata  # handed over: workers need not wait for it
    report = asyncio.run(worker.aapply_decided()) if is_async else worker.apply_decided()
    assert report.applied == [rid] and not report.errors
    assert paid(report.outputs[rid]) == ["paid 5"] and (body.calls, body.done) == (2, 1)
    assert events(store, rid)[-2:] == ["executed", "applied"]
    again = asyncio.run(worker.aapply_decided()) if is_async else worker.apply_decided()
    assert again.applied == [] and body.done == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_failing_worker_releases_its_claim_and_retries(
    store: ApprovalStore, is_async: bool
) -> None:
    body = Flaky(fail=1)
    app = build(store, body, is_async=is_async)
    _, _, rid = start(app)
    Inbox(store).approve(rid, reviewer=ALICE)  # recorded without a graph (split mode)
    worker = Inbox(store, app)

    def apply() -> Any:
        return asyncio.run(worker.aapply_decided()) if is_async else worker.apply_decided()

    first = apply()
    assert first.applied == [] and list(first.errors) == [rid]
    assert first.errors[rid].startswith("RuntimeError: bank API unavailable")
    assert store.get_execution(resume_key(rid)) is None  # released for the retry
    second = apply()
    assert second.applied == [rid] and (body.calls, body.done) == (2, 1)


def expiring(clock: FrozenClock) -> RiskPolicy:
    return RiskPolicy(
        rules=[Rule(tool="pay", score=0.9, expires_after=timedelta(hours=1), on_expiry="approve")]
    )


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_expiry_whose_resume_fails_is_recorded_and_handed_over(
    store: ApprovalStore, is_async: bool
) -> None:
    clock = FrozenClock()
    body = Flaky(fail=1)
    app = build(store, body, is_async=is_async, policy=expiring(clock), clock=clock)
    _, _, rid = start(app)
    sweeper = Inbox(store, app, clock=clock)
    clock.advance(hours=2)
    report = asyncio.run(sweeper.asweep()) if is_async else sweeper.sweep()
    (res,) = report.expired
    assert (res.request_id, res.outcome) == (rid, "recorded")
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "expired" and RESUME_MARK not in rec.metadata
    applied = apply(Inbox(store, app, clock=clock), is_async)
    assert applied.applied == [rid] and body.done == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_an_expiry_on_a_thread_that_does_not_wait_is_handed_over(
    store: ApprovalStore, is_async: bool
) -> None:
    clock = FrozenClock()
    body = Flaky(fail=0)
    app = build(store, body, is_async=is_async, policy=expiring(clock), clock=clock)
    _, _, rid = start(app)
    # a sweeper holding a graph on another (empty) checkpointer: the thread is not there
    elsewhere = build(store, body, is_async=is_async, policy=expiring(clock), clock=clock)
    sweeper = Inbox(store, elsewhere, clock=clock)
    clock.advance(hours=2)
    report = asyncio.run(sweeper.asweep()) if is_async else sweeper.sweep()
    (res,) = report.expired
    assert (res.request_id, res.outcome) == (rid, "recorded") and body.calls == 0
    assert apply(Inbox(store, app, clock=clock), is_async).applied == [rid]
    assert body.done == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_recorded_decision_the_graph_refuses_is_reverted_to_pending(
    store: ApprovalStore, is_async: bool
) -> None:
    body = Flaky(fail=0)
    app = build(store, body, is_async=is_async, checkpointer=InMemorySaver())
    _, _, rid = start(app)
    # recorded without a graph, so the tool's schema could not be checked yet
    Inbox(store).edit(rid, reviewer=ALICE, args={"amount": "five"})
    worker = Inbox(store, app)
    report = asyncio.run(worker.aapply_decided()) if is_async else worker.apply_decided()
    assert report.reverted == [rid] and not report.applied and body.calls == 0
    rec = store.get_request(rid)
    assert rec is not None and (rec.status, rec.decision, rec.decided_by) == ("pending", None, None)
    assert events(store, rid)[-1] == "reverted"
    assert store.get_execution(resume_key(rid)) is None
    again = Inbox(store, app)
    out = (  # a valid decision still works
        asyncio.run(again.aapprove(rid, reviewer=ALICE))
        if is_async
        else again.approve(rid, reviewer=ALICE)
    )
    assert out.resumed and body.done == 1


# -- reconcile: a worker that crashed holding the resume claim ---------------------------


def crashed_worker(store: ApprovalStore, clock: FrozenClock) -> tuple[Any, Flaky, str]:
    """A decision recorded without a graph, whose resume claim a dead worker still holds."""
    body = Flaky(fail=0)
    app = build(store, body, clock=clock)
    _, _, rid = start(app)
    Inbox(store, clock=clock).approve(rid, reviewer=ALICE)
    assert store.claim_execution(resume_key(rid), worker="dead-host:1:x", at=clock())
    return app, body, rid


def test_reconcile_leaves_a_fresh_resume_claim_and_recovers_a_stale_one(
    store: ApprovalStore,
) -> None:
    clock = FrozenClock()
    app, body, rid = crashed_worker(store, clock)
    inbox = Inbox(store, app, clock=clock, stale_after=timedelta(minutes=5))
    clock.advance(minutes=2)  # past the grace, not yet stale: the worker may be resuming
    report = inbox.reconcile(grace=timedelta(seconds=60))
    assert (report.applied, report.errors, body.calls) == ([], {}, 0)
    assert Inbox(store, app, clock=clock).apply_decided().applied == []  # claimed: skipped
    clock.advance(minutes=5)  # the claim is stale: the worker died
    report = inbox.reconcile(grace=timedelta(seconds=60))
    assert report.applied == [rid] and not report.errors and body.done == 1
    claim = store.get_execution(resume_key(rid))
    assert claim is not None and claim.state == "done"
    assert events(store, rid)[-1] == "applied"
    assert inbox.reconcile(grace=timedelta(seconds=60)).applied == []  # once


def test_reconcile_reports_an_applied_decision_whose_thread_still_asks(
    store: ApprovalStore,
) -> None:
    clock = FrozenClock()
    app, body, rid = crashed_worker(store, clock)
    store.finish_execution(resume_key(rid), state="done", at=clock())  # but never resumed
    clock.advance(minutes=10)
    report = Inbox(store, app, clock=clock).reconcile(grace=timedelta(seconds=60))
    assert report.applied == [] and body.calls == 0  # not run twice on a guess
    assert "decision was applied (done at" in report.errors[rid]
    assert "yet the thread still asks for it; inspect the thread" in report.errors[rid]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_decision_the_graph_refuses_while_resuming_is_reverted_and_raised(
    is_async: bool,
) -> None:
    from hitl_langgraph import MemoryStore
    from hitl_langgraph.errors import DecisionError

    store = MemoryStore()
    body = Flaky(fail=0)
    app = build(store, body, is_async=is_async)
    _, _, rid = start(app)
    inbox = Inbox(store, app)
    with pytest.raises(DecisionError):
        if is_async:
            asyncio.run(inbox.aedit(rid, reviewer=ALICE, args={"amount": "five"}))
        else:
            inbox.edit(rid, reviewer=ALICE, args={"amount": "five"})
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "pending" and body.calls == 0
