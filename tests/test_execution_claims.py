"""The execution claim around an approved action (``GateEngine.run_once`` / ``arun_once``).

* An ordinary tool error releases the claim: the run fails, and a retry of the same
  resume runs the tool again and succeeds (once).
* A claim held by another worker makes a replay wait ``execution_wait`` seconds and then
  raise :class:`ExecutionInProgress`, changing nothing; once the holder releases or
  finishes, the retry runs the tool or returns the recorded result without running it.

Each backend: the claim lives in the store.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest
from flaky_graphs import SHORT_WAIT, Flaky, approve, build, paid, start
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import ExecutionInProgress
from hitl_langgraph.store.base import ApprovalStore


def test_a_tool_error_releases_the_claim_and_the_retry_runs_once(store: ApprovalStore) -> None:
    body = Flaky(fail=1)
    app = build(store, body)
    cfg, intr, rid = start(app)
    with pytest.raises(RuntimeError, match="bank API unavailable"):
        app.invoke(approve(intr), cfg)
    assert store.get_execution(rid) is None  # released, not left "running"
    out = app.invoke(approve(intr), cfg)  # the caller retries the same resume
    assert paid(out) == ["paid 5"] and (body.calls, body.done) == (2, 1)
    rec = store.get_execution(rid)
    assert rec is not None and rec.state == "done"
    assert [e.event for e in store.list_audit(request_id=rid)].count("executed") == 1


def test_async_a_tool_error_releases_the_claim_and_the_retry_runs_once(
    store: ApprovalStore,
) -> None:
    body = Flaky(fail=1)
    app = build(store, body, is_async=True)
    cfg, intr, rid = start(app)

    async def go() -> dict[str, Any]:
        with pytest.raises(RuntimeError, match="bank API unavailable"):
            await app.ainvoke(approve(intr), cfg)
        assert store.get_execution(rid) is None
        out: dict[str, Any] = await app.ainvoke(approve(intr), cfg)
        return out

    out = asyncio.run(go())
    assert paid(out) == ["paid 5"] and (body.calls, body.done) == (2, 1)
    assert [e.event for e in store.list_audit(request_id=rid)].count("executed") == 1


def _claim_elsewhere(store: ApprovalStore, rid: str) -> None:
    """Another worker claims the action first (a slow or crashed worker)."""
    at = datetime.now(timezone.utc)
    assert store.claim_execution(rid, worker="other-host:1:x", at=at)


def test_a_claim_held_elsewhere_times_out_with_execution_in_progress(
    store: ApprovalStore,
) -> None:
    body = Flaky(fail=0)
    app = build(store, body)
    cfg, intr, rid = start(app)
    _claim_elsewhere(store, rid)
    t0 = time.monotonic()
    with pytest.raises(ExecutionInProgress) as err:
        app.invoke(approve(intr), cfg)
    waited = time.monotonic() - t0
    # It waited execution_wait (0.2 s) and no less. The upper bound only has to tell the
    # injected wait from the 30 s default: 10 s is 50x slack for a loaded 2-core box.
    assert SHORT_WAIT <= waited < 10.0
    # the message names what settles it: a claim that never started is taken over by the
    # next resume or `hitl reconcile`; a started one by `hitl recover`
    assert err.value.request_id == rid and "hitl reconcile" in str(err.value)
    assert f"hitl recover {rid}" in str(err.value)
    assert body.calls == 0  # the tool never ran; the other worker's claim is untouched
    held = store.get_execution(rid)
    assert held is not None and (held.state, held.worker) == ("running", "other-host:1:x")
    assert store.release_execution(rid)  # the other worker gives up (reconcile would)
    assert paid(app.invoke(approve(intr), cfg)) == ["paid 5"] and body.calls == 1


def test_async_a_claim_held_elsewhere_times_out_then_the_result_is_replayed(
    store: ApprovalStore,
) -> None:
    """Two async runs of one request: the second times out while the first holds the claim
    and, retried after the first finished, returns its recorded result (no second run)."""
    gate = asyncio.Event()
    calls = 0

    async def slow(amount: int) -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return f"paid {amount}"

    saver = InMemorySaver()
    first = build(store, slow, is_async=True, checkpointer=saver, worker="w1")
    second = build(store, slow, is_async=True, checkpointer=saver, worker="w2")
    cfg, intr, rid = start(first)

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        a = asyncio.create_task(first.ainvoke(approve(intr), cfg))
        while (rec := store.get_execution(rid)) is None or rec.state not in (
            "running",
            "started",
        ):
            await asyncio.sleep(0.01)  # poll until w1 holds the claim (started: tool called)
        t0 = time.monotonic()
        with pytest.raises(ExecutionInProgress):
            await second.ainvoke(approve(intr), cfg)
        # waited execution_wait (0.2 s), not less; < 10 s tells it from the 30 s default
        assert SHORT_WAIT <= time.monotonic() - t0 < 10.0
        gate.set()
        out_a = await a
        out_b: dict[str, Any] = await second.ainvoke(approve(intr), cfg)
        return out_a, out_b

    out_a, out_b = asyncio.run(go())
    assert calls == 1
    assert paid(out_a) == ["paid 5"] and paid(out_b) == ["paid 5"]
    rec = store.get_execution(rid)
    assert rec is not None and (rec.state, rec.worker) == ("done", "w1")


def test_sync_replay_waits_for_the_running_worker_and_returns_its_result(
    store: ApprovalStore,
) -> None:
    """A second resume while the first is running waits (generous ``execution_wait``) and
    gets the first's result; the tool runs once."""
    started, release = threading.Event(), threading.Event()
    calls = 0

    def slow(amount: int) -> str:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(60)
        return f"paid {amount}"

    saver = InMemorySaver()
    first = build(store, slow, checkpointer=saver, worker="w1", wait=60)
    second = build(store, slow, checkpointer=saver, worker="w2", wait=60)
    cfg, intr, rid = start(first)
    outs: dict[str, Any] = {}
    t1 = threading.Thread(target=lambda: outs.setdefault("a", first.invoke(approve(intr), cfg)))
    t1.start()
    assert started.wait(60)
    t2 = threading.Thread(target=lambda: outs.setdefault("b", second.invoke(approve(intr), cfg)))
    t2.start()
    release.set()
    t1.join(60)
    t2.join(60)
    assert calls == 1 and paid(outs["a"]) == ["paid 5"] and paid(outs["b"]) == ["paid 5"]
