"""One suite, every backend: the rules of ``hitl_langgraph.store.base`` hold for the
memory, SQLite and Postgres stores alike (fixtures in ``fixtures_store.py``)."""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hitl_langgraph.errors import AlreadyDecided, ConfigurationError, RequestNotFound, StoreError
from hitl_langgraph.store import (
    ApprovalRecord,
    ApprovalStore,
    AuditEvent,
    MemoryStore,
    RequestFilter,
    open_store,
)
from hitl_langgraph.store.memory import matches_filter

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
CEST = timezone(timedelta(hours=2))


def make(request_id: str, **changes: Any) -> ApprovalRecord:
    base = ApprovalRecord(
        request_id=request_id,
        thread_id="thread-1",
        node="tools",
        tool="send_email",
        args={"to": "a@example.com", "n": 1},
        digest="sha256:" + "0" * 64,
        score=0.5,
        route="approve",
        reasons=["external recipient"],
        status="pending",
        created_at=T0,
        updated_at=T0,
    )
    return replace(base, **changes)


def event(name: str = "requested", **kw: Any) -> AuditEvent:
    return AuditEvent(event=name, at=kw.pop("at", T0), **kw)


def tamper(store: ApprovalStore, seq: int, *, delete: bool = False) -> None:
    """Edit or delete an audit row the way someone with database access would."""
    if isinstance(store, MemoryStore):
        if delete:
            del store._audit[seq - 1]
        else:
            store._tamper(seq, actor="mallory")
        return
    sql = (
        "DELETE FROM hitl_audit WHERE seq = {p}"
        if delete
        else "UPDATE hitl_audit SET actor = 'mallory' WHERE seq = {p}"
    )
    if type(store).__name__ == "SqliteStore":
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        with conn:
            conn.execute(sql.format(p="?"), (seq,))
        conn.close()
    else:
        import psycopg

        with psycopg.connect(store.conninfo, autocommit=True) as pg:  # type: ignore[attr-defined]
            pg.execute(sql.format(p="%s"), (seq,))


# -- requests ---------------------------------------------------------------------------


def test_put_request_inserts_only_if_absent(store: ApprovalStore) -> None:
    original = make("r1")
    stored, created = store.put_request(original, audit=event(request_id="r1"))
    assert created and stored == original

    other = make("r1", tool="delete_db", status="approved", score=0.9, args={"x": 2})
    again, created = store.put_request(other, audit=event(request_id="r1"))
    assert not created
    assert again == original
    assert store.get_request("r1") == original
    assert [e.event for e in store.list_audit()] == ["requested"]


def test_get_unknown_request_is_none(store: ApprovalStore) -> None:
    assert store.get_request("nope") is None


def test_every_field_round_trips(store: ApprovalStore) -> None:
    rec = make(
        "r-full",
        checkpoint_ns="sub:1",
        tool_call_id="call_1",
        kind="state",
        interrupt_id="int-1",
        args={"nested": {"list": [1, 2.5, None, True], "s": "é\u2603"}, "empty": {}},
        approver_roles=["admin", "finance"],
        allowed_decisions=["approve", "reject"],
        quorum=2,
        approvals=[{"by": "ann", "at": "2025-03-01T12:00:00+00:00"}],
        policy_version="v7",
        requester="agent-a",
        created_at=datetime(2025, 3, 1, 14, 30, 0, 123456, tzinfo=CEST),
        updated_at=T0 + timedelta(microseconds=1),
        expires_at=T0 + timedelta(hours=1),
        on_expiry="approve",
        parent_request_id="r-parent",
        decision={"type": "approve", "message": None},
        decided_by="ann",
        decided_at=T0 + timedelta(minutes=5),
        metadata={"k": [1, {"a": "b"}]},
    )
    store.put_request(rec)
    got = store.get_request("r-full")
    assert got == rec
    assert got is not None
    for name in ("created_at", "updated_at", "expires_at", "decided_at"):
        value = getattr(got, name)
        assert value.tzinfo is not None and value == getattr(rec, name)
    assert [r.request_id for r in store.list_requests()] == ["r-full"]


