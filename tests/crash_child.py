"""Child process of the crash matrix (tests/test_faults_crash.py).

``python crash_child.py run BOUNDARY SETUP_JSON``: start a gated run, approve it, and
SIGKILL this process at BOUNDARY (the test-only hook: the store, ledger and checkpointer
of this process are wrapped so the kill lands exactly there).

``python crash_child.py recover SETUP_JSON``: a fresh process recovers the way an
operator would - ``reconcile``, re-drive an unfinished thread, decide what is still
pending, settle a held execution with one ``recover`` call after checking the side
effect - and prints what it finds as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inbox_graphs import FileLedger, build_app, open_checkpointer, transfer

from hitl_langgraph import open_store
from hitl_langgraph.errors import HitlError
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.store import RequestFilter

BOUNDARIES = ("pause", "decide", "resume", "claim", "start", "run", "record", "checkpoint")
RITA = Reviewer("rita", {"finance"})
CFG: dict[str, Any] = {"configurable": {"thread_id": "crash-thread", "user_id": "carol"}}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(obj: Any, name: str, after: Any) -> None:
    orig = getattr(obj, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        out = orig(*args, **kwargs)
        after(out, *args, **kwargs)
        return out

    setattr(obj, name, wrapped)


def _setup(setup: dict[str, str], boundary: str | None) -> tuple[Any, Any, FileLedger]:
    CFG["configurable"]["thread_id"] = setup.get("thread", "crash-thread")
    store = open_store(setup["store_url"])
    saver = open_checkpointer(setup["cp_kind"], setup["cp_where"])
    ledger = FileLedger(setup["ledger"])
    state = {"decided": False, "recorded": False}

    def gate(b: str) -> bool:
        return boundary == b

    if boundary is not None:
        _wrap(store, "put_request", lambda out, *a, **k: gate("pause") and out[1] and die())

        def on_update(out: Any, *a: Any, **k: Any) -> None:
            if k.get("status") == "approved":
                state["decided"] = True
                if gate("decide"):
                    die()

        _wrap(store, "update_request", on_update)
        _wrap(
            store,
            "get_request",
            lambda out, *a, **k: gate("resume") and state["decided"] and die(),
        )
        _wrap(
            store,
            "claim_execution",
            lambda out, rid, **k: gate("claim") and out and rid.startswith("req_") and die(),
        )
        _wrap(store, "start_execution", lambda out, *a, **k: gate("start") and out and die())
        _wrap(ledger, "add", lambda out, *a, **k: gate("run") and die())

        def on_finish(out: Any, rid: str, **k: Any) -> None:
            if rid.startswith("req_") and k.get("state") == "done":
                state["recorded"] = True
                if gate("record"):
                    die()

        _wrap(store, "finish_execution", on_finish)
        _wrap(
            saver,
            "put",
            lambda out, *a, **k: gate("checkpoint") and state["recorded"] and die(),
        )
    app = build_app(store, saver, ledger, transfer(9_000, "bob"))
    return store, app, ledger


def run(boundary: str, setup: dict[str, str]) -> None:
    store, app, _ = _setup(setup, boundary)
    # durability="sync": a step's checkpoint is saved before the next step starts (with
    # the default "async" a kill can also lose the model's tool call itself)
    out = app.invoke({"messages": [("user", "pay bob")]}, CFG, durability="sync")
    rid = out["__interrupt__"][0].value["action_requests"][0]["request_id"]
    Inbox(store, app).approve(rid, reviewer=RITA)
    print(json.dumps({"finished_without_crash": True}))


def _thread_state(app: Any) -> tuple[tuple[str, ...], int]:
    st = app.get_state(CFG)
    return tuple(st.next), len(st.interrupts)


def recover(setup: dict[str, str]) -> None:
    store, app, ledger = _setup(setup, None)
    inbox = Inbox(store, app)
    notes: list[str] = []
    for _ in range(4):
        report = inbox.reconcile(grace=timedelta(0))
        skip = ("checked_requests", "checked_threads")
        notes += [f"reconcile:{k}" for k, v in report.to_dict().items() if v and k not in skip]
        nxt, n_intr = _thread_state(app)
        if not nxt and not app.get_state(CFG).values:
            # crashed before the first checkpoint: the app starts the run again
            app.invoke({"messages": [("user", "pay bob")]}, CFG)
            notes.append("restarted")
            continue
        if nxt and not n_intr:
            try:
                app.invoke(None, CFG)  # the runner re-drives an unfinished step
                notes.append("redriven")
            except HitlError as exc:
                notes.append(f"redrive:{type(exc).__name__}")
        rows = store.list_requests(
            RequestFilter(status=None, thread_id=CFG["configurable"]["thread_id"]), limit=10
        )
        for rec in rows:
            if rec.status == "pending":
                try:
                    inbox.approve(rec.request_id, reviewer=RITA)
                    notes.append("approved")
                except HitlError as exc:
                    notes.append(f"approve:{type(exc).__name__}")
            ex = store.get_execution(rec.request_id)
            if ex is not None and ex.state == "started":
                # the human checks the side effect, then settles it with one command
                done = ledger.count("transfer_funds") > 0
                how = "mark_done" if done else "rerun"
                res = inbox.recover(rec.request_id, how, result="sent 9000 to bob", by="ops")
                notes.append(f"recover:{how}:{'resumed' if res.resumed else res.error}")
        nxt, n_intr = _thread_state(app)
        if not nxt and not n_intr:
            break
    rows = store.list_requests(
        RequestFilter(status=None, thread_id=CFG["configurable"]["thread_id"]), limit=10
    )
    nxt, n_intr = _thread_state(app)
    print(
        json.dumps(
            {
                "ledger": ledger.count("transfer_funds"),
                "statuses": [r.status for r in rows],
                "executions": [
                    getattr(store.get_execution(r.request_id), "state", None) for r in rows
                ],
                "next": list(nxt),
                "interrupts": n_intr,
                "audit_ok": store.verify_audit().ok,
                "notes": notes,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], json.loads(sys.argv[3]))
    else:
        recover(json.loads(sys.argv[2]))
