"""Tracing setup's failure paths: a setup that fails leaves the app untraced, never broken.

* a missing exporter package gives a disabled handle whose error says what to install;
* a tracer provider that refuses our processor: the processor is closed, handle disabled;
* your own provider without our processor: ``force_flush`` is still bounded;
* ``PHOENIX_API_KEY`` reaches the collector as a bearer token (a real HTTP receiver).
"""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.tracing import setup as tracing_setup
from hitl_langgraph.tracing import setup_tracing


@pytest.fixture(autouse=True)
def _no_leftover_tracing() -> Iterator[None]:
    yield
    active = tracing_setup._active
    if active is not None:
        active[1].shutdown(1.0)


def test_a_missing_exporter_package_disables_tracing_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes the import raise ImportError, as if not installed
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    handle = setup_tracing("p", "http://127.0.0.1:9/", instrument_langchain=False)
    assert not handle.enabled and handle.error is not None
    assert "opentelemetry-exporter-otlp-proto-http" in handle.error
    assert "hitl-langgraph[tracing]" in handle.error
    assert "disabled" in repr(handle)
    handle.tracer("t").start_span("nothing").end()  # a no-op, never raises
    assert handle.force_flush(0.1) and handle.shutdown(0.1)


def test_a_missing_instrumentation_package_disables_tracing_with_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "openinference.instrumentation.langchain", None)
    handle = setup_tracing("p", "http://127.0.0.1:9/")
    assert not handle.enabled and "openinference-instrumentation-langchain" in (handle.error or "")


class RefusingProvider(TracerProvider):
    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        self.refused = span_processor
        raise RuntimeError("this provider takes no processors")


def test_a_provider_that_refuses_the_processor_closes_it_and_disables_tracing() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = RefusingProvider()
    handle = setup_tracing(
        "p", tracer_provider=provider, span_exporter=InMemorySpanExporter(),
        instrument_langchain=False,
    )  # fmt: skip
    assert not handle.enabled
    assert handle.error == "RuntimeError: this provider takes no processors"
    refused: Any = provider.refused
    refused.on_end(_span())  # the closed processor drops, it does not queue forever
    assert refused.stats().dropped == 1 and refused.stats().queued == 0


def _span() -> ReadableSpan:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("s")
    span.end()
    assert isinstance(span, ReadableSpan)
    return span


class BlockingFlush(SpanProcessor):
    """A processor of your own whose flush hangs until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.release.wait(60)


def test_force_flush_with_your_own_provider_is_bounded() -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    handle = setup_tracing("p", tracer_provider=provider, instrument_langchain=False)
    assert handle.enabled and handle.stats().received == 0  # no processor of ours
    assert handle.force_flush(1.0)
    blocking = BlockingFlush()
    provider.add_span_processor(blocking)
    assert not handle.force_flush(0.2)  # gives up at its timeout, reports it
    blocking.release.set()
    assert handle.force_flush(5.0)
    assert handle.gate_recorder() is not None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_queue_size must be an int"):
        setup_tracing("p", max_queue_size="10")  # type: ignore[arg-type]


class _Collector(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).seen.append(self.headers.get("authorization"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_phoenix_api_key_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Collector.seen = []
    try:
        monkeypatch.setenv("PHOENIX_API_KEY", "k-123")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        handle = setup_tracing("p", url, instrument_langchain=False, batch=False)
        handle.tracer("t").start_span("s").end()
        assert handle.force_flush(10.0) and handle.stats().exported == 1
        assert _Collector.seen == ["Bearer k-123"]
        handle.shutdown(1.0)
    finally:
        server.shutdown()
        server.server_close()
