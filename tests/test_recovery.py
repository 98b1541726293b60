"""Crash recovery that never wedges and never guesses (issue 10, part 4).

The journal tells a claim that never started from a started tool; a claim is taken over,
a start is held for a human who settles it with one ``recover``; reconcile keeps rows a
re-driven run asks for again; the tool gets an idempotency key.
"""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import FileLedger, build_app, interrupted, open_checkpointer, transfer
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from test_cli import Env

from hitl_langgraph import (
    ExecutionHeld,
    ExecutionInProgress,
    GatedToolNode,
    NothingToRecover,
    RiskPolicy,
    Rule,
    idempotency_key,
)
from hitl_langgraph.gates.engine import GateEngine, Resolution
from hitl_langgraph.gates.payload import GateItem
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.inbox._base import RESUME_MARK
from hitl_langgraph.policy.action import Action
from hitl_langgraph.store import ApprovalStore, MemoryStore, RequestFilter
from hitl_langgraph.store.sqlite import MIGRATIONS, SqliteStore
from hitl_langgraph.testing import ScriptedChatModel, tool_call

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RITA = Reviewer("rita", {"finance"})
POLICY = RiskPolicy(rules=[Rule(tool="pay", score=0.9)])


def dead_worker() -> str:
    """A worker id of this host whose process has exited (and was reaped)."""
    import socket

    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:gone"


def resolution(n: int = 1) -> Resolution:
    action = Action(tool="pay", args={"n": n}, tool_call_id=f"c{n}")
    item = GateItem(
        key=f"0:c{n}",
        request_id=f"req_unit{n}",
        tool_call={"name": "pay", "args": {"n": n}, "id": f"c{n}"},
        assessment=POLICY.assess(action),
    )
    return Resolution(item, "run", True, dict(item.tool_call))


CFG: dict[str, Any] = {"configurable": {"thread_id": "t1"}}


# -- the journal states, every backend ----------------------------------------------------


def test_start_is_a_compare_and_set_on_the_claimer(store: ApprovalStore) -> None:
    assert store.claim_execution("r1", worker="w1", at=T0)
    assert not store.start_execution("r1", worker="w2", at=T0)  # not the claimer
    assert store.release_execution("r1", worker="w1")  # taken over...
    assert not store.start_execution("r1", worker="w1", at=T0)  # ...so w1 never starts
    assert store.claim_execution("r1", worker="w2", at=T0)
    later = T0 + timedelta(seconds=1)
    assert store.start_execution("r1", worker="w2", at=later)
    assert not store.start_execution("r1", worker="w2", at=later)  # once
    ex = store.get_execution("r1")
    assert ex is not None and (ex.state, ex.worker, ex.started_at) == ("started", "w2", later)
    # a started row is never released by the crash-release path
    assert not store.release_execution("r1") and not store.release_execution("r1", worker="w2")
    # finishing can be made conditional on the state
    assert not store.finish_execution("r1", state="done", at=later, expected_state="running")
    assert store.get_execution("r1").state == "started"  # type: ignore[union-attr]
    assert store.finish_execution("r1", state="failed", at=later, expected_state="started")
    assert not store.reopen_execution("r1", expected_state=("started",))
    assert store.reopen_execution("r1", expected_state=("failed",))
    assert store.get_execution("r1") is None


def test_migration_holds_legacy_gate_claims(tmp_path: Path) -> None:
    """A database from before the started mark: its gate claims may have started."""
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE hitl_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for version, script in enumerate(MIGRATIONS[:2], start=1):
        conn.executescript(script)
        conn.execute("INSERT INTO hitl_migrations VALUES (?, 'then')", (version,))
    for rid in ("req_abc", "resume:req_abc", "reqx"):
        conn.execute(
            "INSERT INTO hitl_executions (request_id, state, worker, started_at) "
            "VALUES (?, 'running', 'old', '2026-01-01T00:00:00.000000Z')",
            (rid,),
        )
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    store.setup()
    store.setup()  # idempotent
    states = {r: store.get_execution(r).state for r in ("req_abc", "resume:req_abc", "reqx")}  # type: ignore[union-attr]
    assert states == {"req_abc": "started", "resume:req_abc": "running", "reqx": "running"}
    store.close()


