"""Tracing against a real ``phoenix serve`` (started once per session by the fixture)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from _tracing_graph import SPANS_PER_RUN, build_graph, make_event, run
from openinference.instrumentation import suppress_tracing

from hitl_langgraph.tracing import GateSpanRecorder, TracingHandle, attributes
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix


def _by_name(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        out.setdefault(span["name"], []).append(span)
    return out


def test_graph_spans_arrive_under_the_project(
    tracing: TracingHandle, phoenix_server: PhoenixServer, phoenix_project: str
) -> None:
    app = build_graph()
    run(app)
    run(app)
    assert tracing.force_flush(5.0)
    spans = phoenix_server.wait_for_spans(phoenix_project, 2 * SPANS_PER_RUN)
    assert len(spans) == 2 * SPANS_PER_RUN
    names = _by_name(spans)
    assert len(names["LangGraph"]) == 2 and all(s["parent_id"] is None for s in names["LangGraph"])
    assert {s["span_kind"] for s in names["GenericFakeChatModel"]} == {"LLM"}
    assert {s["span_kind"] for s in names["lookup"]} == {"TOOL"}
    assert tracing.stats().exported == 2 * SPANS_PER_RUN
    assert phoenix_server.spans("default") == [] or all(
        s["name"] != "lookup" for s in phoenix_server.spans("default")
    )  # nothing leaked into the default project


def test_gate_spans_arrive_as_guardrails_nested_in_the_run(
    tracing: TracingHandle, phoenix_server: PhoenixServer, phoenix_project: str
) -> None:
    recorder = GateSpanRecorder(tracing)
    run(build_graph(on_tool=recorder))
    paused = {
        "paused_trace_id": "0af7651916cd43dd8448eb211c80319c",
        "paused_span_id": "b7ad6b7169203331",
    }
    recorder(make_event("decided", extra=paused))
    assert tracing.force_flush(5.0)
    spans = phoenix_server.wait_for_spans(phoenix_project, SPANS_PER_RUN + 2)
    names = _by_name(spans)
    (executed,) = names["gate lookup → approve (executed)"]
    (decided,) = names["gate lookup → approve (decided)"]
    assert executed["span_kind"] == decided["span_kind"] == "GUARDRAIL"
    (lookup,) = names["lookup"]
    assert executed["parent_id"] == lookup["context"]["span_id"]
    assert executed["context"]["trace_id"] == lookup["context"]["trace_id"]
    a = decided["attributes"]
    assert a[attributes.HITL_ROUTE] == "approve"
    assert a[attributes.HITL_RISK_SCORE] == pytest.approx(0.72)
    assert a[attributes.HITL_RISK_REASONS] == ["tool lookup is sensitive", "amount > 100"]
    assert a[attributes.HITL_REVIEWER_ROLES] == ["ops", "lead"]
    assert a[attributes.HITL_DECISION] == "approve" and a[attributes.HITL_REVIEWER_ID] == "alice"
    assert a[attributes.HITL_POLICY_VERSION] == "policy-v7"
    assert a[attributes.HITL_PAUSED_SPAN_ID] == "b7ad6b7169203331"
    assert a[attributes.SESSION_ID] == "thread-9" and a[attributes.USER_ID] == "user-3"
    assert decided["parent_id"] is None  # emitted outside any run


def test_suppressed_spans_never_reach_phoenix(
    tracing: TracingHandle, phoenix_server: PhoenixServer, phoenix_project: str
) -> None:
    recorder = GateSpanRecorder(tracing)
    with suppress_tracing():
        run(build_graph(on_tool=recorder))
        recorder(make_event("requested"))
    recorder(make_event("denied"))  # the marker: once it is in, anything earlier would be
    assert tracing.force_flush(5.0)
    spans = phoenix_server.wait_for_spans(phoenix_project, 1)
    assert [s["name"] for s in spans] == ["gate lookup → approve (denied)"]
    assert tracing.stats().received == 1


def test_shutdown_is_bounded_with_a_hung_collector(
    tracing: TracingHandle, phoenix_server: PhoenixServer
) -> None:
    """Phoenix frozen (accepts connections, never answers): exports hang, shutdown does not."""
    tracer = tracing.tracer("hung")
    phoenix_server.pause()
    try:
        for i in range(20):
            tracer.start_span(f"hung-{i}").end()
        start = time.monotonic()
        tracing.shutdown(timeout=1.0)
        elapsed = time.monotonic() - start
    finally:
        phoenix_server.resume()
    # bounded by the 1 s timeout (a hung export would block forever); 2.5 s is 2.5x slack
    assert elapsed < 2.5, f"shutdown took {elapsed:.2f} s with Phoenix frozen"
    s = tracing.stats()
    assert s.received == 20 and s.exported == 0 and s.lost + s.spooled == 20
    assert s.spooled > 0  # on disk until Phoenix answers; only an abandoned in-flight batch is lost


def test_outage_is_counted_and_export_resumes_after_restart(
    tracing: TracingHandle, phoenix_server: PhoenixServer, phoenix_project: str
) -> None:
    tracer = tracing.tracer("outage")
    tracer.start_span("before").end()
    assert tracing.force_flush(5.0)
    phoenix_server.stop()
    try:
        for i in range(50):
            tracer.start_span(f"during-{i}").end()
        assert not tracing.force_flush(3.0)  # bounded, and honest about it
        during = tracing.stats()
        assert during.spooled > 0 and during.export_failures > 0 and during.lost == 0
    finally:
        phoenix_server.start()
    tracer.start_span("after").end()
    assert tracing.force_flush(10.0)
    s = tracing.stats()
    assert s.received == 52 and s.queued == 0 and s.in_flight == 0
    assert s.received == s.exported + s.failed + s.dropped + s.spooled and s.lost == 0
    # the spooled outage spans are re-sent by the export thread once Phoenix answers
    spans = phoenix_server.wait_for_spans(phoenix_project, 52)
    names = {sp["name"] for sp in spans}
    assert {"before", "after"} <= names and {f"during-{i}" for i in range(50)} <= names
    assert tracing.spool_stats().resent == s.spooled and tracing.spool_stats().files == 0
    assert len(spans) == 52  # exactly once each
