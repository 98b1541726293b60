"""Keyset paging and the request indexes (issue 14, part 3): correctness, not timings.

The figures (110k rows paged, pending()/count() at 100k) come from ``python -m bench
--only scale``; here: order, filters, cursor stability while rows are inserted and
decided between pages, the memory store's indexes against a brute-force reference, and
the index migration on an existing database.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hitl_langgraph import open_store
from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.inbox._base import iter_requests
from hitl_langgraph.store import ApprovalRecord, ApprovalStore, MemoryStore, RequestFilter
from hitl_langgraph.store.memory import matches_filter

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def rec(
    i: int, *, second: int | None = None, status: str = "pending", **kw: object
) -> ApprovalRecord:
    at = T0 + timedelta(seconds=i if second is None else second)
    base: dict[str, object] = {
        "request_id": f"r{i:05d}",
        "thread_id": f"t{i % 7}",
        "node": "tools",
        "tool": "transfer_funds" if i % 3 else "send_email",
        "args": {"i": i},
        "digest": f"sha256:{i:064x}",
        "score": (i % 10) / 10,
        "route": "approve",
        "reasons": [],
        "status": status,
        "created_at": at,
        "updated_at": at,
    }
    base.update(kw)
    return ApprovalRecord(**base)  # type: ignore[arg-type]


def key(r: ApprovalRecord) -> tuple[datetime, str]:
    return (r.created_at, r.request_id)


def fill(store: ApprovalStore, n: int, *, ties: int = 4) -> list[ApprovalRecord]:
    """``n`` rows, ``ties`` per created_at second (ties broken by request_id), inserted
    in shuffled order, a third of them decided."""
    rows = [
        rec(i, second=i // ties, status="approved" if i % 3 == 0 else "pending") for i in range(n)
    ]
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    for r in shuffled:
        store.put_request(r)
    return rows


def test_iter_requests_pages_every_row_once_in_key_order(store: ApprovalStore) -> None:
    rows = fill(store, 203)
    got = list(iter_requests(store, None, page=10))
    assert [r.request_id for r in got] == [r.request_id for r in sorted(rows, key=key)]
    pending = list(iter_requests(store, ("pending",), page=7))
    want = sorted((r for r in rows if r.status == "pending"), key=key)
    assert [r.request_id for r in pending] == [r.request_id for r in want]
    both = list(iter_requests(store, ("approved", "pending"), page=9))
    assert [r.request_id for r in both] == [r.request_id for r in sorted(rows, key=key)]


def test_filters_compose_with_the_cursor(store: ApprovalStore) -> None:
    rows = fill(store, 120)
    f = RequestFilter(status=("pending",), tool="transfer_*", min_score=0.5)
    want = sorted((r for r in rows if matches_filter(r, f)), key=key)
    got: list[ApprovalRecord] = []
    after = None
    while True:
        page = store.list_requests(f, limit=4, after=after)
        got.extend(page)
        if len(page) < 4:
            break
        after = key(page[-1])
    assert [r.request_id for r in got] == [r.request_id for r in want]
    assert store.count_requests(f) == len(want)
    assert store.count_requests(RequestFilter(status=None)) == 120
    assert store.count_requests() == sum(r.status == "pending" for r in rows)


def test_cursor_is_stable_while_rows_are_inserted_and_decided(store: ApprovalStore) -> None:
    rows = fill(store, 60, ties=1)
    seen: list[str] = []
    after = None
    late: list[str] = []
    behind_ids: list[str] = []
    n = 1000
    while True:
        page = store.list_requests(RequestFilter(status=("pending",)), limit=5, after=after)
        seen.extend(r.request_id for r in page)
        if len(page) < 5:
            break
        after = key(page[-1])
        # a second actor: an older row (behind the cursor), a newer one (ahead of it),
        # one with the cursor's own created_at but a larger id, and a decision ahead
        behind = rec(n, second=-1 - n)
        ahead = rec(n + 1, second=10_000 + n)
        tie = rec(n + 2, second=int((after[0] - T0).total_seconds()))
        for r in (behind, ahead, tie):
            store.put_request(r)
        late.extend([ahead.request_id, tie.request_id])
        behind_ids.append(behind.request_id)
        ahead_pending = [r for r in rows if r.status == "pending" and key(r) > after]
        if len(ahead_pending) > 3:
            victim = ahead_pending[3]
            store.update_request(victim.request_id, expected_status="pending", status="approved")
            rows = [r for r in rows if r.request_id != victim.request_id]
        n += 3
    assert len(seen) == len(set(seen)), "a row came twice"
    originals = [r.request_id for r in sorted(rows, key=key) if r.status == "pending"]
    assert [s for s in seen if s in set(originals)] == originals  # none lost, none reordered
    assert set(late) <= set(seen)  # rows created ahead of the cursor are reached
    assert not set(behind_ids) & set(seen)  # rows created behind the cursor are not


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_memory_indexes_match_a_brute_force_scan(seed: int) -> None:
    rnd = random.Random(seed)
    store = MemoryStore()
    statuses = ["pending", "approved", "rejected", "expired"]
    for i in range(300):
        store.put_request(rec(i, second=rnd.randrange(50), status=rnd.choice(statuses[:2])))
        if i % 4 == 0:
            target = f"r{rnd.randrange(i + 1):05d}"
            store.update_request(target, status=rnd.choice(statuses))
    everything = [store.get_request(f"r{i:05d}") for i in range(300)]
    filters = [
        RequestFilter(),
        RequestFilter(status=None),
        RequestFilter(status=("pending", "expired")),
        RequestFilter(status=("pending", "pending")),
        RequestFilter(status=()),
        RequestFilter(status=("missing",)),
        RequestFilter(tool="send_*"),
        RequestFilter(status=None, thread_id="t3", min_score=0.3),
    ]
    for f in filters:
        want = sorted((r for r in everything if r is not None and matches_filter(r, f)), key=key)
        assert store.count_requests(f) == len(want), f
        assert store.list_requests(f, limit=10_000) == want, f
        if len(want) > 5:
            cut = key(want[len(want) // 2])
            assert (
                store.list_requests(f, limit=3, after=cut) == [r for r in want if key(r) > cut][:3]
            )


def test_sqlite_setup_adds_the_index_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    fill(store, 30)
    store.close()
    with sqlite3.connect(path) as conn:  # a database made before the index existed
        conn.execute("DROP INDEX hitl_requests_created")
    for _ in range(2):  # idempotent
        again = open_store(f"sqlite:///{path}")
        again.close()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM hitl_requests "
                "WHERE (created_at, request_id) > (?, ?) ORDER BY created_at, request_id LIMIT 500",
                ("2026", "r"),
            )
        )
    assert "hitl_requests_created" in names
    assert "hitl_requests_created" in plan and "TEMP B-TREE" not in plan
    assert len(list(iter_requests(open_store(f"sqlite:///{path}"), None, page=4))) == 30


def test_sqlite_synchronous_option(tmp_path: Path) -> None:
    full = open_store(f"sqlite:///{tmp_path / 'a.db'}?synchronous=full&timeout=5")
    normal = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    assert full.count_requests() == 0
    assert full._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[attr-defined]
    assert normal._connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="synchronous='sometimes'"):
        open_store(f"sqlite:///{tmp_path / 'c.db'}?synchronous=sometimes")
    with pytest.raises(ConfigurationError, match="'timeout' or 'synchronous'"):
        open_store(f"sqlite:///{tmp_path / 'c.db'}?sync=full")
    assert not (tmp_path / "c.db").exists()


@pytest.mark.postgres
def test_postgres_setup_adds_the_indexes_and_count_can_use_the_partial_one(
    postgres_schema_url: str,
) -> None:
    import psycopg

    store = open_store(postgres_schema_url)
    fill(store, 40)
    with psycopg.connect(postgres_schema_url, autocommit=True) as conn:
        conn.execute("DROP INDEX hitl_requests_created")
        conn.execute("DROP INDEX hitl_requests_pending")
    store.setup()
    store.setup()
    with psycopg.connect(postgres_schema_url, autocommit=True) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            )
        }
        conn.execute("SET enable_seqscan = off")
        plan = " ".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT COUNT(*) FROM hitl_requests WHERE status = 'pending'"
            )
        )
    assert {"hitl_requests_created", "hitl_requests_pending"} <= names
    assert "hitl_requests_pending" in plan
    assert store.count_requests() == 26
    store.close()
