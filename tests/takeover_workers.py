"""Worker processes of tests/test_workers_takeover.py (importable by "spawn").

A *victim* applies recorded decisions until it reaches its kill point, tells the test,
and then hangs until the test SIGKILLs it:

* ``claimed``: right after its gate claimed the action (``running``), before the tool;
* ``started``: inside the tool, after its side effect (the ledger line) happened.

A *survivor* polls ``Inbox.apply_decided()`` while the test lets it run, and reports
every applied request and every error with the wall-clock time it saw it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from inbox_graphs import FileLedger, build_app, open_checkpointer

from hitl_langgraph import open_store
from hitl_langgraph.inbox import Inbox

POLL = 0.1
"""Seconds a survivor sleeps between two ``apply_decided()`` calls."""


class _HangingLedger(FileLedger):
    """The tool's side effect is written, then the tool hangs (mid-apply)."""

    def __init__(self, path: str, reached: Any) -> None:
        super().__init__(path)
        self.reached = reached

    def add(self, name: str, /, **args: Any) -> None:
        super().add(name, **args)
        self.reached.set()
        time.sleep(3600)


def victim_process(setup: dict[str, str], go: Any, reached: Any) -> None:
    """Apply decisions after ``go``; hang at ``setup["kill_at"]`` (see the module doc)."""
    store = open_store(setup["store_url"])
    saver = open_checkpointer("postgres", setup["store_url"])
    kill_at, rid = setup["kill_at"], setup["request_id"]
    ledger: FileLedger = (
        _HangingLedger(setup["ledger"], reached)
        if kill_at == "started"
        else FileLedger(setup["ledger"])
    )
    if kill_at == "claimed":
        claim = store.claim_execution

        def claim_then_hang(request_id: str, *, worker: str, at: Any) -> bool:
            won = claim(request_id, worker=worker, at=at)
            if won and request_id == rid:
                reached.set()
                time.sleep(3600)
            return won

        store.claim_execution = claim_then_hang  # type: ignore[method-assign]
    host = setup.get("host")
    app = build_app(store, saver, ledger, worker_id=f"{host}:4242:gate" if host else None)
    inbox = Inbox(store, app, worker_id=f"{host}:4242:inbox" if host else None)
    go.wait(timeout=120)
    while True:
        inbox.apply_decided(limit=1)
        time.sleep(0.05)


def survivor_process(
    setup: dict[str, str], name: str, run: Any, idle: Any, stop: Any, results: Any
) -> None:
    """Poll ``apply_decided()`` while ``run`` is set; ``idle`` is set between calls while
    it is not. Puts ``(name, request_id, "applied" | error, wall-clock time)``."""
    store = open_store(setup["store_url"])
    app = build_app(
        store, open_checkpointer("postgres", setup["store_url"]), FileLedger(setup["ledger"])
    )
    inbox = Inbox(store, app, stale_after=timedelta(seconds=float(setup["stale_after"])))
    results.put((name, None, "ready", time.time()))
    while not stop.is_set():
        if not run.is_set():
            idle.set()
            time.sleep(0.02)
            continue
        report = inbox.apply_decided()
        now = time.time()
        for rid in report.applied:
            results.put((name, rid, "applied", now))
        for rid, err in report.errors.items():
            results.put((name, rid, err, now))
        time.sleep(POLL)
    store.close()
