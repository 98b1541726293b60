"""Spans the collector did not take go to a bounded on-disk spool and are re-sent later."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures_graph import Ledger, build_bank_app, thread
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.tracing.spool import SpanSpool


def _spans(n: int) -> list[ReadableSpan]:
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mem))
    tracer = provider.get_tracer("t")
    for i in range(n):
        tracer.start_span(f"s{i}", attributes={"pad": "x" * 200}).end()
    return list(mem.get_finished_spans())


def test_spool_is_bounded_oldest_first_and_counts_what_it_drops(tmp_path: Path) -> None:
    one = len(SpanSpool(tmp_path / "probe").directory.name)  # directory is created
    assert one
    spool = SpanSpool(tmp_path / "s", max_bytes=3000)
    for _ in range(6):
        assert spool.write(_spans(5))
    st = spool.stats()
    assert st.bytes <= 3000 and st.spooled == 30
    assert st.dropped == 30 - st.spans and st.dropped > 0
    assert not list((tmp_path / "s").glob(".*.tmp"))  # no half-written file left
    with pytest.raises(ConfigurationError):
        SpanSpool(tmp_path / "x", max_bytes=0)


def test_resend_deletes_what_was_accepted_and_stops_at_an_outage(tmp_path: Path) -> None:
    bodies: list[bytes] = []
    answers = iter([True, None])
    spool = SpanSpool(tmp_path, poster=lambda b: bodies.append(b) or next(answers))
    for n in (1, 2, 3):
        spool.write(_spans(n))
    assert spool.resend() is None  # the second post hit an outage: stop, keep the rest
    st = spool.stats()
    assert (st.files, st.spans, st.resent) == (2, 5, 1)
    refused = SpanSpool(tmp_path, poster=lambda b: False)  # 400: malformed, never retried
    assert refused.resend() is True and refused.stats().dropped == 5
    assert not spool.has_files()
    assert SpanSpool(tmp_path).resend() is None  # no poster: nothing is sent


@pytest.mark.phoenix
def test_spans_written_while_phoenix_is_down_arrive_later_with_their_review_requests(
    phoenix_server: object, phoenix_project: str, tmp_path: Path
) -> None:
    from hitl_langgraph import open_store
    from hitl_langgraph.review import PhoenixClient, ReviewSampler, ReviewSampling, constant_rate
    from hitl_langgraph.tracing import setup_tracing
    from hitl_langgraph.tracing._server import PhoenixServer

    assert isinstance(phoenix_server, PhoenixServer)
    store = open_store(f"sqlite:///{tmp_path / 'hitl.db'}")
    client = PhoenixClient(phoenix_server.url, timeout=3.0)
    sampler = ReviewSampler(
        store, project=phoenix_project, client=client, background=False,
        sampling=ReviewSampling(curve=constant_rate(1.0)),
    )  # fmt: skip
    handle = setup_tracing(
        phoenix_project, phoenix_server.url, batch=False, observers=[sampler],
        spool_dir=tmp_path / "spool", export_timeout=1.0,
    )  # fmt: skip
    call = {"name": "transfer_funds", "args": {"amount": 6000, "to": "bob"}, "id": "c1"}
    try:
        phoenix_server.stop()
        try:
            for _ in range(2):
                app = build_bank_app(
                    store, InMemorySaver(), AIMessage("", tool_calls=[call]), Ledger()
                )
                app.invoke({"messages": [HumanMessage("send bob 6000")]}, thread())
            handle.force_flush(3.0)
            deadline = time.monotonic() + 10
            while handle.stats().queued and time.monotonic() < deadline:
                time.sleep(0.1)
            assert handle.stats().lost == 0 and handle.stats().spooled > 0
            assert sampler.sync(force=True).unavailable  # the review requests wait too
        finally:
            phoenix_server.start()
        assert handle.resend_spool(10.0)  # (it also happens by itself on the next export)
        st = handle.spool_stats()
        assert st.files == 0 and st.resent == handle.stats().spooled
        samples = store.list_review_samples(phoenix_project)
        assert len(samples) == 2
        spans = phoenix_server.wait_for_spans(phoenix_project, st.resent)
        assert {s.span_id for s in samples} <= {sp["context"]["span_id"] for sp in spans}
        assert sampler.flush(10.0)  # the review requests attach late rather than never
        for s in samples:
            (req,) = client.span_annotations(phoenix_project, [s.span_id or ""])
            assert req["result"]["label"] == "pending"
    finally:
        handle.shutdown(2.0)
        client.close()
        store.close()
