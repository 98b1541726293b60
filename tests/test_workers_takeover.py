"""Several workers share the Postgres store and checkpointer; one is SIGKILLed mid-apply.

Two survivor processes poll ``Inbox.apply_decided()``; a victim process takes a recorded
decision and is killed at one of its kill points (tests/takeover_workers.py):

* ``claimed`` (same host): it holds the resume claim and its gate's claim, the tool never
  started. A survivor sees the dead pid and takes both over at once: one execution.
* ``started`` (same host): the tool's side effect happened, its outcome was never
  recorded. A survivor takes the resume over and finds the action held
  (``ExecutionHeld``); the operator settles it (``hitl recover --mark-done``) and a
  survivor finishes the thread, still one execution.
* ``claimed`` on "another host" (its worker ids carry another hostname, so no pid can be
  checked): the survivors wait out the resume claim's ``stale_after`` (3 s here) and the
  gate claim's ``claim_grace`` (2 s, default), then take over.

It prints the time from the kill to the recorded outcome of each case (README,
"Several workers").
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import FileLedger, build_app, interrupted, open_checkpointer, transfer
from takeover_workers import survivor_process, victim_process

from hitl_langgraph import open_store
from hitl_langgraph.inbox import Inbox, Reviewer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STALE_AFTER = 3.0
CASES = (("claimed", None), ("started", None), ("claimed", "elsewhere.example"))
ALICE = Reviewer("alice", {"finance"})


def _wait(what: str, ok: Any, procs: list[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        dead = [p.exitcode for p in procs if not p.is_alive()]
        if dead or time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} (dead workers' exit codes: {dead})")
        time.sleep(0.02)


def test_killed_worker_is_taken_over_exactly_once(postgres_schema_url: str, tmp_path: Path) -> None:
    url = postgres_schema_url
    ledger_path = str(tmp_path / "ledger.jsonl")
    store = open_store(url)
    saver = open_checkpointer("postgres", url)
    threads: list[tuple[dict[str, Any], str]] = []
    for k in range(len(CASES)):
        app = build_app(store, saver, FileLedger(ledger_path), transfer(9_000 + k, f"p{k}"))
        cfg, _, rid = interrupted(app)
        threads.append((cfg, rid))

    ctx = multiprocessing.get_context("spawn")
    base = {"store_url": url, "ledger": ledger_path, "stale_after": str(STALE_AFTER)}
    run, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    idles = [ctx.Event() for _ in range(2)]
    survivors = [
        ctx.Process(target=survivor_process, args=(base, f"s{i}", run, idles[i], stop, results))
        for i in range(2)
    ]
    victims = []
    for (kill_at, host), (_, rid) in zip(CASES, threads, strict=True):
        setup = {**base, "kill_at": kill_at, "request_id": rid, "host": host or ""}
        go, reached = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=victim_process, args=(setup, go, reached))
        victims.append((proc, go, reached))
    procs = [*survivors, *(p for p, _, _ in victims)]
    for p in procs:
        p.start()
    seen: list[tuple[str, str | None, str, float]] = []

    def drain() -> None:
        while True:
            try:
                seen.append(results.get_nowait())
            except queue.Empty:
                return

    def outcome(rid: str, what: str) -> float | None:
        drain()
        return min((t for _, r, out, t in seen if r == rid and out.startswith(what)), default=None)

    figures: dict[str, float] = {}
    reviewer_side = Inbox(store)
    try:
        _wait("the survivors to start", lambda: len((drain(), seen)[1]) >= 2, survivors, 120)
        for (kill_at, host), (_, rid), (victim, go, reached) in zip(
            CASES, threads, victims, strict=True
        ):
            run.clear()  # the victim, alone, takes the decision
            for idle in idles:
                idle.clear()
            _wait("the survivors to pause", lambda: all(i.is_set() for i in idles), survivors)
            reviewer_side.approve(rid, reviewer=ALICE)
            go.set()
            _wait(f"the victim to reach {kill_at}", reached.is_set, [*survivors, victim])
            killed = time.time()
            os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]
            victim.join(10)
            run.set()
            label = f"{kill_at}, {'another host' if host else 'same host'}"
            if kill_at == "started":
                _wait(
                    "the held execution", lambda rid=rid: outcome(rid, "ExecutionHeld"), survivors
                )
                figures[f"{label}: held"] = outcome(rid, "ExecutionHeld") - killed  # type: ignore[operator]
                assert store.get_execution(rid).state == "started"  # type: ignore[union-attr]
                # the operator checks the ledger: the transfer happened
                assert FileLedger(ledger_path).count("transfer_funds") == 2
                Inbox(store).recover(rid, "mark_done", by="operator")
                settled = time.time()
                _wait("the settled apply", lambda rid=rid: outcome(rid, "applied"), survivors)
                figures[f"{label}: applied after recover"] = outcome(rid, "applied") - settled  # type: ignore[operator]
            else:
                _wait("the takeover", lambda rid=rid: outcome(rid, "applied"), survivors)
                figures[f"{label}: applied"] = outcome(rid, "applied") - killed  # type: ignore[operator]
    finally:
        stop.set()
        for p in procs:
            if p.is_alive() and p in survivors:
                p.join(20)
            if p.is_alive():
                p.kill()
                p.join(5)

    print("\ntakeover after SIGKILL (kill -> outcome recorded, survivors poll every 0.1 s):")
    for label, secs in figures.items():
        print(f"  {label:45} {secs:6.2f} s")

    drain()
    applied = Counter(r for _, r, out, _ in seen if out == "applied")
    ledger = FileLedger(ledger_path).entries
    for cfg, rid in threads:
        assert applied[rid] == 1, (rid, seen)
        assert store.get_request(rid).status == "approved"  # type: ignore[union-attr]
        assert store.get_execution(rid).state == "done"  # type: ignore[union-attr]
        assert store.get_execution(f"resume:{rid}").state == "done"  # type: ignore[union-attr]
        to = [args["to"] for name, args in ledger if name == "transfer_funds"]
        state = build_app(store, saver, FileLedger(ledger_path)).get_state(cfg)
        assert state.interrupts == () and state.next == ()
        tool_msgs = [m for m in state.values["messages"] if m.type == "tool"]
        assert len(tool_msgs) == 1, tool_msgs
    assert sorted(to) == ["p0", "p1", "p2"]  # exactly one execution per request
    events = Counter(e.event for e in store.list_audit())
    assert events["applied"] == len(CASES) and events["recovered"] == 1
    assert events["claim_released"] == 2  # the two gate claims that never started
    assert store.verify_audit().ok
    store.close()
