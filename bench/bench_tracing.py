"""Per-run cost of tracing a small LangGraph agent: untraced vs stock OpenInference vs ours.

The agent is a fake chat model node plus a ``ToolNode`` (9 spans per run). In ONE process,
for each collector target (a live ``phoenix serve`` started here, then an unreachable
port), the three variants run in interleaved blocks so machine noise hits all of them:

* ``untraced``: no instrumentation;
* ``stock``: ``LangChainInstrumentor`` + the SDK's ``BatchSpanProcessor`` + OTLP/HTTP
  exporter (the documented OpenInference setup, without importing ``phoenix.otel``);
* ``ours``: ``hitl_langgraph.tracing.setup_tracing`` (bounded processor, same exporter).

Both traced variants use the same instrumentor and ``TraceConfig``; only what happens
after ``span.end()`` differs. Process exit with the collector unreachable is measured in
subprocesses (started first, in parallel with Phoenix's startup): the stock setup relies
on the SDK's atexit hook, ours on its own bounded one. ``--phoenix-otel`` adds a third
subprocess using ``phoenix.otel.register(batch=True)``.

Usage::

    python bench/bench_tracing.py [--runs 250] [--block 25] [--json] [--no-live]
        [--no-exit] [--exit-runs 200] [--ingest-wait 60] [--phoenix-otel]

Default runtime is about 1.5 minutes on a busy 2-core box; the stock exit subprocess
alone takes ~25-30 s, overlapped with the rest.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the agent: the tracing tests' graph (fake chat model + ToolNode, 9 spans per run)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _tracing_graph import SPANS_PER_RUN, build_graph, run

WARMUP = 20


def progress(msg: str) -> None:
    print(f"[bench_tracing] {msg}", file=sys.stderr, flush=True)


# --- the stock setup ------------------------------------------------------------------------
def counting_exporter(inner: Any) -> Any:
    """Wrap an exporter to count spans in successful and failed export calls."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def __init__(self) -> None:
            self.exported = 0
            self.failed = 0
            self.in_flight = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.in_flight = len(spans)
            result = inner.export(spans)
            self.in_flight = 0
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
            return result

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return Counting()


def stock_setup(project: str, endpoint: str, *, shutdown_on_exit: bool) -> tuple[Any, Any, Any]:
    from openinference.semconv.resource import ResourceAttributes
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({ResourceAttributes.PROJECT_NAME: project}),
        shutdown_on_exit=shutdown_on_exit,
    )
    counter = counting_exporter(OTLPSpanExporter(endpoint=endpoint))
    bsp = BatchSpanProcessor(counter)
    provider.add_span_processor(bsp)
    return provider, bsp, counter


# --- one target -----------------------------------------------------------------------------
@dataclass
class Cell:
    target: str
    variant: str
    runs: int
    median_us: float
    p95_us: float
    overhead_us: float | None = None
    overhead_pct: float | None = None
    ratio_vs_stock: float | None = None
    overhead_ratio_vs_stock: float | None = None
    spans_produced: int | None = None
    exported: int | None = None
    failed: int | None = None
    dropped: int | None = None
    in_phoenix: int | None = None
    shutdown_s: float | None = None
    notes: list[str] = field(default_factory=list)


class Instrumentation:
    """Switch the (process-wide) LangChain instrumentation between providers."""

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


