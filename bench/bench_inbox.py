"""Inbox benchmarks (issue 3): finding pending approvals, and the decision + resume cycle.

1. ``Inbox.pending()`` - first page (50 rows) with P pending requests among T threads
   (default 10,000 among 100,000; ``--quick``: 1,000 among 10,000), on a SQLite and a
   PostgreSQL store. The store holds one request row per thread (the rest decided),
   written with ``store.put_request`` (on Postgres the table is then ANALYZEd, as
   autovacuum would; the filtered query is also timed before that). Printed beside the
   public-API scans it replaces,
   measured in the same run on a real checkpointer populated by a one-node interrupting
   graph: M1 ``app.get_state(cfg).interrupts`` for every thread id, and M3 one
   ``saver.list(None)`` pass over every checkpoint. Both are O(threads), so they are
   measured on ``--scan-threads`` threads (default 2,000, half of them interrupted) and
   extrapolated linearly to T; the table says which figures are extrapolated.
2. Decision + resume: ``Inbox.approve`` (authority check, interrupt check, compare-and-set,
   resume claim, ``graph.invoke(Command(resume=...))``) vs a raw
   ``graph.invoke(Command(resume=...))`` on the same gated graph and checkpointer,
   interleaved (each round times one of each, alternating order). Target ratio <= 1.15.

    python bench/bench_inbox.py                 # sqlite + postgres (if reachable)
    python bench/bench_inbox.py --quick --json
    python bench/bench_inbox.py --backends sqlite --rounds 300

Tables go to stdout, progress to stderr. Nothing is written outside a temporary
directory and a temporary Postgres schema (dropped at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command, interrupt

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.store import ApprovalRecord, ApprovalStore

PG_URL = os.environ.get("HITL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "median_ms": round(statistics.median(s) * 1000, 3),
        "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))] * 1000, 3),
    }


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# -- backends ----------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    store_url: str
    saver: Any


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


@contextmanager
def backend(name: str, tmp: Path, tag: str) -> Iterator[Backend | None]:
    if name == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(tmp / f"cp-{tag}.db", check_same_thread=False)
        try:
            yield Backend(name, f"sqlite:///{tmp / f'hitl-{tag}.db'}", SqliteSaver(conn))
        finally:
            conn.close()
        return
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver

        schema = f"hitl_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        log(f"postgres skipped: {exc}")
        yield None
        return
    url = _with_search_path(PG_URL, schema)
    try:
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield Backend(name, url, saver)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- 1. pending() at scale ---------------------------------------------------------------


def _rows(threads: int, pending: int) -> Iterator[ApprovalRecord]:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    every = max(1, threads // pending)
    tools = ["transfer_funds", "close_account", "refund", "update_limits"]
    for i in range(threads):
        is_pending = i % every == 0 and i // every < pending
        yield ApprovalRecord(
            request_id=f"req_{i:024x}",
            thread_id=f"t-{i:08d}",
            node="tools",
            tool=tools[i % len(tools)],
            args={"amount": 100 + i % 9000, "to": f"acct-{i % 977}"},
            digest=f"sha256:{i:064x}",
            score=0.86 + (i % 14) / 100,
            route="approve",
            reasons=["bench"],
            status="pending" if is_pending else "approved",
            created_at=t0 + timedelta(seconds=i),
            updated_at=t0 + timedelta(seconds=i),
            approver_roles=["finance"] if i % 3 else ["ops"],
            allowed_decisions=["approve", "reject"],
            policy_version="bench",
            requester=f"user-{i % 50}",
        )


def populate_store(store: ApprovalStore, threads: int, pending: int, workers: int) -> float:
    t0 = time.perf_counter()
    done = 0

    def put(rec: ApprovalRecord) -> None:
        store.put_request(rec)

    rows = _rows(threads, pending)
    if workers <= 1:
        for rec in rows:
            put(rec)
            done += 1
            if done % 20_000 == 0:
                log(f"    {done}/{threads} rows")
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(put, rows, chunksize=256):
                done += 1
                if done % 20_000 == 0:
                    log(f"    {done}/{threads} rows")
    return time.perf_counter() - t0


class _S(TypedDict):
    x: int


def interrupting_graph(saver: Any) -> Any:
    def ask(state: _S) -> dict[str, int]:
        answer = interrupt({"question": "ok?", "x": state["x"]})
        return {"x": state["x"] + (1 if answer == "yes" else 0)}

    g = StateGraph(_S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=saver)


def public_scans(saver: Any, n: int, reps: int) -> dict[str, Any]:
    """Populate ``n`` threads (half left interrupted) and time the public-API scans."""
    app = interrupting_graph(saver)
    tids = [f"scan-{uuid.uuid4().hex[:10]}" for _ in range(n)]
    t0 = time.perf_counter()
    for i, tid in enumerate(tids):
        cfg = {"configurable": {"thread_id": tid}}
        app.invoke({"x": i}, cfg)
        if i % 2:
            app.invoke(Command(resume="yes"), cfg)
        if (i + 1) % max(1, n // 5) == 0:
            log(f"    scan population {i + 1}/{n}")
    populate_s = time.perf_counter() - t0

    def m1() -> int:
        return sum(
            1 for tid in tids if app.get_state({"configurable": {"thread_id": tid}}).interrupts
        )

    def m3() -> int:
        newest: dict[str, Any] = {}
        for tup in saver.list(None):
            tid = tup.config["configurable"]["thread_id"]
            if tid not in newest:  # list() yields newest first per thread
                newest[tid] = tup
        return sum(
            1
            for tup in newest.values()
            if any(w[1] == "__interrupt__" for w in (tup.pending_writes or ()))
        )

    found1, found3 = m1(), m3()
    assert found1 == n // 2 + n % 2, (found1, n)
    assert found3 >= found1, (found3, found1)
    t1 = timed(m1, reps)
    t3 = timed(m3, reps)
    return {
        "threads": n,
        "pending": found1,
        "populate_s": round(populate_s, 1),
        "m1_get_state": stats(t1),
        "m3_list_all": stats(t3),
    }


def bench_pending(
    b: Backend, threads: int, pending: int, scan_threads: int, reps: int
) -> dict[str, Any]:
    store = open_store(b.store_url)
    log(f"  {b.name}: writing {threads} request rows ({pending} pending) via put_request")
    pop_s = populate_store(store, threads, pending, workers=1 if b.name == "sqlite" else 4)
    inbox = Inbox(store)
    assert inbox.count() == pending, inbox.count()
    before: dict[str, Any] = {}
    if b.name == "postgres":
        # a freshly written table has no planner statistics until autovacuum analyzes it;
        # measure that state too, then ANALYZE as autovacuum would
        before = stats(timed(lambda: inbox.pending(tool="transfer_*", min_risk=0.95), 10))
        import psycopg

        with psycopg.connect(b.store_url, autocommit=True) as conn:
            conn.execute("ANALYZE hitl_requests")
    first = inbox.pending()
    assert len(first) == 50
    cursor = first.next_cursor
    for _ in range(99):  # page 100 (rows 4951-5000)
        cursor = inbox.pending(cursor=cursor).next_cursor
    out: dict[str, Any] = {
        "backend": b.name,
        "threads": threads,
        "pending": pending,
        "populate_s": round(pop_s, 1),
        "first_page": stats(timed(lambda: inbox.pending(), reps)),
        "filtered": stats(timed(lambda: inbox.pending(tool="transfer_*", min_risk=0.95), reps)),
        "role": stats(timed(lambda: inbox.pending(role="finance"), reps)),
        "page_100": stats(timed(lambda: inbox.pending(cursor=cursor), reps)),
        "count": stats(timed(lambda: inbox.count(), max(3, reps // 5))),
        "filtered_before_analyze": before or None,
    }
    store.close()
    log(f"  {b.name}: public-API scans over {scan_threads} threads")
    scans = public_scans(b.saver, scan_threads, max(3, reps // 10))
    scale = threads / scans["threads"]
    out["scan"] = scans
    out["m1_extrapolated_ms"] = round(scans["m1_get_state"]["median_ms"] * scale, 1)
    out["m3_extrapolated_ms"] = round(scans["m3_list_all"]["median_ms"] * scale, 1)
    return out


# -- 2. decision + resume cycle -------------------------------------------------------


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money."""
    return f"sent {amount} to {to}"