# -- filters, ordering, pagination ------------------------------------------------------

DATASET = [
    make("a", tool="send_email", score=0.9, approver_roles=["admin"]),
    make("b", tool="send_sms", score=0.2, created_at=T0 + timedelta(seconds=1)),
    make("c", tool="db.query", score=0.5, thread_id="thread-2", approver_roles=["ops", "admin"]),
    make("d", tool="db.drop", status="approved", route="approve", decided_by="ann"),
    make("e", tool="Send_Email", status="rejected", score=0.7),
    make("f", tool="payments.refund", route="review", status="review", score=0.4),
    make("g", tool="send_email", expires_at=T0 + timedelta(minutes=5), score=0.5),
    make("h", tool="send_email", expires_at=T0 + timedelta(minutes=10), approver_roles=["ops"]),
    make("i", tool="x[1]", score=0.0, created_at=T0 - timedelta(days=1)),
    make("j", tool="deny_me", route="deny", status="denied", thread_id="thread-2"),
    make("k", tool="send_email", created_at=T0 + timedelta(seconds=1), score=1.0),
]

FILTERS = [
    RequestFilter(),
    RequestFilter(status=None),
    RequestFilter(status=()),
    RequestFilter(status=("approved", "rejected", "denied")),
    RequestFilter(status=None, thread_id="thread-2"),
    RequestFilter(tool="send_email"),
    RequestFilter(status=None, tool="send_*"),
    RequestFilter(status=None, tool="*_?m?il"),
    RequestFilter(status=None, tool="[Ss]end_*"),
    RequestFilter(status=None, tool="[!s]*"),
    RequestFilter(status=None, tool="db.[d-q]*"),
    RequestFilter(status=None, tool="x[[]1]"),
    RequestFilter(status=None, tool="x[1"),
    RequestFilter(status=None, tool="[z-a]*"),
    RequestFilter(status=None, tool="*"),
    RequestFilter(status=None, tool="%"),
    RequestFilter(status=None, tool="send?email"),
    RequestFilter(status=None, route="review"),
    RequestFilter(role="admin"),
    RequestFilter(role="ops"),
    RequestFilter(role="nobody"),
    RequestFilter(min_score=0.5),
    RequestFilter(status=None, min_score=0.95),
    RequestFilter(expires_before=T0 + timedelta(minutes=10)),
    RequestFilter(expires_before=T0 + timedelta(minutes=11)),
    RequestFilter(status=("pending", "review"), role="ops", min_score=0.1, tool="*"),
]


def _filter_id(f: RequestFilter) -> str:
    default = RequestFilter()
    parts = [
        f"{name}={getattr(f, name)!r}"
        for name in f.__dataclass_fields__
        if getattr(f, name) != getattr(default, name)
    ]
    return ",".join(parts) or "default"


@pytest.mark.parametrize("f", FILTERS, ids=_filter_id)
def test_filters_match_the_reference(store: ApprovalStore, f: RequestFilter) -> None:
    for rec in DATASET:
        store.put_request(rec)
    expected = [
        r.request_id
        for r in sorted(DATASET, key=lambda r: (r.created_at, r.request_id))
        if matches_filter(r, f)
    ]
    assert [r.request_id for r in store.list_requests(f, limit=1000)] == expected
    assert store.count_requests(f) == len(expected)


def test_list_without_filter_means_pending(store: ApprovalStore) -> None:
    for rec in DATASET:
        store.put_request(rec)
    assert store.list_requests() == store.list_requests(RequestFilter())
    assert {r.status for r in store.list_requests()} == {"pending"}


