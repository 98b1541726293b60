"""Tracing: per-run cost and shutdown time, ours against no tracing and stock OpenInference.

The agent is the tracing tests' graph (fake chat model + ToolNode, 9 spans per run). For
each collector target - a live ``phoenix serve`` started here (free port, temp dir) and
an unreachable port - four variants run in interleaved blocks, each repeat with fresh
providers:

* untraced;
* stock: ``LangChainInstrumentor`` + the SDK's ``BatchSpanProcessor`` + OTLP/HTTP
  exporter with ``timeout`` EQUAL to ours (2 s);
* stock, default timeout: the same with the exporter's default (10 s), as people run it;
* ours: ``setup_tracing(export_timeout=2)`` (bounded processor, same exporter class).

Same instrumentor and ``TraceConfig`` for all traced variants (only the provider is
switched between blocks). After the runs each provider is shut down (what process exit
does: the SDK's atexit hook, ours its bounded one) and the time is taken; the stock
shutdowns run in background threads, overlapping the next repeat.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .core import Context
from .phoenix import shared_server

NAME = "tracing"
PARTS = 2
TIMEOUT = 2.0


def _graph() -> tuple[Any, Any]:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from _tracing_graph import build_graph, run

    return build_graph, run


def stock_provider(project: str, endpoint: str, timeout: float | None) -> Any:
    from openinference.semconv.resource import ResourceAttributes
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({ResourceAttributes.PROJECT_NAME: project}),
        shutdown_on_exit=False,
    )
    kw = {} if timeout is None else {"timeout": timeout}
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, **kw)))
    return provider


class Instrumentation:
    def __init__(self) -> None:
        from openinference.instrumentation import TraceConfig
        from openinference.instrumentation.langchain import LangChainInstrumentor

        self._inst = LangChainInstrumentor()
        self._config = TraceConfig()

    def use(self, provider: Any | None) -> None:
        if self._inst.is_instrumented_by_opentelemetry:
            self._inst.uninstrument()
        if provider is not None:
            self._inst.instrument(
                tracer_provider=provider, config=self._config, skip_dep_check=True
            )


def run(ctx: Context) -> None:
    try:
        from hitl_langgraph.tracing import setup_tracing
        from hitl_langgraph.tracing._server import free_port
    except ImportError as exc:
        ctx.skip(NAME, f"tracing extra not installed: {exc}")
        return
    build_graph, run_graph = _graph()
    app = build_graph()
    inst = Instrumentation()
    block, rounds = (10, 3) if ctx.quick else (10, 6)
    targets: list[tuple[str, str, Any]] = []
    ctx.log("tracing: starting phoenix serve (15-60 s) ...")
    server = shared_server()
    if server is None:
        ctx.skip(f"{NAME}/live", "phoenix is not installed (pip install 'hitl-langgraph[phoenix]')")
    else:
        targets.append(("Phoenix live", server.otlp_endpoint, server))
    targets.append(("Phoenix unreachable", f"http://127.0.0.1:{free_port()}/v1/traces", None))
    background: list[threading.Thread] = []
    try:
        for target, endpoint, _srv in targets:
            for _rep in ctx.repeats(f"{NAME}/{target}"):
                tag = uuid.uuid4().hex[:6]
                ours = setup_tracing(
                    f"bench-ours-{tag}",
                    endpoint,
                    instrument_langchain=False,
                    export_timeout=TIMEOUT,
                )
                providers: dict[str, Any] = {
                    "untraced": None,
                    "stock": stock_provider(f"bench-stock-{tag}", endpoint, TIMEOUT),
                    "stock default": stock_provider(f"bench-stockd-{tag}", endpoint, None),
                    "ours": ours.tracer_provider,
                }
                times: dict[str, list[float]] = {v: [] for v in providers}
                names = list(providers)
                for v in names:  # warm-up
                    inst.use(providers[v])
                    for _ in range(3):
                        run_graph(app)
                for r in range(rounds):
                    for v in names[r % 4 :] + names[: r % 4]:
                        inst.use(providers[v])
                        for _ in range(block):
                            t0 = time.perf_counter()
                            run_graph(app)
                            times[v].append(time.perf_counter() - t0)
                inst.use(None)
                med = {v: statistics.median(ts) * 1000 for v, ts in times.items()}
                how = (
                    f"same graph, instrumentor and TraceConfig; {block * rounds} runs per "
                    f"variant in interleaved blocks of {block}"
                )
                ctx.record(
                    NAME,
                    f"{target}: per run, vs untraced",
                    ours=med["ours"],
                    base=med["untraced"],
                    ours_label="setup_tracing",
                    base_label="no tracing",
                    how=how,
                )
                ctx.record(
                    NAME,
                    f"{target}: per run, vs stock (equal {TIMEOUT:g} s timeout)",
                    ours=med["ours"],
                    base=med["stock"],
                    ours_label="setup_tracing",
                    base_label=f"stock OpenInference + BatchSpanProcessor (timeout {TIMEOUT:g} s)",
                    how=how,
                )
                ctx.record(
                    NAME,
                    f"{target}: stock per run, vs untraced",
                    ours=med["stock"],
                    base=med["untraced"],
                    ours_label="stock OpenInference (for reference)",
                    base_label="no tracing",
                    how=how,
                )
                # shutdown = what exit waits for
                t0 = time.perf_counter()
                ours.shutdown(TIMEOUT)
                ours_s = time.perf_counter() - t0
                results: dict[str, float] = {}

                def close(v: str, p: Any, results: dict[str, float] = results) -> None:
                    t1 = time.perf_counter()
                    p.shutdown()
                    results[v] = time.perf_counter() - t1

                threads = [
                    threading.Thread(target=close, args=(v, providers[v]), daemon=True)
                    for v in ("stock", "stock default")
                ]
                for th in threads:
                    th.start()
                background.extend(threads)
                ctx.pending_shutdowns = getattr(ctx, "pending_shutdowns", [])
                ctx.pending_shutdowns.append((target, ours_s, results, threads))
        for th in background:
            th.join(120)
        for target, ours_s, results, _threads in getattr(ctx, "pending_shutdowns", []):
            for v, label in (
                ("stock", f"equal {TIMEOUT:g} s timeout"),
                ("stock default", "its default 10 s timeout"),
            ):
                if v not in results:
                    continue
                ctx.record(
                    NAME,
                    f"{target}: shutdown / exit, vs stock ({label})",
                    ours=ours_s * 1000,
                    base=results[v] * 1000,
                    unit="ms",
                    ours_label=f"handle.shutdown({TIMEOUT:g}) (ours' atexit hook)",
                    base_label=f"TracerProvider.shutdown() (the SDK's atexit hook), {label}",
                    how="the same runs queued on each; shut down right after the last run",
                )
    finally:
        inst.use(None)