def measure_target(
    target: str, endpoint: str, runs: int, block: int, server: Any | None, ingest_wait: float
) -> list[Cell]:
    from hitl_langgraph.tracing import setup_tracing

    run_id = uuid.uuid4().hex[:6]
    stock_project, ours_project = f"bench-stock-{run_id}", f"bench-ours-{run_id}"
    stock_tp, stock_bsp, stock_counter = stock_setup(
        stock_project, endpoint, shutdown_on_exit=False
    )
    ours = setup_tracing(ours_project, endpoint, instrument_langchain=False)
    providers: dict[str, Any] = {
        "untraced": None,
        "stock": stock_tp,
        "ours": ours.tracer_provider,
    }
    inst = Instrumentation()
    app = build_graph()
    timings: dict[str, list[float]] = {v: [] for v in providers}
    traced_runs = dict.fromkeys(providers, 0)

    for variant, provider in providers.items():  # warm up every path
        inst.use(provider)
        for _ in range(WARMUP):
            run(app)
        traced_runs[variant] += WARMUP
    gc.collect()
    rounds = max(1, runs // block)
    names = list(providers)
    for r in range(rounds):
        order = names[r % 3 :] + names[: r % 3]
        for variant in order:
            inst.use(providers[variant])
            bucket = timings[variant]
            for _ in range(block):
                t0 = time.perf_counter_ns()
                run(app)
                bucket.append((time.perf_counter_ns() - t0) / 1000.0)
            traced_runs[variant] += block
        if (r + 1) % max(1, rounds // 4) == 0 or r + 1 == rounds:
            progress(f"{target}: round {r + 1}/{rounds}")
    inst.use(None)

    # accounting
    ours_ok = ours.force_flush(5.0)
    t0 = time.monotonic()
    ours.shutdown(timeout=2.0)
    shutdown_s = {"ours": time.monotonic() - t0, "stock": None}
    ours_stats = ours.stats()
    if target == "live":
        stock_bsp.force_flush()  # fast while Phoenix is up (unbounded otherwise)
    produced = {v: traced_runs[v] * SPANS_PER_RUN for v in ("stock", "ours")}
    stock_queued = len(getattr(getattr(stock_bsp, "_batch_processor", None), "_queue", ()))
    in_phoenix: dict[str, int | None] = {"stock": None, "ours": None}
    if server is not None and ingest_wait > 0:
        progress(f"{target}: waiting up to {ingest_wait:.0f} s per project for Phoenix to ingest")
        for variant, project in (("stock", stock_project), ("ours", ours_project)):
            expect = stock_counter.exported if variant == "stock" else ours_stats.exported
            in_phoenix[variant] = len(
                server.wait_for_spans(project, expect, timeout=ingest_wait, interval=1.0)
            )

    base = statistics.median(timings["untraced"])
    cells: list[Cell] = []
    for variant in names:
        data = sorted(timings[variant])
        med = statistics.median(data)
        cell = Cell(
            target=target,
            variant=variant,
            runs=len(data),
            median_us=med,
            p95_us=data[int(0.95 * (len(data) - 1))],
        )
        if variant != "untraced":
            cell.overhead_us = med - base
            cell.overhead_pct = 100.0 * (med - base) / base
            cell.spans_produced = produced[variant]
            cell.in_phoenix = in_phoenix[variant]
        if variant == "stock":
            cell.exported, cell.failed = stock_counter.exported, stock_counter.failed
            cell.dropped = produced["stock"] - stock_counter.exported - stock_counter.failed
            pending = stock_queued + stock_counter.in_flight
            cell.dropped -= pending
            if pending:
                cell.notes.append(f"{pending} still queued or in flight")
        if variant == "ours":
            cell.exported, cell.failed = ours_stats.exported, ours_stats.failed
            cell.dropped = ours_stats.dropped
            if ours_stats.queued + ours_stats.in_flight:
                pending = ours_stats.queued + ours_stats.in_flight
                cell.notes.append(f"{pending} still queued or in flight")
            if not ours_ok:
                cell.notes.append("force_flush(5 s) -> False")
        cells.append(cell)
    stock_cell, ours_cell = cells[1], cells[2]
    ours_cell.ratio_vs_stock = ours_cell.median_us / stock_cell.median_us
    if stock_cell.overhead_us and stock_cell.overhead_us > 0 and ours_cell.overhead_us is not None:
        ours_cell.overhead_ratio_vs_stock = ours_cell.overhead_us / stock_cell.overhead_us
    if target == "live":
        t0 = time.monotonic()
        stock_tp.shutdown()
        stock_cell.shutdown_s = time.monotonic() - t0
    ours_cell.shutdown_s = shutdown_s["ours"]
    # unreachable: the stock provider is abandoned on purpose (its shutdown blocks ~30 s)
    return cells


# --- process exit, in subprocesses ------------------------------------------------------------
@dataclass
class ExitResult:
    variant: str
    runs: int
    exit_seconds: float | None
    total_seconds: float
    returncode: int | None
    lost_reported: str | None
    log_lines: int


def child_main(variant: str, endpoint: str, runs: int) -> None:
    """Subprocess body: set up tracing, run the agent, print a marker, fall off the end."""
    if variant == "stock":
        provider, _, _ = stock_setup("bench-exit-stock", endpoint, shutdown_on_exit=True)
        Instrumentation().use(provider)
    elif variant == "ours":
        from hitl_langgraph.tracing import setup_tracing

        setup_tracing("bench-exit-ours", endpoint)
    elif variant == "phoenix_otel":
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from phoenix.otel import register

        provider = register(
            project_name="bench-exit-phoenix-otel",
            endpoint=endpoint,
            batch=True,
            set_global_tracer_provider=False,
            verbose=False,
        )
        LangChainInstrumentor().instrument(tracer_provider=provider)
    app = build_graph()
    for _ in range(runs):
        run(app)
    print(f"EXIT_AT={time.time():.6f}", flush=True)


def start_exit_child(
    variant: str, endpoint: str, runs: int
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    cmd = [sys.executable, __file__, "--child-exit", variant, endpoint, str(runs)]
    state: dict[str, Any] = {"start": time.time()}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait() -> None:
        out, err = proc.communicate(timeout=120)
        state.update(end=time.time(), out=out, err=err)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    state["thread"] = thread
    return proc, state


def finish_exit_child(
    variant: str, runs: int, proc: subprocess.Popen[str], state: dict[str, Any]
) -> ExitResult:
    state["thread"].join(130)
    out, err = state.get("out", ""), state.get("err", "")
    marker = re.search(r"EXIT_AT=([0-9.]+)", out or "")
    end = state.get("end", time.time())
    lost = re.search(r"(\d+ of \d+ spans were not exported)", err or "")
    return ExitResult(
        variant=variant,
        runs=runs,
        exit_seconds=(end - float(marker.group(1))) if marker else None,
        total_seconds=end - state["start"],
        returncode=proc.returncode,
        lost_reported=lost.group(1) if lost else None,
        log_lines=len((err or "").strip().splitlines()),
    )


# --- output -----------------------------------------------------------------------------------
def _fmt(value: float | int | None, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def print_table(cells: list[Cell], exits: list[ExitResult], args: argparse.Namespace) -> None:
    print(
        f"\nTracing overhead per run: LangGraph agent (fake chat model + ToolNode, "
        f"{SPANS_PER_RUN} spans/run), {args.runs} timed runs per cell in interleaved blocks "
        f"of {args.block}, one process\n"
    )
    head = (
        f"{'target':<12}{'variant':<10}{'median µs':>11}{'p95 µs':>9}{'overhead µs':>13}"
        f"{'overhead %':>12}{'ours/stock':>12}{'ovh ratio':>11}{'spans':>8}{'exported':>10}"
        f"{'failed':>8}{'dropped':>9}{'in Phoenix':>12}{'shutdown s':>12}  notes"
    )
    print(head)
    print("-" * len(head))
    for c in cells:
        print(
            f"{c.target:<12}{c.variant:<10}{_fmt(c.median_us):>11}{_fmt(c.p95_us):>9}"
            f"{_fmt(c.overhead_us):>13}{_fmt(c.overhead_pct, '.0f'):>12}"
            f"{_fmt(c.ratio_vs_stock, '.2f'):>12}{_fmt(c.overhead_ratio_vs_stock, '.2f'):>11}"
            f"{_fmt(c.spans_produced):>8}{_fmt(c.exported):>10}{_fmt(c.failed):>8}"
            f"{_fmt(c.dropped):>9}{_fmt(c.in_phoenix):>12}{_fmt(c.shutdown_s, '.2f'):>12}"
            f"  {'; '.join(c.notes)}"
        )
    print(
        "\nours/stock = median per-run latency ratio; ovh ratio = overhead(ours) / overhead(stock)."
        "\nstock 'dropped' = produced - exported - failed - queued - in flight (the SDK keeps no"
        " count); ours: counts after shutdown(timeout=2).\nshutdown s: stock = provider.shutdown()"
        " (not run when unreachable: it blocks up to 30 s), ours = handle.shutdown(timeout=2)."
    )
    if exits:
        print(
            "\nProcess exit with the collector unreachable "
            "(subprocess: runs the agent, then falls off main)\n"
        )
        head = (
            f"{'variant':<14}{'runs':>6}{'exit s':>9}{'total s':>9}{'rc':>4}  lost spans reported"
        )
        print(head)
        print("-" * (len(head) + 20))
        for e in exits:
            print(
                f"{e.variant:<14}{e.runs:>6}{_fmt(e.exit_seconds, '.2f'):>9}"
                f"{e.total_seconds:>9.2f}{_fmt(e.returncode, 'd'):>4}  "
                f"{e.lost_reported or f'none ({e.log_lines} stderr lines)'}"
            )


# --- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=250, help="timed runs per cell (default 250)")
    parser.add_argument("--block", type=int, default=25, help="runs per interleaved block")
    parser.add_argument("--exit-runs", type=int, default=200, help="runs in each exit subprocess")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--ingest-wait",
        type=float,
        default=0.0,
        help="seconds to wait for Phoenix to show the exported spans (it inserts ~100 spans"
        " per transaction; on a loaded 2-core box that is ~100 spans/s); default 0: skip",
    )
    parser.add_argument("--no-live", action="store_true", help="skip the live-Phoenix target")
    parser.add_argument("--no-exit", action="store_true", help="skip the exit subprocesses")
    parser.add_argument(
        "--phoenix-otel", action="store_true", help="also time exit with phoenix.otel (subprocess)"
    )
    parser.add_argument(
        "--child-exit", nargs=3, metavar=("VARIANT", "ENDPOINT", "RUNS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child_exit:
        child_main(args.child_exit[0], args.child_exit[1], int(args.child_exit[2]))
        return 0
    args.block = max(1, min(args.block, args.runs))
    # the exporters' retry chatter would drown the progress lines (children keep theirs)
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)

    from hitl_langgraph.tracing._server import PhoenixServer, free_port, phoenix_command

    started = time.monotonic()
    dead = f"http://127.0.0.1:{free_port()}/v1/traces"
    children: list[tuple[str, subprocess.Popen[str], dict[str, Any]]] = []
    if not args.no_exit:
        variants = ["stock", "ours"] + (["phoenix_otel"] if args.phoenix_otel else [])
        for variant in variants:
            proc, state = start_exit_child(variant, dead, args.exit_runs)
            children.append((variant, proc, state))
        progress(f"exit subprocesses started: {', '.join(variants)} (dead endpoint {dead})")

    cells: list[Cell] = []
    server: PhoenixServer | None = None
    if not args.no_live:
        if phoenix_command() is None:
            progress("Phoenix server not installed: skipping the live target")
        else:
            server = PhoenixServer()
            progress(f"starting Phoenix on {server.url} (15-30 s) ...")
            server.start()
            progress("Phoenix is healthy")
    try:
        if server is not None:
            cells += measure_target(
                "live", server.otlp_endpoint, args.runs, args.block, server, args.ingest_wait
            )
        cells += measure_target("unreachable", dead, args.runs, args.block, None, 0.0)
    finally:
        if server is not None:
            server.stop()
    from hitl_langgraph.tracing import setup as tracing_setup

    if tracing_setup._active is not None:
        tracing_setup._active[1].shutdown(2.0)

    exits: list[ExitResult] = []
    for variant, proc, state in children:
        progress(f"waiting for the {variant} exit subprocess")
        exits.append(finish_exit_child(variant, args.exit_runs, proc, state))
    elapsed = time.monotonic() - started
    progress(f"done in {elapsed:.0f} s")

    if args.json:
        payload = {
            "spans_per_run": SPANS_PER_RUN,
            "runs": args.runs,
            "block": args.block,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "cells": [asdict(c) for c in cells],
            "exit": [asdict(e) for e in exits],
            "elapsed_seconds": elapsed,
        }
        print(json.dumps(payload, indent=2))
    else:
        print_table(cells, exits, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