def test_ordering_and_keyset_pagination(store: ApprovalStore) -> None:
    rng = random.Random(7)
    # many ties on created_at: order falls back to request_id (code-point order)
    recs = [
        make(f"{rng.choice('ABab_-')}{i:03d}", created_at=T0 + timedelta(seconds=rng.randint(0, 4)))
        for i in range(40)
    ]
    recs += [make(f"x{i}", status="approved") for i in range(5)]
    rng.shuffle(recs)
    for rec in recs:
        store.put_request(rec)
    expected = sorted(
        (r for r in recs if r.status == "pending"), key=lambda r: (r.created_at, r.request_id)
    )

    pages: list[list[ApprovalRecord]] = []
    after: tuple[datetime, str] | None = None
    while True:
        page = store.list_requests(limit=7, after=after)
        if not page:
            break
        assert len(page) <= 7
        pages.append(page)
        after = (page[-1].created_at, page[-1].request_id)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 5]
    assert [r for p in pages for r in p] == expected

    # keyset boundary is strict, and works with a key expressed in another time zone
    mid = expected[10]
    rest = store.list_requests(limit=100, after=(mid.created_at.astimezone(CEST), mid.request_id))
    assert rest == expected[11:]
    assert store.list_requests(limit=0) == []


# -- update_request ---------------------------------------------------------------------


def test_update_request_compare_and_set(store: ApprovalStore) -> None:
    store.put_request(make("r1"))
    later = T0 + timedelta(minutes=1)
    updated = store.update_request(
        "r1",
        expected_status="pending",
        status="approved",
        decided_by="ann",
        decided_at=later,
        updated_at=later,
        decision={"type": "approve"},
        approvals=[{"by": "ann"}],
    )
    assert updated == make(
        "r1",
        status="approved",
        decided_by="ann",
        decided_at=later,
        updated_at=later,
        decision={"type": "approve"},
        approvals=[{"by": "ann"}],
    )
    assert store.get_request("r1") == updated
    # a tuple of expected statuses, then an unconditional update
    again = store.update_request("r1", expected_status=("edited", "approved"), metadata={"x": 1})
    assert again.metadata == {"x": 1} and again.status == "approved"
    assert store.update_request("r1", quorum=3).quorum == 3
    assert store.update_request("r1") == store.get_request("r1")


def test_failed_compare_and_set_changes_nothing(store: ApprovalStore) -> None:
    store.put_request(make("r1"))
    store.update_request(
        "r1", expected_status="pending", status="rejected", decided_by="bob", audit=event("decided")
    )
    before = store.get_request("r1")
    with pytest.raises(AlreadyDecided) as info:
        store.update_request(
            "r1",
            expected_status=["pending", "edited"],
            status="approved",
            decided_by="eve",
            audit=event("decided", actor="eve"),
        )
    err = info.value
    assert (err.status, err.decided_by, err.request_id) == ("rejected", "bob", "r1")
    assert "bob" in str(err)
    assert store.get_request("r1") == before
    assert [e.actor for e in store.list_audit()] == [None]


def test_update_unknown_request(store: ApprovalStore) -> None:
    with pytest.raises(RequestNotFound) as info:
        store.update_request("ghost", expected_status="pending", status="approved", audit=event())
    assert info.value.request_id == "ghost"
    with pytest.raises(KeyError):  # RequestNotFound is a KeyError too
        store.update_request("ghost", status="approved")
    assert store.list_audit() == []


def test_update_unknown_field(store: ApprovalStore) -> None:
    store.put_request(make("r1"))
    with pytest.raises(ConfigurationError, match="colour"):
        store.update_request("r1", status="approved", colour="blue")
    with pytest.raises(ConfigurationError, match="colour"):
        store.update_request("r1", expected_status="pending", colour="blue", audit=event())
    assert store.get_request("r1") == make("r1")
    assert store.list_audit() == []


def test_update_appends_audit_in_the_same_write(store: ApprovalStore) -> None:
    store.put_request(make("r1"), audit=event("requested", request_id="r1", thread_id="thread-1"))
    store.put_request(make("r2"), audit=event("requested", request_id="r2"))
    store.update_request(
        "r1",
        expected_status="pending",
        status="approved",
        audit=event("decided", request_id="r1", actor="ann", data={"type": "approve"}),
    )
    assert [(e.seq, e.event) for e in store.list_audit()] == [
        (1, "requested"),
        (2, "requested"),
        (3, "decided"),
    ]
    mine = store.list_audit(request_id="r1")
    assert [(e.event, e.actor, e.data) for e in mine] == [
        ("requested", None, {}),
        ("decided", "ann", {"type": "approve"}),
    ]
    assert mine[0].thread_id == "thread-1"