# -- the engine ---------------------------------------------------------------------------


def test_a_claim_that_never_started_is_taken_over_and_run_once(store: ApprovalStore) -> None:
    calls: list[int] = []
    res = resolution()
    store.claim_execution(res.request_id, worker=dead_worker(), at=T0)
    engine = GateEngine(POLICY, store)
    out = engine.run_once(res, lambda: calls.append(1) or "paid", config=CFG)
    assert (out, calls) == ("paid", [1])
    assert engine.run_once(res, lambda: calls.append(1) or "again", config=CFG) == "paid"
    assert calls == [1]
    events = [e.event for e in store.list_audit(request_id=res.request_id)]
    assert events == ["claim_released", "executed"]


def test_a_stale_claim_of_a_live_worker_is_taken_over_after_the_grace() -> None:
    store = MemoryStore()
    res = resolution()
    store.claim_execution(res.request_id, worker="other-host:1:x", at=T0)
    engine = GateEngine(POLICY, store, execution_wait=0.0, claim_grace=3600, clock=lambda: T0)
    with pytest.raises(ExecutionInProgress) as err:
        engine.run_once(res, lambda: "paid", config=CFG)
    assert not isinstance(err.value, ExecutionHeld)
    assert "to start it" in str(err.value) and "hitl recover" in str(err.value)
    late = GateEngine(POLICY, store, claim_grace=5, clock=lambda: T0 + timedelta(seconds=6))
    assert late.run_once(res, lambda: "paid", config=CFG) == "paid"


def test_a_started_tool_whose_worker_is_gone_is_held(store: ApprovalStore) -> None:
    res = resolution()
    gone = dead_worker()
    store.claim_execution(res.request_id, worker=gone, at=T0)
    store.start_execution(res.request_id, worker=gone, at=T0)
    calls: list[int] = []
    with pytest.raises(ExecutionHeld) as err:
        GateEngine(POLICY, store).run_once(res, lambda: calls.append(1), config=CFG)
    msg = str(err.value)
    assert calls == [] and err.value.worker == gone
    assert f"hitl recover {res.request_id} --rerun | --mark-done" in msg


