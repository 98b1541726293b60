"""Store scale curves: pending() first page, count(), and reconcile's full keyset pass.

For each backend (memory, SQLite, Postgres) the store is filled in steps to N pending
requests plus N/10 decided ones (N = 1k, 10k, 100k; --quick: 1k, 10k), bulk-inserted
with the store's own row encoding, then, per repeat: ``Inbox.pending(limit=50)`` and
``Inbox.count()`` (median of 15 calls each) and one ``iter_requests(store, None,
page=500)`` pass over every row (what ``reconcile()`` reads). Postgres is VACUUM
ANALYZEd after each fill, as autovacuum would. The ratio column is growth against the
previous size (10x the rows): about 1x is flat, about 10x is linear.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hitl_langgraph import open_store
from hitl_langgraph.inbox import Inbox
from hitl_langgraph.inbox._base import iter_requests
from hitl_langgraph.store import ApprovalRecord, ApprovalStore

from .core import Context, timed_median
from .pg import pg_schema

NAME = "scale"
PARTS = 3
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(i: int, status: str) -> ApprovalRecord:
    at = T0 + timedelta(milliseconds=i // 3)  # ties: three rows per millisecond
    return ApprovalRecord(
        request_id=f"req_{i:08d}",
        thread_id=f"t{i}",
        node="tools",
        tool="transfer_funds",
        args={"amount": i % 10_000, "to": "bob"},
        digest=f"sha256:{i:064x}",
        score=0.9,
        route="approve",
        reasons=["rule transfer_funds"],
        status=status,  # type: ignore[arg-type]
        created_at=at,
        updated_at=at,
    )


def bulk_insert(store: ApprovalStore, backend: str, records: list[ApprovalRecord]) -> None:
    if backend == "memory":
        for r in records:
            store.put_request(r)
        return
    from hitl_langgraph.store._common import REQUEST_FIELDS

    if backend == "sqlite":
        from hitl_langgraph.store import sqlite as mod

        rows = [[mod._encode(n, getattr(r, n)) for n in REQUEST_FIELDS] for r in records]
        with store._write("bulk insert") as conn:  # type: ignore[attr-defined]
            conn.executemany(mod._INSERT, rows)
        return
    from hitl_langgraph.store import postgres as pmod

    rows = [[pmod._encode(n, getattr(r, n)) for n in REQUEST_FIELDS] for r in records]
    with store._tx("bulk insert") as cur:  # type: ignore[attr-defined]
        cur.executemany(pmod._INSERT, rows)
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("VACUUM ANALYZE hitl_requests")


def run(ctx: Context) -> None:
    sizes = [1_000, 10_000] if ctx.quick else [1_000, 10_000, 100_000]
    with tempfile.TemporaryDirectory() as d, ExitStack() as stack:
        urls: dict[str, str] = {
            "memory": "memory://",
            "sqlite": f"sqlite:///{Path(d) / 'scale.db'}",
        }
        try:
            urls["postgres"] = stack.enter_context(pg_schema())
        except Exception as exc:
            ctx.skip(f"{NAME}/postgres", f"no PostgreSQL: {exc}")
        for backend, url in urls.items():
            store = open_store(url)
            inbox = Inbox(store)
            done = 0
            prev: dict[str, float] = {}
            try:
                for size in sizes:
                    total = size + size // 10
                    batch = [
                        record(i, "approved" if i % 11 == 10 else "pending")
                        for i in range(done, total)
                    ]
                    t0 = time.perf_counter()
                    bulk_insert(store, backend, batch)
                    ctx.log(
                        f"{NAME}/{backend}: {total:,} rows "
                        f"({time.perf_counter() - t0:.1f} s to load)"
                    )
                    done = total
                    assert inbox.count() == sum(1 for i in range(total) if i % 11 != 10)
                    label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
                    vals: dict[str, list[float]] = {"pending": [], "count": [], "iter": []}
                    for _rep in (
                        ctx.repeats(f"{NAME}/{backend} @ {label}")
                        if size == sizes[-1]
                        else range(ctx.n_repeats)
                    ):
                        vals["pending"].append(
                            timed_median(lambda inbox=inbox: inbox.pending(limit=50), 15) * 1000
                        )
                        vals["count"].append(timed_median(inbox.count, 15) * 1000)
                        t0 = time.perf_counter()
                        n = sum(1 for _ in iter_requests(store, None, page=500))
                        vals["iter"].append((time.perf_counter() - t0) * 1000)
                        assert n == total
                    names = {
                        "pending": (
                            f"pending() first page @ {label} pending",
                            "Inbox.pending(limit=50)",
                        ),
                        "count": (f"count() @ {label} pending", "Inbox.count()"),
                        "iter": (
                            f"iter_requests all rows @ {total:,}",
                            "reconcile's keyset pass (page=500)",
                        ),
                    }
                    for k, xs in vals.items():
                        base = prev.get(k)
                        for x in xs:
                            ctx.record(
                                NAME,
                                f"{backend}: {names[k][0]}",
                                ours=x,
                                ours_label=names[k][1],
                                ratio=(x / base) if base else None,
                                ratio_label="growth vs 10x fewer rows (1x flat, 10x linear)",
                                how=f"{backend} store; {size:,} pending + "
                                f"{size // 10:,} decided rows",
                            )
                        prev[k] = sorted(xs)[len(xs) // 2]
            finally:
                store.close()