# -- execution journal ------------------------------------------------------------------


def test_execution_journal(store: ApprovalStore) -> None:
    assert store.get_execution("r1") is None
    assert store.claim_execution("r1", worker="w1", at=T0)
    assert not store.claim_execution("r1", worker="w2", at=T0)
    ex = store.get_execution("r1")
    assert ex is not None
    assert (ex.state, ex.worker, ex.started_at, ex.finished_at) == ("running", "w1", T0, None)

    payload = bytes(range(256)) + b"\x00tail"
    done_at = T0 + timedelta(seconds=3)
    store.finish_execution(
        "r1",
        state="done",
        at=done_at,
        result_type="msgpack",
        result=payload,
        audit=event("executed", request_id="r1"),
    )
    ex = store.get_execution("r1")
    assert ex is not None
    assert (ex.state, ex.finished_at, ex.result_type, ex.result, ex.error) == (
        "done",
        done_at,
        "msgpack",
        payload,
        None,
    )
    assert isinstance(ex.result, bytes)
    assert [e.event for e in store.list_audit()] == ["executed"]
    assert not store.release_execution("r1")  # finished rows stay
    assert not store.claim_execution("r1", worker="w3", at=T0)

    with pytest.raises(RequestNotFound):
        store.finish_execution("never-claimed", state="done", at=T0, audit=event())
    assert len(store.list_audit()) == 1


def test_release_a_crashed_claim(store: ApprovalStore) -> None:
    assert not store.release_execution("r1")
    assert store.claim_execution("r1", worker="crashed", at=T0)
    assert store.release_execution("r1")
    assert store.get_execution("r1") is None
    assert store.claim_execution("r1", worker="w2", at=T0)
    store.finish_execution("r1", state="failed", at=T0, error="boom")
    ex = store.get_execution("r1")
    assert ex is not None and (ex.state, ex.error, ex.result) == ("failed", "boom", None)


# -- audit trail ------------------------------------------------------------------------


def test_audit_chain(store: ApprovalStore) -> None:
    appended = [
        store.append_audit(event("requested", request_id="r1", data={"i": 0, "f": 0.1})),
        store.append_audit(event("decided", at=datetime(2025, 3, 1, 15, 0, tzinfo=CEST))),
        store.append_audit(
            event("note", actor="ann", data={"s": "é\u2603\x00", "l": [1, None], "big": 1e300})
        ),
    ]
    assert [e.seq for e in appended] == [1, 2, 3]
    # per-stream chains: r1's event starts its stream; the two thread-less events share
    # stream 0 and link to each other
    assert appended[0].prev_hash == "" and appended[0].stream_seq == 1
    assert (appended[1].stream, appended[2].stream) == (0, 0)
    assert appended[1].prev_hash == "" and appended[2].prev_hash == appended[1].hash
    assert appended[2].stream_seq == 2
    listed = store.list_audit()
    assert [(e.seq, e.hash, e.prev_hash) for e in listed] == [
        (e.seq, e.hash, e.prev_hash) for e in appended
    ]
    assert listed[1].at == datetime(2025, 3, 1, 13, 0, tzinfo=timezone.utc)
    assert listed[2].data == {"s": "é\u2603\x00", "l": [1, None], "big": 1e300}
    report = store.verify_audit()
    assert report.ok, report.problems
    assert (report.events, report.head) == (3, appended[-1].hash)
    assert [e.seq for e in store.list_audit(after_seq=1, limit=1)] == [2]
    assert [e.seq for e in store.list_audit(request_id="r1")] == [1]


def test_empty_audit_verifies(store: ApprovalStore) -> None:
    report = store.verify_audit()
    assert report.ok and report.events == 0 and report.head == ""