def test_a_wait_is_short_and_says_what_it_waits_for(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    res = resolution()
    store.claim_execution(res.request_id, worker="other-host:1:x", at=T0)
    store.start_execution(res.request_id, worker="other-host:1:x", at=T0)
    engine = GateEngine(POLICY, store, execution_wait=0.05)
    assert GateEngine(POLICY, store).execution_wait == 5.0
    with caplog.at_level(logging.INFO, "hitl_langgraph"), pytest.raises(ExecutionInProgress):
        engine.run_once(res, lambda: "x", config=CFG)
    assert any("waiting up to" in r.message and "to finish it" in r.message for r in caplog.records)


def test_a_tool_that_raises_releases_the_claim_and_a_retry_runs_it() -> None:
    """An ordinary tool error releases the claim (audited), as a retry without the gate
    would run it again: a node RetryPolicy or a re-invoke succeeds the second time."""
    store = MemoryStore()
    res = resolution()
    engine = GateEngine(POLICY, store)
    calls: list[int] = []

    def flaky() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bank said no")
        return "paid"

    with pytest.raises(RuntimeError):
        engine.run_once(res, flaky, config=CFG)
    assert store.get_execution(res.request_id) is None
    assert engine.run_once(res, flaky, config=CFG) == "paid"
    assert engine.run_once(res, flaky, config=CFG) == "paid"  # a replay: recorded result
    assert calls == [1, 1]
    failed = [e for e in store.list_audit() if e.event == "execution_failed"]
    assert len(failed) == 1 and failed[0].data["message"] == "bank said no"


# -- the idempotency key ------------------------------------------------------------------


def test_the_tool_gets_an_idempotency_key_derived_from_the_request(tmp_path: Path) -> None:
    seen: list[tuple[str | None, str | None]] = []

    @tool
    def pay(amount: int, config: RunnableConfig) -> str:
        """Pay."""
        seen.append((idempotency_key(config), config["configurable"].get("hitl_request_id")))
        return "paid"

    store = SqliteStore(tmp_path / "s.db")
    store.setup()
    model = ScriptedChatModel(
        script=lambda msgs: tool_call(("pay", {"amount": 5})) if len(msgs) == 1 else tool_call()
    )
    g = StateGraph(MessagesState)
    g.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    g.add_node("tools", GatedToolNode([pay], policy=POLICY, store=store))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    app = g.compile(checkpointer=open_checkpointer("sqlite", str(tmp_path / "cp.db")))
    cfg = {"configurable": {"thread_id": "k1"}}
    out = app.invoke({"messages": [("user", "pay")]}, cfg)
    rid = out["__interrupt__"][0].value["action_requests"][0]["request_id"]
    Inbox(store, app).approve(rid, reviewer=RITA)
    assert seen == [(f"hitl-{rid}", rid)]


# -- recover ------------------------------------------------------------------------------


def _held(tmp_path: Path) -> tuple[Any, Any, FileLedger, dict[str, Any], str]:
    """A thread whose approved transfer was started by a process that died."""
    store = SqliteStore(tmp_path / "s.db")
    store.setup()
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    app = build_app(store, open_checkpointer("sqlite", str(tmp_path / "cp.db")), ledger, transfer())
    cfg, _, rid = interrupted(app)
    gone = dead_worker()
    store.claim_execution(rid, worker=gone, at=T0)
    store.start_execution(rid, worker=gone, at=T0)
    with pytest.raises(ExecutionHeld):
        Inbox(store, app).approve(rid, reviewer=RITA)
    assert app.get_state(cfg).next == ("tools",)
    return store, app, ledger, cfg, rid


def _tool_message(app: Any, cfg: dict[str, Any]) -> ToolMessage:
    (msg,) = [m for m in app.get_state(cfg).values["messages"] if isinstance(m, ToolMessage)]
    return msg


def test_recover_mark_done_resumes_with_the_given_result(tmp_path: Path) -> None:
    store, app, ledger, cfg, rid = _held(tmp_path)
    res = Inbox(store, app).recover(rid, "mark_done", result="sent 9000 to bob", by="ops")
    assert res.resumed and res.previous_state == "started" and res.error is None
    msg = _tool_message(app, cfg)
    assert (msg.content, msg.status, msg.name) == ("sent 9000 to bob", "success", "transfer_funds")
    assert ledger.entries == [] and not app.get_state(cfg).next
    (ev,) = [e for e in store.list_audit(request_id=rid) if e.event == "recovered"]
    assert (ev.actor, ev.data["how"], ev.data["previous_state"]) == ("ops", "mark_done", "started")
    assert store.verify_audit().ok
    with pytest.raises(NothingToRecover, match="nothing to settle"):
        Inbox(store, app).recover(rid, "rerun")


def test_recover_mark_failed_resumes_with_an_error(tmp_path: Path) -> None:
    store, app, ledger, cfg, rid = _held(tmp_path)
    assert Inbox(store, app).recover(rid, "mark_failed").resumed
    msg = _tool_message(app, cfg)
    assert msg.status == "error" and "transfer_funds failed" in str(msg.content)
    assert ledger.entries == [] and not app.get_state(cfg).next


def test_recover_rerun_runs_it_once_more_explicitly(tmp_path: Path) -> None:
    store, app, ledger, cfg, rid = _held(tmp_path)
    assert Inbox(store, app).recover(rid, "rerun", by="ops").resumed
    assert ledger.count("transfer_funds") == 1 and not app.get_state(cfg).next
    assert store.get_execution(rid).state == "done"  # type: ignore[union-attr]


def test_arecover() -> None:
    import asyncio

    from langgraph.checkpoint.memory import InMemorySaver

    store = MemoryStore()
    app = build_app(store, InMemorySaver(), FileLedger("/dev/null"), transfer())
    cfg, _, rid = interrupted(app)
    gone = dead_worker()
    store.claim_execution(rid, worker=gone, at=T0)
    store.start_execution(rid, worker=gone, at=T0)

    async def go() -> Any:
        with pytest.raises(ExecutionHeld):
            await Inbox(store, app).aapprove(rid, reviewer=RITA)
        return await Inbox(store, app).arecover(rid, "mark_done", result="ok")

    res = asyncio.run(go())
    assert res.resumed and _tool_message(app, cfg).content == "ok"


def test_recover_refuses_what_is_not_held() -> None:
    store = MemoryStore()
    inbox = Inbox(store)
    with pytest.raises(NothingToRecover, match="never claimed"):
        inbox.recover("req_x", "rerun")
    store.claim_execution("req_x", worker="w", at=T0)
    with pytest.raises(NothingToRecover, match="never called"):
        inbox.recover("req_x", "mark_done")
    import os
    import socket

    me = f"{socket.gethostname()}:{os.getpid()}:me"
    store.release_execution("req_x")
    store.claim_execution("req_x", worker=me, at=T0)
    store.start_execution("req_x", worker=me, at=T0)
    with pytest.raises(NothingToRecover, match="still running"):
        inbox.recover("req_x", "mark_done")
    with pytest.raises(NothingToRecover, match="unknown recovery"):
        inbox.recover("req_x", "explode")
    assert store.get_execution("req_x").state == "started"  # type: ignore[union-attr]
    assert store.list_audit() == []
    res = inbox.recover("req_x", "mark_done", force=True)
    assert not res.resumed and "no graph" in res.notes[0]


def test_two_operators_settle_once(tmp_path: Path) -> None:
    import threading

    store = SqliteStore(tmp_path / "s.db")
    store.setup()
    gone = dead_worker()
    store.claim_execution("req_r", worker=gone, at=T0)
    store.start_execution("req_r", worker=gone, at=T0)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def op(how: str) -> None:
        own = SqliteStore(tmp_path / "s.db")
        own.get_execution("req_r")  # connected before the race
        barrier.wait()
        try:
            Inbox(own).recover("req_r", how)
            outcomes.append("ok")
        except NothingToRecover:
            outcomes.append("refused")
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=op, args=(h,)) for h in ("rerun", "mark_done") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    assert len([e for e in store.list_audit() if e.event == "recovered"]) == 1


