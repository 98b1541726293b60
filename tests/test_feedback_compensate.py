"""Remediation: a compensator runs once per wrong executed action, retries, never vanishes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from feedback_support import T0, review, span_id

from hitl_langgraph import ConfigurationError, MemoryStore
from hitl_langgraph.feedback import (
    CompensationFailed,
    CompensationNotRegistered,
    CompensationRequest,
    CompensationRunner,
    Compensations,
    compensate,
)
from hitl_langgraph.store.records import ApprovalRecord


def _request(store: MemoryStore, rid: str = "req_1", status: str = "review") -> None:
    store.put_request(
        ApprovalRecord(
            request_id=rid,
            thread_id="t1",
            node="tools",
            tool="refund",
            args={"order": "A1", "amount": 900},
            digest="d",
            score=0.6,
            route="review",
            reasons=[],
            status=status,
            created_at=T0,
            updated_at=T0,  # type: ignore[arg-type]
        )
    )


def _runner(store: MemoryStore, fn: Any, **kw: Any) -> CompensationRunner:
    return CompensationRunner(store, Compensations({"refund": fn}), clock=lambda: T0, **kw)


def wrong(rid: str = "req_1", **kw: Any) -> Any:
    return review(
        span_id(), label="incorrect", explanation="should not refund", request_id=rid, **kw
    )


def test_decorator_registers_and_a_second_compensator_for_a_tool_is_refused() -> None:
    reg = Compensations()

    @compensate("refund", name="charge_back", registry=reg)
    def undo(req: CompensationRequest) -> str:
        return "undone"

    assert undo(None) == "undone"  # type: ignore[arg-type]  # the function is returned as is
    assert reg.require("refund").name == "charge_back" and "refund" in reg
    with pytest.raises(ConfigurationError):
        reg.register("refund", lambda r: None)
    with pytest.raises(CompensationNotRegistered):
        reg.require("lookup")


def test_runs_once_per_request_with_audit_and_annotation() -> None:
    store = MemoryStore()
    _request(store)
    calls: list[CompensationRequest] = []
    runner = _runner(
        store, lambda req: calls.append(req) or f"refund reversed for {req.args['order']}"
    )
    verdict = wrong(reviewer="alice")
    first = runner.run_all([verdict])
    assert [o.status for o in first] == ["compensated"] and len(calls) == 1
    assert calls[0].reviewers == ("alice",) and calls[0].explanation == "should not refund"
    assert [o.status for o in runner.run_all([verdict])] == ["already_done"]
    assert [o.status for o in _runner(store, lambda r: calls.append(r)).run_all([verdict])] == [
        "already_done"
    ]
    assert len(calls) == 1
    assert store.get_execution("compensate:req_1").state == "done"  # type: ignore[union-attr]
    (ev,) = [e for e in store.list_audit(request_id="req_1") if e.event == "compensated"]
    assert ev.data["compensator"] == "<lambda>" and ev.data["reviewers"] == ["alice"]
    (entry,) = store.list_outbox(status=None)
    assert entry.span_id == verdict.span_id and entry.name == "hitl_compensation"
    assert entry.payload["annotator_kind"] == "CODE"
    assert entry.payload["result"]["label"] == "compensated"


def test_racing_runners_compensate_once() -> None:
    store = MemoryStore()
    _request(store)
    calls = []
    lock = threading.Lock()

    def fn(req: CompensationRequest) -> str:
        with lock:
            calls.append(req.request_id)
        return "ok"

    verdict = wrong()
    threads = [
        threading.Thread(target=_runner(store, fn).run_all, args=([verdict],)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["req_1"]


def test_a_failing_compensator_is_retried_with_backoff_then_reported() -> None:
    store = MemoryStore()
    _request(store)
    sleeps: list[float] = []
    attempts = []

    def flaky(req: CompensationRequest) -> str:
        attempts.append(req.attempt)
        raise TimeoutError("payments API timed out")

    runner = _runner(store, flaky, max_attempts=3, backoff=0.5, sleep=sleeps.append)
    (out,) = runner.run_all([wrong()])
    assert out.status == "failed" and attempts == [1, 2, 3] and sleeps == [0.5, 1.0]
    assert isinstance(out.error, CompensationFailed) and out.error.attempts == 3
    events = [e.event for e in store.list_audit(request_id="req_1")]
    assert events.count("compensation_attempt_failed") == 3 and "compensation_failed" in events
    (entry,) = store.list_outbox(status=None)
    assert entry.payload["result"]["label"] == "failed"
    # never silently dropped: later runs still report it, and do not run it again
    assert [o.status for o in runner.run_all([wrong()])] == ["already_failed"]
    assert runner.outstanding(["req_1"]) == ["req_1"] and attempts == [1, 2, 3]


def test_recovering_compensator_succeeds_on_a_retry() -> None:
    store = MemoryStore()
    _request(store)
    tries = iter([RuntimeError("blip"), "ok"])

    def fn(req: CompensationRequest) -> str:
        value = next(tries)
        if isinstance(value, Exception):
            raise value
        return value

    (out,) = _runner(store, fn, sleep=lambda s: None).run_all([wrong()])
    assert out.status == "compensated" and out.attempts == 2 and out.result == "ok"


def test_raise_on_failure() -> None:
    store = MemoryStore()
    _request(store)

    def fail(req: CompensationRequest) -> None:
        raise ValueError("no")

    runner = _runner(store, fail, max_attempts=1, raise_on_failure=True)
    with pytest.raises(CompensationFailed, match="failed 1 times"):
        runner.run_all([wrong()])


def test_held_skipped_and_unregistered_cases() -> None:
    store = MemoryStore()
    _request(store, "req_1")
    _request(store, "req_2", status="rejected")
    calls = []
    runner = _runner(store, lambda r: calls.append(r))
    s = span_id()
    conflicting = [
        review(s, label="incorrect", reviewer="a", request_id="req_1"),
        review(s, label="correct", reviewer="b", request_id="req_1"),
    ]
    assert [o.status for o in runner.run_all(conflicting)] == ["held"]
    assert [o.status for o in runner.run_all([wrong("req_2")])] == ["not_executed"]
    llm = wrong("req_1", kind="LLM", reviewer="judge")
    assert runner.run_all([llm]) == []  # machine verdicts never trigger remediation
    other = CompensationRunner(store, Compensations(), clock=lambda: T0)
    assert [o.status for o in other.run_all([wrong()])] == ["no_compensator"]
    assert calls == [] and store.get_execution("compensate:req_1") is None
