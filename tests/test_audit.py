"""The audit trail as evidence: complete, hash-chained, tamper-evident, exportable."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, inbox_policy, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import MemoryStore, NotAuthorized, open_store
from hitl_langgraph.audit.export import COLUMNS, export_audit, verify_jsonl
from hitl_langgraph.inbox import Inbox, Reviewer

ALICE = Reviewer("alice", {"finance"})
BOB = Reviewer("bob", {"finance", "audit"})


def lifecycle(store: Any) -> tuple[Any, list[str]]:
    """Requests decided every way the inbox knows, including a refusal and a quorum."""
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    quorum_app = build_app(
        store, InMemorySaver(), ledger, transfer(), policy=inbox_policy(quorum=2)
    )
    inbox = Inbox(store, app)
    _, _, a = interrupted(app)
    with pytest.raises(NotAuthorized):
        inbox.approve(a, reviewer=Reviewer("eve", {"ops"}))
    inbox.approve(a, reviewer=ALICE, reason="invoice 17")
    _, _, b = interrupted(app)
    inbox.reject(b, reviewer=BOB, reason="unknown payee")
    _, _, c = interrupted(quorum_app)
    q = Inbox(store, quorum_app)
    q.approve(c, reviewer=ALICE, reason="first look")
    q.approve(c, reviewer=BOB, reason="second look")
    return inbox, [a, b, c]


def test_every_step_is_in_the_chain_and_it_verifies(store: Any) -> None:
    inbox, (a, b, c) = lifecycle(store)
    assert [e.event for e in inbox.history(a)] == ["requested", "refused", "decided", "executed"]
    assert [e.event for e in inbox.history(b)] == ["requested", "decided"]
    assert [e.event for e in inbox.history(c)] == ["requested", "approval", "decided", "executed"]
    report = store.verify_audit()
    assert report.ok and report.events == 10 and not report.problems
    seqs = [e.seq for e in store.list_audit()]
    assert seqs == list(range(1, 11))


def test_an_edited_row_is_detected_in_memory() -> None:
    store = MemoryStore()
    lifecycle(store)
    decided = next(e for e in store.list_audit() if e.event == "decided")
    assert decided.seq is not None
    store._tamper(decided.seq, actor="mallory")
    report = store.verify_audit()
    assert not report.ok and f"seq {decided.seq}: hash mismatch (row edited)" in report.problems


@pytest.mark.parametrize("attack", ["edit", "delete", "recompute_one_hash"])
def test_tampering_with_the_sqlite_file_is_detected(tmp_path: Path, attack: str) -> None:
    path = tmp_path / "hitl.db"
    store = open_store(f"sqlite:///{path}")
    lifecycle(store)
    assert store.verify_audit().ok
    with sqlite3.connect(path) as db:
        seq = db.execute("SELECT seq FROM hitl_audit WHERE event = 'decided' LIMIT 1").fetchone()[0]
        if attack == "edit":  # claim someone else approved
            db.execute("UPDATE hitl_audit SET actor = 'mallory' WHERE seq = ?", (seq,))
        elif attack == "delete":  # hide a refused attempt
            db.execute("DELETE FROM hitl_audit WHERE event = 'refused'")
        else:  # edit the data and fix up that row's hash: the next row's link breaks
            from hitl_langgraph.store.records import audit_hash

            ev = next(e for e in store.list_audit() if e.seq == seq)
            forged = ev.__class__(**{**ev.__dict__, "data": {**ev.data, "reason": "forged"}})
            db.execute(
                "UPDATE hitl_audit SET data = ?, hash = ? WHERE seq = ?",
                (json.dumps(forged.data), audit_hash(ev.prev_hash, forged), seq),
            )
    report = store.verify_audit()
    assert not report.ok, attack
    expected = {"edit": "hash mismatch", "delete": "missing", "recompute_one_hash": "prev_hash"}
    assert any(expected[attack] in p for p in report.problems), report.problems
    store.close()

    cli = [sys.executable, "-m", "hitl_langgraph.cli", "--store", f"sqlite:///{path}"]
    if attack == "edit":  # the CLI's exit code tells cron/CI that the trail is broken
        p = subprocess.run([*cli, "audit", "verify"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "FAILED verification" in p.stdout, p.stdout + p.stderr


def test_export_has_the_fields_a_compliance_officer_needs(store: Any) -> None:
    inbox, (a, b, c) = lifecycle(store)
    buf = io.StringIO()
    assert export_audit(store, buf, format="csv") == 10
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == [*COLUMNS, "data"]
    by = {(r["request_id"], r["event"]): r for r in rows}
    d = by[(a, "decided")]
    assert (d["reviewer"], d["reviewer_roles"], d["decision"]) == ("alice", "finance", "approve")
    assert d["reason"] == "invoice 17" and d["requester"] == "carol"
    rec = inbox.get(a)
    assert d["args_digest"] == rec.digest and d["policy_version"] == rec.policy_version
    assert d["tool"] == "transfer_funds" and d["hash"] and d["prev_hash"]
    refused = by[(a, "refused")]
    assert refused["reviewer"] == "eve" and refused["reviewer_roles"] == "ops"
    assert "needs one of the roles" in refused["reason"]
    executed = by[(a, "executed")]  # tool and digest filled in from the request
    assert executed["tool"] == "transfer_funds" and executed["args_digest"] == rec.digest
    assert by[(b, "decided")]["reason"] == "unknown payee"
    q = by[(c, "decided")]
    assert q["approvers"] == "alice[finance]; bob[audit,finance]"

    buf = io.StringIO()
    export_audit(store, buf, format="jsonl", request_id=c)
    lines = buf.getvalue().splitlines()
    assert [json.loads(x)["event"] for x in lines] == [
        "requested",
        "approval",
        "decided",
        "executed",
    ]
    with pytest.raises(Exception, match="jsonl' or 'csv"):
        export_audit(store, io.StringIO(), format="xml")


def test_an_exported_jsonl_file_verifies_on_its_own(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    lifecycle(store)
    buf = io.StringIO()
    export_audit(store, buf)
    lines = buf.getvalue().splitlines()
    assert verify_jsonl(lines).ok and verify_jsonl(lines).events == 10
    assert verify_jsonl(lines).head == store.verify_audit().head
    dropped = verify_jsonl(lines[:3] + lines[4:])
    assert not dropped.ok and any("missing" in p for p in dropped.problems)
    swapped = verify_jsonl([lines[1], lines[0], *lines[2:]])
    assert not swapped.ok
    assert not verify_jsonl(["{not json"]).ok
    store.close()