def test_cli_recover_table_json_and_errors(tmp_path: Path) -> None:
    env = Env(tmp_path)
    gone = dead_worker()
    env.store.claim_execution("req_c", worker=gone, at=T0)
    env.store.start_execution("req_c", worker=gone, at=T0)
    with pytest.raises(SystemExit) as usage:  # one of --rerun/--mark-done/--mark-failed
        env.call("recover", "req_c")
    assert usage.value.code == 2
    code, out, err = env.call("recover", "req_c", "--rerun", "--result", "x")
    assert code == 2 and "--mark-done" in err
    code, out, err = env.call("--json", "recover", "req_c", "--mark-done", "--result", "paid")
    assert code == 0, err
    data = json.loads(out)
    assert (data["how"], data["previous_state"], data["resumed"]) == ("mark_done", "started", False)
    code, out, err = env.call("recover", "req_c", "--mark-failed")
    assert code == 1 and "nothing to settle" in err
    env.store.claim_execution("req_d", worker=gone, at=T0)
    env.store.start_execution("req_d", worker=gone, at=T0)
    code, out, err = env.call("recover", "req_d", "--mark-failed", "--by", "ops")
    assert code == 0 and "mark-failed" in out and "started" in out
    env.store.close()


def test_cli_recover_resumes_the_thread_with_the_graph(tmp_path: Path) -> None:
    env = Env(tmp_path)
    cfg, _, rid = interrupted(env.app)
    gone = dead_worker()
    env.store.claim_execution(rid, worker=gone, at=T0)
    env.store.start_execution(rid, worker=gone, at=T0)
    with pytest.raises(ExecutionHeld):
        Inbox(env.store, env.app).approve(rid, reviewer=RITA)
    p = env.run("--graph", "tests_graph_module:app", "--json", "reconcile", "--grace", "0")
    assert p.returncode == 1 and "hitl recover" in p.stdout, p.stdout + p.stderr
    p = env.run(
        "--graph", "tests_graph_module:app", "recover", rid, "--mark-done", "--result", "sent"
    )
    assert p.returncode == 0 and "resumed  yes" in p.stdout, p.stdout + p.stderr
    assert _tool_message(env.app, cfg).content == "sent" and env.ledger.entries == []
    env.store.close()


# -- reconcile and revive -----------------------------------------------------------------


class Crash(Exception):
    pass


