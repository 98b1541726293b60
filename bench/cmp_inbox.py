"""Finding pending approvals: Inbox.pending() / count() against public-API scans.

One SQLite file per size holds a real ``SqliteSaver`` and the SQLite store. A gated
graph (agent -> GatedToolNode) runs two template threads for real: one paused at its
interrupt, one approved and finished. Every other thread is a row-for-row copy of one of
them under a new thread id (SQL ``INSERT ... SELECT`` over the saver's ``checkpoints``
and ``writes`` tables), half paused, half finished; the store gets one request row per
thread (pending or approved) in the same proportion. Like for like:

* ``count()`` against a full scan: ``graph.get_state(cfg).interrupts`` for every thread
  id (the ids handed to the scan for free; finding them is extra work it skips);
* the first page (50, oldest first) against the cheapest public-API first page: the same
  scan stopped at the first 50 paused threads (unordered, which favours the scan).

Sizes 1k, 10k, 100k threads (--quick: 1k, 10k). The 100k full scan is timed once (it
takes about a minute); every other figure once per repeat.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph.types import Command

from hitl_langgraph import GatedToolNode, open_store
from hitl_langgraph.inbox import Inbox

from .cmp_gate import build, policy, transfer_funds
from .cmp_scale import bulk_insert, record
from .core import Context, timed_median

NAME = "inbox"
PARTS = 3


def _clone(conn: sqlite3.Connection, table: str, pairs: list[tuple[str, str]]) -> None:
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    rest = ", ".join(c for c in cols if c != "thread_id")
    conn.executemany(
        f"INSERT INTO {table} (thread_id, {rest}) "
        f"SELECT ?, {rest} FROM {table} WHERE thread_id = ?",
        pairs,
    )


def populate(tmp: Path, n: int) -> tuple[Any, Any, Any, list[str], sqlite3.Connection]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    db = tmp / f"inbox-{n}.db"
    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    store = open_store(f"sqlite:///{tmp / f'store-{n}.db'}")
    app = build(GatedToolNode([transfer_funds], policy=policy(), store=store), saver)
    paused, finished = "template-paused", "template-finished"
    app.invoke({"messages": [("user", "pay")]}, {"configurable": {"thread_id": paused}})
    cfg = {"configurable": {"thread_id": finished}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    app.invoke(
        Command(resume={out["__interrupt__"][0].id: {"decisions": [{"type": "approve"}]}}), cfg
    )
    tids = [f"t{k:07d}" for k in range(n)]
    pairs = [(t, paused if k % 2 == 0 else finished) for k, t in enumerate(tids)]
    with conn:
        _clone(conn, "checkpoints", pairs)
        _clone(conn, "writes", pairs)
    recs = [record(k, "pending" if k % 2 == 0 else "approved") for k in range(n)]
    recs = [r.evolve(thread_id=t) for r, t in zip(recs, tids, strict=False)]
    bulk_insert(store, "sqlite", recs)
    # the templates are real threads too: both sides count them
    return app, store, saver, [paused, finished, *tids], conn


def run(ctx: Context) -> None:
    sizes = [1_000, 10_000] if ctx.quick else [1_000, 10_000, 100_000]
    with tempfile.TemporaryDirectory() as d:
        for size in sizes:
            t0 = time.perf_counter()
            app, store, _saver, tids, conn = populate(Path(d), size)
            label = f"{size // 1000}k"
            ctx.log(f"{NAME}: {size:,} threads ready ({time.perf_counter() - t0:.1f} s)")
            inbox = Inbox(store)

            def full_scan(app: Any = app, tids: list[str] = tids) -> int:
                return sum(
                    1 for t in tids if app.get_state({"configurable": {"thread_id": t}}).interrupts
                )

            def first_page_scan(app: Any = app, tids: list[str] = tids) -> list[str]:
                found: list[str] = []
                for t in tids:
                    if app.get_state({"configurable": {"thread_id": t}}).interrupts:
                        found.append(t)
                        if len(found) == 50:
                            break
                return found

            if size <= 1_000:  # the copies are real paused / finished threads
                assert full_scan() == inbox.count() == size // 2 + 1
            scan_once: float | None = None
            for rep in ctx.repeats(f"{NAME} @ {label} threads"):
                ours_count = timed_median(inbox.count, 15) * 1000
                if size < 100_000 or scan_once is None:
                    t1 = time.perf_counter()
                    full_scan()
                    scan = (time.perf_counter() - t1) * 1000
                    if size >= 100_000:
                        scan_once = scan
                else:
                    scan = scan_once
                ctx.record(
                    NAME,
                    f"count() @ {label} threads ({size // 2:,} pending)",
                    ours=ours_count,
                    base=scan,
                    ours_label="Inbox.count() (SQLite store)",
                    base_label="get_state(thread).interrupts over every thread (SqliteSaver)",
                    how="same pending set; a full count on both sides",
                    note="the 100k scan is timed once and reused across repeats"
                    if size >= 100_000 and rep == 0
                    else "",
                )
                ours_page = timed_median(lambda inbox=inbox: inbox.pending(limit=50), 15) * 1000
                scan_page = timed_median(first_page_scan, 3) * 1000
                ctx.record(
                    NAME,
                    f"first page (50) @ {label} threads",
                    ours=ours_page,
                    base=scan_page,
                    ours_label="Inbox.pending(limit=50), oldest first",
                    base_label="get_state scan stopped at 50 paused threads (unordered)",
                    how="first page against first page; the scan's page is unordered (cheaper)",
                )
            store.close()
            conn.close()