@pytest.mark.parametrize("delete", [False, True], ids=["edited", "deleted"])
def test_audit_tampering_is_detected(store: ApprovalStore, delete: bool) -> None:
    for i in range(4):
        store.append_audit(event("note", data={"i": i}))
    assert store.verify_audit().ok
    tamper(store, 2, delete=delete)
    report = store.verify_audit()
    assert not report.ok
    assert any(("deleted" if delete else "edited") in p for p in report.problems), report.problems


# -- concurrency: threads ---------------------------------------------------------------


def _race(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_threads_race_compare_and_set(store: ApprovalStore) -> None:
    store.put_request(make("r1"))

    def decide(i: int) -> str:
        store.update_request(
            "r1",
            expected_status="pending",
            status="approved",
            decided_by=f"t{i}",
            audit=event("decided", request_id="r1", actor=f"t{i}"),
        )
        return f"t{i}"

    results = _race(8, decide)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if isinstance(r, AlreadyDecided)]
    assert len(winners) == 1 and len(losers) == 7, results
    assert {e.decided_by for e in losers} == set(winners)
    rec = store.get_request("r1")
    assert rec is not None and rec.decided_by == winners[0]
    assert [e.actor for e in store.list_audit()] == winners


def test_threads_race_claim(store: ApprovalStore) -> None:
    results = _race(8, lambda i: store.claim_execution("r1", worker=f"t{i}", at=T0))
    assert sorted(results) == [False] * 7 + [True]


# -- concurrency: processes (each opens the store by URL) -------------------------------
# The workers are spawned once per session and reused: starting a fresh interpreter that
# imports the package costs seconds, the race itself milliseconds. Each task blocks on a
# barrier of the pool's size, so every task of a round runs in a different process.

WORKERS = 8


@pytest.fixture(scope="session")
def spawn_pool() -> Iterator[tuple[Any, Any]]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WORKERS) as pool:
        yield pool, manager


def _process_race(url: str, request_id: str, i: int, barrier: Any) -> tuple[int, str, bool, int]:
    with open_store(url) as store:
        barrier.wait(timeout=60)
        try:
            store.update_request(
                request_id,
                expected_status="pending",
                status="approved",
                decided_by=f"p{i}",
                audit=event("decided", request_id=request_id, actor=f"p{i}"),
            )
            cas = "won"
        except AlreadyDecided as exc:
            cas = f"lost:{exc.decided_by}"
        barrier.wait(timeout=60)
        claimed = store.claim_execution(request_id, worker=f"p{i}", at=T0)
        return i, cas, claimed, os.getpid()


def _process_append(url: str, n: int, i: int, barrier: Any) -> tuple[int, int, int]:
    with open_store(url) as store:
        barrier.wait(timeout=60)
        for k in range(n):
            store.append_audit(event("note", actor=f"p{i}", data={"p": i, "k": k}))
        return i, n, os.getpid()


def _run_processes(
    spawn_pool: tuple[Any, Any], n: int, target: Any, *args: Any
) -> list[tuple[Any, ...]]:
    """Run ``target(*args, i, barrier)`` for ``i`` in ``range(n)``, in ``n`` processes at once."""
    assert n <= WORKERS
    pool, manager = spawn_pool
    barrier = manager.Barrier(n)
    pending = [pool.apply_async(target, (*args, i, barrier)) for i in range(n)]
    try:
        results = sorted(r.get(timeout=120) for r in pending)
    except Exception:
        barrier.abort()  # release the workers still waiting
        raise
    assert len({r[-1] for r in results}) == n, "every task must run in its own process"
    return results


SHARED = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.slow
@pytest.mark.parametrize("store_url", SHARED, indirect=True)
def test_processes_race_compare_and_set_and_claim(
    store_url: str, spawn_pool: tuple[Any, Any]
) -> None:
    with open_store(store_url) as store:
        store.put_request(make("r1"))
    results = _run_processes(spawn_pool, 8, _process_race, store_url, "r1")
    cas = [r[1] for r in results]
    assert cas.count("won") == 1, results
    winner = f"p{cas.index('won')}"
    assert sorted(cas) == sorted(["won"] + [f"lost:{winner}"] * 7), results
    assert [r[2] for r in results].count(True) == 1, results
    with open_store(store_url) as store:
        rec = store.get_request("r1")
        assert rec is not None and rec.decided_by == winner
        assert [e.actor for e in store.list_audit()] == [winner]
        assert store.verify_audit().ok