def test_reconcile_keeps_a_row_the_re_driven_run_asks_for_again(
    store: ApprovalStore, tmp_path: Path
) -> None:
    """Crash after the request row is written, before the interrupt is checkpointed;
    reconcile before the thread is re-driven (was: cancelled, then stuck for good)."""
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    app = build_app(store, open_checkpointer("sqlite", str(tmp_path / "cp.db")), ledger, transfer())
    put = store.put_request

    def crash_after_put(*a: Any, **k: Any) -> Any:
        put(*a, **k)
        raise Crash("process died here")

    store.put_request = crash_after_put  # type: ignore[method-assign]
    cfg = {"configurable": {"thread_id": "t-crash", "user_id": "carol"}}
    with pytest.raises(Crash):
        app.invoke({"messages": [("user", "pay")]}, cfg, durability="sync")
    store.put_request = put  # type: ignore[method-assign]
    (row,) = store.list_requests(RequestFilter(thread_id="t-crash"))
    assert app.get_state(cfg).next == ("tools",) and not app.get_state(cfg).interrupts

    inbox = Inbox(store, app)
    report = inbox.reconcile(grace=timedelta(0))
    assert report.awaiting_rerun == [row.request_id] and report.cancelled == []
    assert store.get_request(row.request_id).status == "pending"  # type: ignore[union-attr]
    out = app.invoke(None, cfg)  # the runner re-drives the thread
    assert out["__interrupt__"][0].value["action_requests"][0]["request_id"] == row.request_id
    inbox.approve(row.request_id, reviewer=RITA)
    assert ledger.count("transfer_funds") == 1 and not app.get_state(cfg).next


def _crashed_after_the_row(store: ApprovalStore, tmp_path: Path) -> tuple[Any, Any, Any, str]:
    """A run that died after writing its request row, before checkpointing the interrupt."""
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    app = build_app(store, open_checkpointer("sqlite", str(tmp_path / "cp.db")), ledger, transfer())
    put = store.put_request

    def crash_after_put(*a: Any, **k: Any) -> Any:
        put(*a, **k)
        raise Crash("process died here")

    store.put_request = crash_after_put  # type: ignore[method-assign]
    cfg = {"configurable": {"thread_id": "t-crash", "user_id": "carol"}}
    with pytest.raises(Crash):
        app.invoke({"messages": [("user", "pay")]}, cfg, durability="sync")
    store.put_request = put  # type: ignore[method-assign]
    (row,) = store.list_requests(RequestFilter(thread_id="t-crash"))
    return app, ledger, cfg, row.request_id


def test_a_cancelled_request_asked_again_is_revived(store: ApprovalStore, tmp_path: Path) -> None:
    """A row cancelled while its run was down (an older reconcile, or an operator) is
    pending again when the re-driven run asks for it under the same id."""
    app, ledger, cfg, rid = _crashed_after_the_row(store, tmp_path)
    store.update_request(rid, expected_status="pending", status="cancelled", decided_by="reconcile")
    out = app.invoke(None, cfg)
    assert out["__interrupt__"][0].value["action_requests"][0]["request_id"] == rid
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "pending" and rec.decided_by is None
    assert rec.interrupt_id == out["__interrupt__"][0].id
    assert "revived" in [e.event for e in store.list_audit(request_id=rid)]
    Inbox(store, app).approve(rid, reviewer=RITA)
    assert ledger.count("transfer_funds") == 1 and store.verify_audit().ok


def test_a_decision_whose_inbox_died_is_applied_without_waiting(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.setup()
    ledger = FileLedger(tmp_path / "ledger.jsonl")
    app = build_app(store, open_checkpointer("sqlite", str(tmp_path / "cp.db")), ledger, transfer())
    cfg, _, rid = interrupted(app)
    Inbox(store).approve(rid, reviewer=RITA)  # recorded, no graph: not resumed
    rec = store.get_request(rid)
    assert rec is not None
    mark = {"by": f"inbox:{dead_worker()}", "at": datetime.now(UTC).isoformat()}
    store.update_request(rid, metadata={**rec.metadata, RESUME_MARK: mark})
    report = Inbox(store, app).apply_decided()  # stale_after is 5 min; the inbox is gone
    assert report.applied == [rid] and ledger.count("transfer_funds") == 1
