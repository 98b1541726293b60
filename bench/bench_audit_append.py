"""Audit append cost on Postgres: per-stream heads against the old global lock.

Both variants run in the same process against the same server, interleaved, each
append in its own transaction (as a gate's write is):

* ``old``: the pre-0.2 append, reproduced on a copy of the old table:
  ``pg_advisory_xact_lock`` (one global lock) + ``SELECT seq, hash ... ORDER BY seq DESC
  LIMIT 1`` + ``INSERT`` (3 round trips, every appender in every worker waits for the lock);
* ``new``: ``PostgresStore.append_audit`` (keyed): ``SELECT ... FOR UPDATE`` on the
  stream's head row + one ``INSERT ... ; UPDATE head`` statement (2 round trips; only
  appenders on the same stream wait).

``--hold-ms`` keeps each transaction open that much longer after the append (a gate's
transaction also writes the request row; over a network every statement costs a round
trip), which is where a global lock serializes workers.

Reported: appends per second with 1 and ``--workers`` threads, and the scaling factor.

Usage::

    python bench/bench_audit_append.py [--url postgresql://postgres@127.0.0.1:5432/test]
        [--appends 400] [--workers 4] [--hold-ms 2] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

KEY = "bench-audit-key-0123456789abcdef"


def main(argv: list[str] | None = None) -> int:
    import psycopg

    from hitl_langgraph.policy.action import canonical_json
    from hitl_langgraph.store.postgres import PostgresStore
    from hitl_langgraph.store.records import AuditEvent

    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--appends", type=int, default=400, help="per worker")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--hold-ms", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(a.url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    url = a.url + ("&" if "?" in a.url else "?") + f"options=-csearch_path%3D{schema}"
    store = PostgresStore(url, pool_size=a.workers + 2)
    store.setup()
    store.set_audit_key(KEY)
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE old_audit (LIKE hitl_audit INCLUDING ALL)")
    hold = a.hold_ms / 1000

    def old_append(conn: Any, i: int, w: int) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (0x68_69_74_6C_00_02,))
            row = conn.execute(
                "SELECT seq, hash FROM old_audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (1, "") if row is None else (row[0] + 1, row[1])
            body = {"event": "note", "thread_id": f"t{w}", "data": {"i": i}}
            h = hashlib.sha256((prev + canonical_json(body)).encode()).hexdigest()
            conn.execute(
                "INSERT INTO old_audit (seq, event, at, thread_id, data, prev_hash, hash) "
                "VALUES (%s, 'note', now(), %s, %s::json, %s, %s)",
                (seq, f"t{w}", json.dumps({"i": i}), prev, h),
            )
            if hold:
                time.sleep(hold)

    def new_append(conn: Any, i: int, w: int) -> None:
        with store._tx("bench") as cur:  # the store's own append, in one transaction
            store._append(
                cur,
                AuditEvent(
                    "note", at=datetime.now(timezone.utc), thread_id=f"w{w}-{i % 7}", data={"i": i}
                ),
            )
            if hold:
                time.sleep(hold)

    def run(fn: Any, workers: int) -> float:
        conns = [psycopg.connect(url, autocommit=True) for _ in range(workers)]
        barrier = threading.Barrier(workers + 1)

        def work(w: int) -> None:
            barrier.wait()
            for i in range(a.appends):
                fn(conns[w], i, w)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        for c in conns:
            c.close()
        return workers * a.appends / dt

    results: dict[str, dict[int, float]] = {"old": {}, "new": {}}
    for workers in (1, a.workers):  # interleaved: old, new, old, new
        for name, fn in (("old", old_append), ("new", new_append)):
            results[name][workers] = run(fn, workers)
    report = store.verify_audit()
    store.close()
    with psycopg.connect(a.url, autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")
    out = {
        "appends_per_worker": a.appends,
        "hold_ms": a.hold_ms,
        "verify_ok": report.ok,
        "rows": [
            {
                "variant": name,
                "one_worker_per_s": round(results[name][1]),
                f"{a.workers}_workers_per_s": round(results[name][a.workers]),
                "scaling": round(results[name][a.workers] / results[name][1], 2),
            }
            for name in ("old", "new")
        ],
    }
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"audit appends on Postgres, {a.appends}/worker, transaction held +{a.hold_ms} ms")
        print(f"{'variant':<8} {'1 worker/s':>11} {f'{a.workers} workers/s':>12} {'scaling':>8}")
        for r in out["rows"]:
            print(
                f"{r['variant']:<8} {r['one_worker_per_s']:>11} "
                f"{r[f'{a.workers}_workers_per_s']:>12} {r['scaling']:>7}x"
            )
        print(f"chain verifies after the run: {report.ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