@pytest.mark.slow
@pytest.mark.parametrize("store_url", SHARED, indirect=True)
def test_processes_append_audit_concurrently(store_url: str, spawn_pool: tuple[Any, Any]) -> None:
    n = 25
    with open_store(store_url):
        pass  # creates the tables before the workers race
    results = _run_processes(spawn_pool, 4, _process_append, store_url, n)
    assert [r[:2] for r in results] == [(i, n) for i in range(4)]
    with open_store(store_url) as store:
        report = store.verify_audit()
        assert report.ok, report.problems
        assert report.events == 4 * n
        seen = sorted((e.data["p"], e.data["k"]) for e in store.list_audit())
        assert seen == [(i, k) for i in range(4) for k in range(n)]


# -- SQL backends: setup, URLs and errors -----------------------------------------------


def test_setup_is_idempotent(store: ApprovalStore) -> None:
    store.put_request(make("r1"))
    store.setup()
    store.setup()
    assert store.get_request("r1") == make("r1")


def test_sqlite_urls(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from hitl_langgraph.store.sqlite import SqliteStore

    monkeypatch.chdir(tmp_path)
    rel = SqliteStore.from_url("sqlite:///rel.db")
    assert rel.path == "rel.db"
    absolute = SqliteStore.from_url(f"sqlite:///{tmp_path}/abs.db?timeout=2.5")
    assert absolute.path == f"{tmp_path}/abs.db" and absolute.timeout == 2.5
    for bad in ["sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///x.db?mode=ro"]:
        with pytest.raises(ConfigurationError):
            SqliteStore.from_url(bad)
    with open_store("sqlite:///:memory:") as mem:
        mem.put_request(make("r1"))
        assert mem.count_requests() == 1
    with open_store("sqlite:///rel.db") as st:
        st.put_request(make("r1"))
    assert (tmp_path / "rel.db").exists()


def test_sqlite_shares_a_file_with_other_tables(tmp_path: Any) -> None:
    db = tmp_path / "shared.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE checkpoints (thread_id TEXT, checkpoint BLOB)")
    conn.commit()
    conn.close()
    with open_store(f"sqlite:///{db}") as st:
        st.put_request(make("r1"))
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert tables == {"checkpoints", "hitl_requests", "hitl_executions", "hitl_audit"} | {
        "hitl_migrations",
        "hitl_review_samples",
        "hitl_reviews",
        "hitl_outbox",
        "hitl_audit_heads",
        "hitl_audit_counter",
    }
    assert mode == "wal"


def test_sqlite_errors_say_what_to_do(tmp_path: Any) -> None:
    from hitl_langgraph.store.sqlite import SqliteStore

    st = SqliteStore(tmp_path / "fresh.db")
    with pytest.raises(StoreError, match=r"setup\(\)"):
        st.get_request("r1")
    st.close()
    with pytest.raises(StoreError, match="directory"):
        SqliteStore(tmp_path / "missing" / "x.db").setup()
    st = SqliteStore(tmp_path / "x.db")
    st.setup()
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        st.put_request(make("r1", created_at=datetime(2025, 1, 1)))
    st.close()


@pytest.mark.postgres
def test_postgres_errors_say_what_to_do(postgres_schema_url: str) -> None:
    from hitl_langgraph.store.postgres import PostgresStore

    st = PostgresStore(postgres_schema_url)
    try:
        with pytest.raises(StoreError, match=r"setup\(\)"):
            st.get_request("r1")
    finally:
        st.close()
    with pytest.raises(StoreError, match=r"closed; open a new one"):
        st.get_request("r1")
    with pytest.raises(StoreError, match="could not connect") as info:
        PostgresStore("postgresql://postgres:secret@127.0.0.1:1/none", connect_timeout=1)
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigurationError):
        PostgresStore.from_url("mysql://x")