CALL = AIMessage(
    "", tool_calls=[{"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c1"}]
)


def _agent(state: MessagesState) -> dict[str, Any]:
    if isinstance(state["messages"][-1], ToolMessage):
        return {"messages": [AIMessage("done")]}
    return {"messages": [CALL]}


def gated_graph(store: ApprovalStore, saver: Any) -> Any:
    policy = RiskPolicy(
        rules=[
            Rule(
                tool="transfer_funds",
                score=lambda a: min(a["amount"] / 10_000, 1.0),
                approver_roles=frozenset({"finance"}),
            )
        ]
    )
    g = StateGraph(MessagesState)
    g.add_node("agent", _agent)
    g.add_node("tools", GatedToolNode([transfer_funds], policy=policy, store=store))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=saver)


def bench_cycle(b: Backend, rounds: int, warmup: int) -> dict[str, Any]:
    store = open_store(b.store_url)
    app = gated_graph(store, b.saver)
    inbox = Inbox(store, app)
    reviewer = Reviewer("alice", {"finance"})

    def pause() -> tuple[dict[str, Any], Any]:
        cfg = {"configurable": {"thread_id": uuid.uuid4().hex, "user_id": "carol"}}
        out = app.invoke({"messages": [("user", "pay")]}, cfg)
        return cfg, out["__interrupt__"][0]

    def raw(cfg: dict[str, Any], intr: Any) -> Any:
        return app.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}]}}), cfg)

    def via_inbox(cfg: dict[str, Any], intr: Any) -> Any:
        res = inbox.approve(intr.value["action_requests"][0]["request_id"], reviewer=reviewer)
        assert res.resumed
        return res.output

    t_raw: list[float] = []
    t_inbox: list[float] = []
    for i in range(warmup + rounds):
        pair = [(raw, t_raw), (via_inbox, t_inbox)]
        if i % 2:
            pair.reverse()
        for fn, bucket in pair:
            cfg, intr = pause()
            t0 = time.perf_counter()
            out = fn(cfg, intr)
            dt = time.perf_counter() - t0
            assert out["messages"][-1].content == "done"
            if i >= warmup:
                bucket.append(dt)
        if (i + 1) % max(1, (warmup + rounds) // 5) == 0:
            log(f"  {b.name}: cycle round {i + 1}/{warmup + rounds}")
    store.close()
    r, n = stats(t_raw), stats(t_inbox)
    return {
        "backend": b.name,
        "rounds": rounds,
        "raw": r,
        "inbox": n,
        "ratio": round(n["median_ms"] / r["median_ms"], 3),
        "overhead_ms": round(n["median_ms"] - r["median_ms"], 3),
    }


# -- output ------------------------------------------------------------------------------


def print_tables(pending: list[dict[str, Any]], cycles: list[dict[str, Any]]) -> None:
    if pending:
        print("1. pending approvals across threads (median / p95 ms)")
        head = (
            f"{'backend':<9}{'threads':>9}{'pending':>9}  {'pending() 1st page':>19}"
            f"{'filtered':>17}{'role=':>17}{'page 100':>17}{'count()':>10}"
        )
        print(head)
        print("-" * len(head))
        for r in pending:

            def c(k: str, r: dict[str, Any] = r) -> str:
                return f"{r[k]['median_ms']:.2f} / {r[k]['p95_ms']:.2f}"

            print(
                f"{r['backend']:<9}{r['threads']:>9}{r['pending']:>9}  {c('first_page'):>19}"
                f"{c('filtered'):>17}{c('role'):>17}{c('page_100'):>17}"
                f"{r['count']['median_ms']:>10.2f}"
            )
        for r in pending:
            if r.get("filtered_before_analyze"):
                fb = r["filtered_before_analyze"]
                print(
                    f"   {r['backend']}: filtered was {fb['median_ms']:.1f} / "
                    f"{fb['p95_ms']:.1f} ms right after the bulk write, before ANALYZE "
                    "(no planner statistics yet)"
                )
        print()
        print("   public-API scans it replaces, same run (median ms)")
        head = (
            f"{'backend':<9}{'measured on':>12}  {'M1 get_state/thread':>20}"
            f"{'M3 list(None)':>15}  {'M1 @ T (extrap.)':>17}{'M3 @ T (extrap.)':>17}"
            f"{'pending() speed-up vs best':>28}"
        )
        print(head)
        print("-" * len(head))
        for r in pending:
            s = r["scan"]
            best = min(r["m1_extrapolated_ms"], r["m3_extrapolated_ms"])
            print(
                f"{r['backend']:<9}{s['threads']:>9} thr  {s['m1_get_state']['median_ms']:>20.1f}"
                f"{s['m3_list_all']['median_ms']:>15.1f}  {r['m1_extrapolated_ms']:>17.0f}"
                f"{r['m3_extrapolated_ms']:>17.0f}"
                f"{best / r['first_page']['median_ms']:>27.0f}x"
            )
        t = pending[0]["threads"]
        print(
            f"   M1/M3 measured on the thread count shown (half interrupted), extrapolated "
            f"linearly to T={t}; pending() measured at T. Targets: <25 ms sqlite, <50 ms "
            "postgres."
        )
        print()
    if cycles:
        print("2. decision + resume cycle (median / p95 ms)")
        head = (
            f"{'backend':<9}{'rounds':>7}  {'raw Command(resume)':>20}{'Inbox.approve':>18}"
            f"{'overhead ms':>13}{'ratio':>8}"
        )
        print(head)
        print("-" * len(head))
        for r in cycles:
            print(
                f"{r['backend']:<9}{r['rounds']:>7}  "
                f"{r['raw']['median_ms']:>9.2f} / {r['raw']['p95_ms']:<8.2f}"
                f"{r['inbox']['median_ms']:>8.2f} / {r['inbox']['p95_ms']:<7.2f}"
                f"{r['overhead_ms']:>13.2f}{r['ratio']:>8.3f}"
            )
        print("   same gated graph and checkpointer, interleaved; target ratio <= 1.15")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--threads", type=int, default=None, help="default 100000 (quick: 10000)")
    p.add_argument("--pending", type=int, default=None, help="default 10000 (quick: 1000)")
    p.add_argument("--scan-threads", type=int, default=None, help="default 2000 (quick: 300)")
    p.add_argument("--reps", type=int, default=None, help="timed pending() calls (default 50)")
    p.add_argument("--rounds", type=int, default=None, help="cycle rounds (default 150)")
    p.add_argument("--skip", choices=["pending", "cycle"], action="append", default=[])
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    a = p.parse_args(argv)
    q = a.quick
    threads = a.threads or (10_000 if q else 100_000)
    pending = a.pending or (1_000 if q else 10_000)
    scan = a.scan_threads or (300 if q else 2_000)
    reps = a.reps or (20 if q else 50)
    rounds = a.rounds or (30 if q else 150)
    warmup = 5 if q else 15
    pend_rows: list[dict[str, Any]] = []
    cycle_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for name in a.backends.split(","):
            if "pending" not in a.skip:
                with backend(name, Path(d), "pending") as b:
                    if b is not None:
                        log(f"[{name}] pending() with {pending} pending among {threads} threads")
                        pend_rows.append(bench_pending(b, threads, pending, scan, reps))
            if "cycle" not in a.skip:
                with backend(name, Path(d), "cycle") as b:
                    if b is not None:
                        log(f"[{name}] decision + resume cycle, {rounds} rounds")
                        cycle_rows.append(bench_cycle(b, rounds, warmup))
    if a.json:
        print(json.dumps({"pending": pend_rows, "cycle": cycle_rows}, indent=2))
    else:
        print_tables(pend_rows, cycle_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
