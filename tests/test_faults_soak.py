"""Soak: thousands of gated runs on the memory store with random decisions, racing
reviewers and kills at the journal's boundaries, then the invariants.

Each run: a pending request; 1-3 reviewers race to decide it (compare-and-set: one
wins); an approved one executes through ``GateEngine.run_once``, and a random share of
executions is "killed" after the claim (never started) or after the start (tool called,
never finished) by a worker whose process is gone. Recovery is a fresh engine: a claim
that never started is taken over and run; a started one raises ``ExecutionHeld`` and a
human settles it with one ``recover`` (mark-done when the side effect is there, rerun
otherwise). Invariants: every request has exactly one terminal status, the tool ran
exactly once per approval and never otherwise, and the audit trail verifies.

``HITL_FAULT_TRIALS`` scales the run count (default 5,000 x 1).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fault_report import record

from hitl_langgraph import ExecutionHeld, RiskPolicy, Rule
from hitl_langgraph.gates.engine import GateEngine, Resolution
from hitl_langgraph.gates.payload import GateItem
from hitl_langgraph.inbox import Inbox
from hitl_langgraph.inbox.recover import settle
from hitl_langgraph.policy.action import Action
from hitl_langgraph.store import MemoryStore
from hitl_langgraph.store.records import FINAL_STATUSES, ApprovalRecord, AuditEvent

pytestmark = pytest.mark.faults

RUNS = 5_000 * int(os.environ.get("HITL_FAULT_TRIALS", "1"))
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _dead_worker() -> str:
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:dead"


def test_soak(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    rng = random.Random(1234)
    store = MemoryStore()
    policy = RiskPolicy(rules=[Rule(tool="pay", score=0.9)])
    dead = _dead_worker()
    engine = GateEngine(policy, store, execution_wait=0.0, claim_grace=60.0)
    inbox = Inbox(store)
    ran: dict[str, int] = {}
    counts = {"runs": 0, "claim_kills": 0, "start_kills": 0, "held_settled": 0, "races": 0}

    def tool(rid: str) -> Any:
        ran[rid] = ran.get(rid, 0) + 1
        return {"paid": rid}

    for n in range(RUNS):
        rid = f"req_soak{n:06d}"
        action = Action(tool="pay", args={"n": n}, tool_call_id=f"c{n}")
        assessment = policy.assess(action)
        rec = ApprovalRecord(
            request_id=rid,
            thread_id=f"t{n}",
            node="tools",
            tool="pay",
            args={"n": n},
            digest=action.digest,
            score=assessment.score,
            route="approve",
            reasons=[],
            status="pending",
            created_at=T0,
            updated_at=T0,
            tool_call_id=f"c{n}",
        )
        store.put_request(rec, audit=AuditEvent(event="requested", at=T0, request_id=rid))
        counts["runs"] += 1
        reviewers = rng.randint(1, 3)
        counts["races"] += reviewers > 1
        winner = None
        for r in range(reviewers):
            status = rng.choice(["approved", "approved", "rejected"])
            try:
                store.update_request(
                    rid,
                    expected_status="pending",
                    status=status,
                    decided_by=f"rev{r}",
                    decided_at=T0,
                    updated_at=T0,
                    audit=AuditEvent(event="decided", at=T0, request_id=rid, actor=f"rev{r}"),
                )
                winner = winner or status
            except Exception:
                pass  # lost the race: AlreadyDecided
        if winner != "approved":
            continue
        item = GateItem(
            key=f"0:c{n}",
            request_id=rid,
            tool_call={"name": "pay", "args": {"n": n}, "id": f"c{n}"},
            assessment=assessment,
        )
        res = Resolution(item, "run", True, dict(item.tool_call))
        cfg: dict[str, Any] = {"configurable": {"thread_id": f"t{n}"}}
        kill = rng.random()
        if kill < 0.05:  # killed after the claim, before the start
            store.claim_execution(rid, worker=dead, at=T0)
            counts["claim_kills"] += 1
        elif kill < 0.10:  # killed after the start; the side effect happened half the time
            store.claim_execution(rid, worker=dead, at=T0)
            store.start_execution(rid, worker=dead, at=T0)
            if rng.random() < 0.5:
                tool(rid)
            counts["start_kills"] += 1
        try:
            engine.run_once(res, lambda rid=rid: tool(rid), config=cfg)
        except ExecutionHeld:
            how = "mark_done" if ran.get(rid) else "rerun"
            settle(inbox, rid, how, result="paid", by="ops")
            counts["held_settled"] += 1
            engine.run_once(res, lambda rid=rid: tool(rid), config=cfg)
        # a replay (or racing resume) never runs it again
        engine.run_once(res, lambda rid=rid: tool(rid), config=cfg)

    rows = (
        store.list_requests(None, limit=RUNS + 1)
        if False
        else [store.get_request(f"req_soak{n:06d}") for n in range(RUNS)]
    )
    lost = dup = bad_terminal = 0
    for row in rows:
        assert row is not None
        if row.status not in FINAL_STATUSES:
            bad_terminal += 1
        times = ran.get(row.request_id, 0)
        if row.status == "approved":
            ex = store.get_execution(row.request_id)
            lost += times == 0 or ex is None or ex.state != "done"
            dup += times > 1
        else:
            dup += times > 0
    audit = store.verify_audit()
    summary = (
        f"soak: {counts['runs']} gated runs ({counts['races']} reviewer races, "
        f"{counts['claim_kills']} kills after claim, {counts['start_kills']} after start, "
        f"{counts['held_settled']} settled by recover): {lost} lost, {dup} duplicated, "
        f"{bad_terminal} without one terminal state, audit {'ok' if audit.ok else 'BROKEN'}"
    )
    (tmp_path / "faults-soak.json").write_text(json.dumps({**counts, "lost": lost, "dup": dup}))
    record(request.config, summary)
    assert (lost, dup, bad_terminal, audit.ok) == (0, 0, 0, True), summary
    assert counts["runs"] >= 5_000
