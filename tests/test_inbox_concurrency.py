"""Exactly once under concurrency: many reviewers, many workers, threads and processes.

Raw LangGraph runs an approved action twice when two resumes race (200 of 200 trials in
the baseline notes). Through the inbox, the status compare-and-set lets exactly one
reviewer's decision through and only that one resumes; the others get AlreadyDecided.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import (
    FileLedger,
    MemLedger,
    apply_worker_process,
    build_app,
    interrupted,
    open_checkpointer,
    reviewer_process,
    transfer,
)

from hitl_langgraph import AlreadyDecided, open_store
from hitl_langgraph.inbox import Inbox, Reviewer

REVIEWERS = 8


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Store URL and checkpointer location, both on SQLite files or both on Postgres."""
    if request.param == "sqlite":
        return {
            "store_url": f"sqlite:///{tmp_path / 'hitl.db'}",
            "cp_kind": "sqlite",
            "cp_where": str(tmp_path / "checkpoints.db"),
        }
    url: str = request.getfixturevalue("postgres_schema_url")
    return {"store_url": url, "cp_kind": "postgres", "cp_where": url}


@pytest.fixture
def both_backends(request: pytest.FixtureRequest, tmp_path: Path) -> list[dict[str, str]]:
    """SQLite files and Postgres: one set of spawned processes serves both (starting eight
    interpreters costs more than the trials themselves). Needs Postgres: without it the
    test skips visibly (fails under HITL_REQUIRE) rather than passing on SQLite alone."""
    url: str = request.getfixturevalue("postgres_schema_url")
    return [
        {
            "store_url": f"sqlite:///{tmp_path / 'hitl.db'}",
            "cp_kind": "sqlite",
            "cp_where": str(tmp_path / "checkpoints.db"),
            "ledger": str(tmp_path / "ledger-sqlite.jsonl"),
        },
        {
            "store_url": url,
            "cp_kind": "postgres",
            "cp_where": url,
            "ledger": str(tmp_path / "ledger-postgres.jsonl"),
        },
    ]


def _collect(results: Any, n: int, procs: list[Any], timeout: float = 180) -> list[Any]:
    """``n`` results from the children; fails fast (with exit codes) if they die."""
    import queue
    import time

    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            got.append(results.get(timeout=0.5))
        except queue.Empty:
            if all(not p.is_alive() for p in procs) or time.monotonic() > deadline:
                codes = [p.exitcode for p in procs]
                pytest.fail(f"worker processes ended early (exit codes {codes}); got {got}")
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return got


def _race(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)
        except AlreadyDecided as exc:
            out[i] = exc
        except Exception as exc:  # recorded and asserted on below
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_parallel_reviewers_in_threads_execute_once(backend: dict[str, str]) -> None:
    store = open_store(backend["store_url"])
    saver = open_checkpointer(backend["cp_kind"], backend["cp_where"])
    ledger = MemLedger()
    app = build_app(store, saver, ledger, transfer())
    inbox = Inbox(store, app)
    trials = 3
    for _ in range(trials):
        cfg, _, rid = interrupted(app)
        reviewers = [Reviewer(f"r{i}", {"finance"}) for i in range(REVIEWERS)]
        out = _race(REVIEWERS, lambda i, rid=rid, rs=reviewers: inbox.approve(rid, reviewer=rs[i]))
        wins = [r for r in out if not isinstance(r, Exception)]
        losers = [r for r in out if isinstance(r, AlreadyDecided)]
        assert len(wins) == 1 and len(losers) == REVIEWERS - 1, out
        assert wins[0].resumed
        winner = wins[0].record.decided_by
        assert all(e.decided_by == winner and winner in str(e) for e in losers)
        assert app.get_state(cfg).interrupts == ()
    assert ledger.count("transfer_funds") == trials
    store.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_parallel_reviewers_in_processes_execute_once(both_backends: list[dict[str, str]]) -> None:
    plan = []
    for setup in both_backends:
        store = open_store(setup["store_url"])
        saver = open_checkpointer(setup["cp_kind"], setup["cp_where"])
        app = build_app(store, saver, FileLedger(setup["ledger"]), transfer())
        plan.append((setup, [interrupted(app)[2] for _ in range(3)]))
        store.close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(REVIEWERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=reviewer_process, args=(plan, f"r{i}", barrier, results))
        for i in range(REVIEWERS)
    ]
    for p in procs:
        p.start()
    got = _collect(results, REVIEWERS * sum(len(rids) for _, rids in plan), procs)
    for setup, rids in plan:
        store = open_store(setup["store_url"])
        for rid in rids:
            outcomes = [out for r, _, out in got if r == rid]
            assert outcomes.count("resumed") == 1, (setup["cp_kind"], outcomes)
            winner = store.get_request(rid).decided_by  # type: ignore[union-attr]
            assert outcomes.count(f"AlreadyDecided:{winner}") == REVIEWERS - 1, outcomes
        assert FileLedger(setup["ledger"]).count("transfer_funds") == len(rids), setup
        assert store.verify_audit().ok
        store.close()


