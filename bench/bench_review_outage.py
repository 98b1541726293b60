"""Zero lost HITL decision records: N gated runs with Phoenix up, N with it down, then up.

A banking agent whose ``transfer_funds(6000)`` the policy routes ``review`` runs with
``setup_tracing`` + ``GateSpanRecorder`` + ``ReviewSampler`` (every review-routed run
sampled) against a ``phoenix serve`` started here, with an SQLite store:

1. ``--runs`` runs with Phoenix up; then Phoenix is stopped;
2. ``--runs`` runs with Phoenix down; a reviewer submits a verdict for every phase-1
   item meanwhile (stored and spooled, Phoenix unreachable);
3. Phoenix is started again and the outbox is synced (``hitl sync``).

It reports, per kind of record, how many were made, are in the store, reached Phoenix
(each checked there, exactly one row per annotation key), still wait (their span never
reached Phoenix: the trace was lost in the outage, which tracing counts) and were lost,
plus the agent's run latency with Phoenix up and down.

Usage::

    python bench/bench_review_outage.py [--runs 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _tracing_graph import build_bank_agent  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402

from hitl_langgraph.review import (  # noqa: E402
    REVIEW_REQUEST_NAME,
    VERDICT_NAME,
    PhoenixClient,
    ReviewQueue,
    ReviewSampler,
    ReviewSampling,
    constant_rate,
)
from hitl_langgraph.store import open_store  # noqa: E402
from hitl_langgraph.tracing import setup_tracing  # noqa: E402
from hitl_langgraph.tracing._server import PhoenixServer  # noqa: E402


def runs(app: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        res = app.invoke(
            {"messages": [HumanMessage("send bob 6000")]},
            {"configurable": {"thread_id": uuid.uuid4().hex}},
        )
        out.append(time.perf_counter() - t)
        assert res["messages"][-1].content == "done"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per phase (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    for noisy in ("opentelemetry", "hitl_langgraph.tracing"):  # the table reports span loss
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    project = f"bench-review-{uuid.uuid4().hex[:6]}"
    server = PhoenixServer(workdir=tmp / "phoenix").start()
    store = open_store(f"sqlite:///{tmp / 'hitl.db'}")
    client = PhoenixClient(server.url, timeout=2.0)
    tracing = setup_tracing(project, server.url, batch=False)
    sampler = ReviewSampler(
        store,
        project=project,
        client=client,
        sampling=ReviewSampling(curve=constant_rate(1.0)),
        sync_interval=0.5,
    )
    queue = ReviewQueue(client, project=project, store=store, mirror_on_submit=False)
    app, ledger = build_bank_agent(store, tracing, sampler)
    try:
        up = runs(app, args.runs)
        tracing.force_flush(5.0)
        server.stop()
        down = runs(app, args.runs)
        phase1 = store.list_review_samples(project, limit=args.runs)
        for s in phase1:
            queue.submit(s.span_id or "", "correct", reviewer="bench")
        server.start()
        report = queue.sync(force=True)
        for _ in range(5):  # entries whose spans are not (yet) in Phoenix stay pending
            if not report.pending or not report.mirrored:
                break
            report = queue.sync(force=True)
        stats = tracing.stats()
    finally:
        sampler.close()
        tracing.shutdown(2.0)

    samples = store.list_review_samples(project, reviewed=None, limit=10 * args.runs)
    entries = store.list_outbox(status=None, project=project, limit=10 * args.runs)
    span_ids = sorted({e.span_id for e in entries})
    in_phoenix = {r["context"]["span_id"] for r in client.spans(project, span_ids=span_ids)}
    rows = client.span_annotations(project, span_ids, names=[REVIEW_REQUEST_NAME, VERDICT_NAME])
    keys: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r["name"], r["span_id"], r["identifier"])
        keys[key] = keys.get(key, 0) + 1
    server.stop()

    def line(kind: str, made: int, name: str | None) -> dict[str, Any]:
        mine = [e for e in entries if e.name == name] if name else []
        mirrored = [e for e in mine if e.status == "mirrored"]
        assert all(keys.get((e.name, e.span_id, e.identifier)) == 1 for e in mirrored)
        stored = len(samples) if name is None else len(mine)
        return {
            "record": kind,
            "made": made,
            "in_store": stored,
            "in_phoenix": len(mirrored) if name else None,
            "waiting": sum(e.status == "pending" for e in mine) if name else None,
            "waiting_span_missing": sum(
                e.status == "pending" and e.span_id not in in_phoenix for e in mine
            )
            if name
            else None,
            "lost": made - stored,
        }

    n_runs = len(up) + len(down)
    table = [
        line("sampling decisions", n_runs, None),
        line("review requests", n_runs, REVIEW_REQUEST_NAME),
        line("human verdicts", len(phase1), VERDICT_NAME),
    ]
    result = {
        "runs": n_runs,
        "tool_executions": ledger.count("transfer_funds"),
        "latency_ms": {
            "phoenix_up_median": round(statistics.median(up) * 1000, 1),
            "phoenix_down_median": round(statistics.median(down) * 1000, 1),
            "phoenix_down_max": round(max(down) * 1000, 1),
        },
        "spans": {"received": stats.received, "exported": stats.exported, "lost": stats.lost},
        "records": table,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{n_runs} runs ({len(up)} with Phoenix up, {len(down)} down), "
          f"{result['tool_executions']} tool executions")  # fmt: skip
    lat = result["latency_ms"]
    print(
        f"run latency: median {lat['phoenix_up_median']} ms up, "
        f"{lat['phoenix_down_median']} ms down (max {lat['phoenix_down_max']} ms)"
    )
    print(f"spans: {stats.received} made, {stats.exported} exported, {stats.lost} lost in outage")
    head = ["record", "made", "in store", "in Phoenix", "waiting (span lost)", "lost"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in table:
        waiting = "-" if r["waiting"] is None else f"{r['waiting']} ({r['waiting_span_missing']})"
        cells = [r["record"], r["made"], r["in_store"], r["in_phoenix"] or "-", waiting, r["lost"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
