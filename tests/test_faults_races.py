"""Racing resumes and racing recoveries, in threads and in processes (SQLite, Postgres).

* Resumes: one decision recorded, then several actors resume the same interrupt at the
  same moment (each with its own store and checkpointer connection): the tool runs once.
* Recoveries: a tool started by a worker that died; several reconciles race (each is
  refused with ``ExecutionHeld`` and runs nothing), then several operators race to settle
  it: one ``recover`` wins, the tool never runs twice, the thread finishes.

``HITL_FAULT_TRIALS`` multiplies the trials (default 1: 6 requests per race kind).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fault_report import record
from inbox_graphs import FileLedger, build_app, interrupted, open_checkpointer, transfer

from hitl_langgraph import NothingToRecover, open_store
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.inbox._graph import resume_command

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TRIALS = 6 * int(os.environ.get("HITL_FAULT_TRIALS", "1"))
ACTORS = 4
RITA = Reviewer("rita", {"finance"})
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    ledger = str(tmp_path / "ledger.jsonl")
    if request.param == "sqlite":
        return {
            "store_url": f"sqlite:///{tmp_path / 'hitl.db'}",
            "cp_kind": "sqlite",
            "cp_where": str(tmp_path / "cp.db"),
            "ledger": ledger,
            "backend": "sqlite",
        }
    url: str = request.getfixturevalue("postgres_schema_url")
    return {
        "store_url": url,
        "cp_kind": "postgres",
        "cp_where": url,
        "ledger": ledger,
        "backend": "postgres",
    }


def _app(setup: dict[str, str], first: Any = None) -> tuple[Any, Any]:
    store = open_store(setup["store_url"])
    app = build_app(
        store,
        open_checkpointer(setup["cp_kind"], setup["cp_where"]),
        FileLedger(setup["ledger"]),
        first,
    )
    return store, app


def resume_actor(setup: dict[str, str], jobs: list[tuple[str, str, Any]], barrier: Any) -> None:
    """Resume each (thread, interrupt, decision) at the same moment as the other actors."""
    store, app = _app(setup)
    for thread, iid, decision in jobs:
        barrier.wait(timeout=120)
        # a racing actor may find the step already done or in flight
        with contextlib.suppress(Exception):
            app.invoke(resume_command(iid, decision), {"configurable": {"thread_id": thread}})
    store.close()


def recover_actor(setup: dict[str, str], rids: list[str], barrier: Any, out: Any) -> None:
    store, app = _app(setup)
    inbox = Inbox(store, app)
    for rid in rids:
        barrier.wait(timeout=120)
        inbox.reconcile(grace=timedelta(0))  # refused: held, runs nothing
        barrier.wait(timeout=120)
        try:
            res = inbox.recover(rid, "mark_done", result="sent", by=f"op{os.getpid()}")
            out.put((rid, "ok" if res.resumed else f"error:{res.error}"))
        except NothingToRecover:
            out.put((rid, "refused"))
    store.close()


def _paused(setup: dict[str, str], n: int) -> tuple[Any, Any, list[tuple[dict[str, Any], str]]]:
    store, app = _app(setup, transfer())
    runs = [interrupted(app) for _ in range(n)]
    return store, app, [(cfg, rid) for cfg, _, rid in runs]


def _run(target: Any, args: list[tuple[Any, ...]], mode: str) -> None:
    if mode == "threads":
        workers: list[Any] = [threading.Thread(target=target, args=a) for a in args]
    else:
        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=target, args=a) for a in args]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_racing_resumes_run_the_tool_once(
    setup: dict[str, str], mode: str, request: pytest.FixtureRequest
) -> None:
    store, app, runs = _paused(setup, TRIALS)
    inbox = Inbox(store)  # records only; the racing actors resume
    jobs = []
    for cfg, rid in runs:
        inbox.approve(rid, reviewer=RITA)
        rec = store.get_request(rid)
        jobs.append((cfg["configurable"]["thread_id"], rec.interrupt_id, rec.decision))
    barrier: Any = (
        threading.Barrier(ACTORS)
        if mode == "threads"
        else multiprocessing.get_context("spawn").Barrier(ACTORS)
    )
    _run(resume_actor, [(setup, jobs, barrier)] * ACTORS, mode)
    executed = FileLedger(setup["ledger"]).count("transfer_funds")
    done = sum(1 for _, rid in runs if getattr(store.get_execution(rid), "state", "") == "done")
    counts = {
        "lost": len(runs) - done,
        "duplicated": max(0, executed - len(runs)),
        "stuck": sum(1 for cfg, _ in runs if app.get_state(cfg).next),
    }
    summary = (
        f"{setup['backend']}: {len(runs)} resume races of {ACTORS} {mode}: "
        f"{counts['lost']} lost, {counts['duplicated']} duplicated, {counts['stuck']} stuck"
    )
    record(request.config, summary)
    assert counts == {"lost": 0, "duplicated": 0, "stuck": 0}, summary
    assert store.verify_audit().ok


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_racing_recoveries_settle_once(
    setup: dict[str, str], mode: str, request: pytest.FixtureRequest
) -> None:
    import subprocess

    store, app, runs = _paused(setup, max(2, TRIALS // 2))
    child = subprocess.Popen(["true"])
    child.wait()
    gone = f"{__import__('socket').gethostname()}:{child.pid}:gone"
    for _, rid in runs:
        store.claim_execution(rid, worker=gone, at=T0)
        store.start_execution(rid, worker=gone, at=T0)
        Inbox(store).approve(rid, reviewer=RITA)
    rids = [rid for _, rid in runs]
    if mode == "threads":
        barrier: Any = threading.Barrier(ACTORS)
        import queue

        out: Any = queue.Queue()
    else:
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(ACTORS), ctx.Queue()
    _run(recover_actor, [(setup, rids, barrier, out)] * ACTORS, mode)
    results = [out.get(timeout=60) for _ in range(ACTORS * len(rids))]
    ok = {rid: sum(1 for r, o in results if r == rid and o == "ok") for rid in rids}
    ledger = FileLedger(setup["ledger"])
    stuck = sum(1 for cfg, _ in runs if app.get_state(cfg).next)
    summary = (
        f"{setup['backend']}: {len(rids)} recovery races of {ACTORS} {mode}: "
        f"{sum(v != 1 for v in ok.values())} not settled exactly once, "
        f"{ledger.count('transfer_funds')} re-run, {stuck} stuck"
    )
    record(request.config, summary)
    assert all(v == 1 for v in ok.values()), (summary, results)
    assert ledger.count("transfer_funds") == 0 and stuck == 0, summary
    recovered = [e for e in store.list_audit() if e.event == "recovered"]
    assert len(recovered) == len(rids) and store.verify_audit().ok