def _record_decisions(store: Any, app: Any, n: int) -> list[str]:
    reviewer_side = Inbox(store)
    rids = []
    for i in range(n):
        _, _, rid = interrupted(app)
        if i % 3 == 2:
            reviewer_side.reject(rid, reviewer=Reviewer("alice", {"finance"}), reason="no")
        else:
            reviewer_side.approve(rid, reviewer=Reviewer("alice", {"finance"}))
        rids.append(rid)
    return rids


def test_workers_in_threads_apply_each_decision_once(backend: dict[str, str]) -> None:
    store = open_store(backend["store_url"])
    saver = open_checkpointer(backend["cp_kind"], backend["cp_where"])
    ledger = MemLedger()
    app = build_app(store, saver, ledger, transfer())
    rids = _record_decisions(store, app, 9)
    assert ledger.entries == []
    workers = [Inbox(store, app) for _ in range(4)]
    reports = _race(4, lambda i: workers[i].apply_decided())
    applied = Counter(rid for rep in reports for rid in rep.applied)
    assert sorted(applied) == sorted(rids) and set(applied.values()) == {1}, reports
    assert ledger.count("transfer_funds") == 6  # 6 approved, 3 rejected
    events = Counter(e.event for e in store.list_audit())
    assert events["applied"] == 9 and events["executed"] == 6
    store.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_in_processes_apply_each_decision_once(
    both_backends: list[dict[str, str]],
) -> None:
    expected = {}
    for setup in both_backends:
        store = open_store(setup["store_url"])
        saver = open_checkpointer(setup["cp_kind"], setup["cp_where"])
        app = build_app(store, saver, FileLedger(setup["ledger"]), transfer())
        expected[setup["cp_kind"]] = _record_decisions(store, app, 9)
        store.close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=apply_worker_process, args=(both_backends, barrier, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    got = _collect(results, 2 * len(both_backends), procs)
    for setup in both_backends:
        kind = setup["cp_kind"]
        mine = [(ids, errors) for k, ids, errors in got if k == kind]
        applied = Counter(rid for ids, _ in mine for rid in ids)
        assert sorted(applied) == sorted(expected[kind]), (kind, mine)
        assert set(applied.values()) == {1} and all(not e for _, e in mine), (kind, mine)
        assert FileLedger(setup["ledger"]).count("transfer_funds") == 6, kind


def test_sqlite_checkpointer_file_is_shared(tmp_path: Path) -> None:
    """Guard for the fixtures above: a second connection sees the interrupted thread."""
    saver = open_checkpointer("sqlite", str(tmp_path / "cp.db"))
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    app = build_app(store, saver, MemLedger(), transfer())
    cfg, intr, _ = interrupted(app)
    other = build_app(store, open_checkpointer("sqlite", str(tmp_path / "cp.db")), MemLedger())
    assert [i.id for i in other.get_state(cfg).interrupts] == [intr.id]
    sqlite3.connect(tmp_path / "cp.db").close()
    store.close()
