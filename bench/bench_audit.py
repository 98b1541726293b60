"""Audit verification cost: the streaming, per-stream verifier against the old full load.

Builds an SQLite store with ``--events`` keyed audit events (default 1,500,000; rows
are appended through the store's own append path, in batches of one transaction each,
so they are real chained rows), then runs, each in a fresh subprocess so peak RSS is
its own:

* ``streaming``: ``store.verify_audit()`` (pages of 5,000 rows, one ``(n, hash)`` per
  stream kept; checks hashes, links, positions, HMACs and the stream heads);
* ``full-load``: the pre-0.2 algorithm, ``list_audit()`` of the whole chain into memory,
  then one pass (what ``hitl audit verify`` did before; it checks less: no keys, no
  heads);
* ``resume``: ``verify_audit(since=checkpoint)`` after 1,000 new events: a daily verify
  that reads only what is new.

Reported per variant: wall time and peak RSS above the interpreter's baseline.

Usage::

    python bench/bench_audit.py [--events 1500000] [--json] [--db PATH]

About 2 min for 1.5M events on a 2-core box (most of it building the store);
``--events 200000`` takes ~15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

KEY = "bench-audit-key-0123456789abcdef"


def build(path: str, events: int) -> float:
    from hitl_langgraph import open_store
    from hitl_langgraph.store.records import AuditEvent

    store = open_store(f"sqlite:///{path}")
    store.set_audit_key(KEY)
    t0 = time.perf_counter()
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    batch = 5_000
    done = 0
    while done < events:
        n = min(batch, events - done)
        with store._write("bench append") as conn:  # type: ignore[attr-defined]
            for i in range(done, done + n):
                store._append(  # type: ignore[attr-defined]
                    conn,
                    AuditEvent(
                        "decided" if i % 3 else "requested",
                        at=at,
                        request_id=f"req_{i // 3:012d}",
                        thread_id=f"t-{i // 3 % 5000}",
                        actor="alice",
                        data={"decision": {"type": "approve"}, "tool": "transfer_funds", "i": i},
                    ),
                )
        done += n
    store.close()
    return time.perf_counter() - t0


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_variant(path: str, variant: str) -> dict[str, Any]:
    from hitl_langgraph import open_store
    from hitl_langgraph.store.records import audit_hash

    store = open_store(f"sqlite:///{path}")
    store.set_audit_key(KEY)
    base = _rss_kb()
    t0 = time.perf_counter()
    if variant == "streaming":
        report = store.verify_audit()
        ok, events = report.ok, report.events
    elif variant == "full-load":  # the old ApprovalStore.verify_audit, per stream
        prev: dict[Any, str] = {}
        events, problems = 0, 0
        for ev in store.list_audit():
            events += 1  # noqa: SIM113 - mirrors the old loop
            if ev.prev_hash != prev.get(ev.stream, ""):
                problems += 1
            if audit_hash(ev.prev_hash, ev) != ev.hash:
                problems += 1
            prev[ev.stream] = ev.hash
        ok = problems == 0
    else:  # resume: checkpoint, 1,000 new events, verify only those
        checkpoint = store.verify_audit().checkpoint
        from hitl_langgraph.store.records import AuditEvent

        for i in range(1_000):
            store.append_audit(
                AuditEvent("note", at=datetime.now(timezone.utc), thread_id=f"t-{i}")
            )
        base = _rss_kb()
        t0 = time.perf_counter()
        report = store.verify_audit(since=checkpoint)
        ok, events = report.ok, report.events
    seconds = time.perf_counter() - t0
    peak = _rss_kb()
    store.close()
    return {
        "variant": variant,
        "ok": ok,
        "events": events,
        "seconds": round(seconds, 2),
        "peak_rss_mb_above_start": round((peak - base) / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=1_500_000)
    ap.add_argument("--db", help="reuse/build the store here (default: a temp file)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.variant:  # child process
        print(json.dumps(run_variant(a.db, a.variant)))
        return 0
    tmp = None
    if a.db is None:
        tmp = tempfile.TemporaryDirectory()
        a.db = os.path.join(tmp.name, "audit.db")
    build_s = None
    if not Path(a.db).exists():
        build_s = build(a.db, a.events)
    rows = []
    for variant in ("streaming", "full-load", "resume"):
        p = subprocess.run(
            [sys.executable, __file__, "--db", a.db, "--variant", variant],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
    result = {"events": a.events, "build_seconds": build_s, "rows": rows}
    if a.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"audit verify, SQLite, {a.events:,} keyed events (built in {build_s or 0:.0f} s)")
        print(f"{'variant':<11} {'ok':<5} {'events':>10} {'seconds':>8} {'peak RSS MB':>12}")
        for r in rows:
            print(
                f"{r['variant']:<11} {r['ok']!s:<5} {r['events']:>10,} {r['seconds']:>8} "
                f"{r['peak_rss_mb_above_start']:>12}"
            )
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
