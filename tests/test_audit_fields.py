"""Every hashed audit field is tamper-evident, in each store and in a JSONL export.

The chain hash covers ``event``, ``at``, ``request_id``, ``thread_id``, ``actor``,
``data`` and ``prev_hash`` (``AuditEvent.body`` plus the link). Editing any one of them in
the database, or in an exported file, must be reported; so must a row edited *and* given a
recomputed hash (the next row's ``prev_hash`` no longer matches).
"""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph.audit.export import event_from_row, export_audit, verify_jsonl
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.store import MemoryStore
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.store.records import AuditEvent, audit_hash

FORGED_AT = datetime(2001, 1, 1, tzinfo=timezone.utc)
FORGED: dict[str, Any] = {
    "event": "expired",
    "at": FORGED_AT,
    "request_id": "req_forged",
    "thread_id": "t-forged",
    "actor": "mallory",
    "data": {"decision": {"type": "approve"}},
    "prev_hash": "0" * 64,
    "stream": 7,
    "stream_seq": 99,
}
HASHED = sorted(FORGED)


def test_the_hash_covers_exactly_these_fields() -> None:
    ev = AuditEvent(
        event="decided", at=datetime.now(timezone.utc), request_id="r", actor="a", stream=0,
        stream_seq=1,
    )  # fmt: skip
    assert set(ev.body()) | {"prev_hash"} == set(HASHED)
    base = audit_hash("p", ev)
    for name in HASHED:
        if name == "prev_hash":
            assert audit_hash("q", ev) != base
        else:
            assert audit_hash("p", replace(ev, **{name: FORGED[name]})) != base, name


def decided_chain(store: ApprovalStore) -> AuditEvent:
    """Two decided requests (7 rows); returns the first ``decided`` row."""
    app = build_app(store, InMemorySaver(), MemLedger(), transfer())
    inbox = Inbox(store, app)
    for _ in range(2):
        _, _, rid = interrupted(app)
        inbox.approve(rid, reviewer=Reviewer("alice", {"finance"}))
    row = next(e for e in store.list_audit() if e.event == "decided")
    assert row.thread_id is not None and row.seq is not None and row.seq > 1
    return row


def tamper(store: ApprovalStore, request: pytest.FixtureRequest, seq: int, field: str) -> None:
    """Edit one column of audit row ``seq`` behind the store's back."""
    value = FORGED[field]
    if isinstance(store, MemoryStore):
        store._tamper(seq, **{field: value})
        return
    if field == "data":
        value = json.dumps(value)
    elif field == "at":
        value = value.isoformat()
    sql = f"UPDATE hitl_audit SET {field} = %s WHERE seq = %s"  # field: a fixed column name
    if type(store).__name__ == "SqliteStore":
        path = Path(request.getfixturevalue("tmp_path")) / "hitl.db"
        with sqlite3.connect(path) as conn:
            conn.execute(sql.replace("%s", "?"), (value, seq))
        return
    import psycopg

    with psycopg.connect(request.getfixturevalue("postgres_schema_url"), autocommit=True) as c:
        c.execute(sql, (value, seq))  # type: ignore[arg-type]


@pytest.mark.parametrize("field", HASHED)
def test_editing_any_hashed_column_is_detected(
    store: ApprovalStore, request: pytest.FixtureRequest, field: str
) -> None:
    row = decided_chain(store)
    assert store.verify_audit().ok
    assert row.seq is not None
    tamper(store, request, row.seq, field)
    report = store.verify_audit()
    assert not report.ok and report.problems  # and a problem names the edited row:
    assert any(p.startswith(f"seq {row.seq}") for p in report.problems), report.problems


def exported(store: ApprovalStore) -> list[str]:
    buf = io.StringIO()
    export_audit(store, buf, format="jsonl")
    return buf.getvalue().splitlines()


def _jsonl_value(field: str) -> Any:
    value = FORGED[field]
    return value.isoformat() if isinstance(value, datetime) else value


@pytest.mark.parametrize("field", HASHED)
def test_editing_any_hashed_field_of_an_export_is_detected(field: str) -> None:
    store = MemoryStore()
    row = decided_chain(store)
    lines = exported(store)
    assert verify_jsonl(lines).ok
    i = (row.seq or 0) - 1
    edited = json.loads(lines[i])
    edited[field] = _jsonl_value(field)
    lines[i] = json.dumps(edited)
    report = verify_jsonl(lines)
    assert not report.ok and report.problems
    assert any(p.startswith(f"seq {row.seq}") for p in report.problems), report.problems


def _rehash(line: str, **changes: Any) -> str:
    """``line`` with ``changes`` applied and its own hash recomputed to match."""
    row = {**json.loads(line), **changes}
    ev = event_from_row(row)
    row["hash"] = audit_hash(ev.prev_hash, ev)
    return json.dumps(row)


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link() -> None:
    store = MemoryStore()
    row = decided_chain(store)
    lines = exported(store)
    i = (row.seq or 0) - 1
    lines[i] = _rehash(lines[i], actor="mallory", thread_id="t-forged")
    report = verify_jsonl(lines)
    (problem,) = report.problems  # "... of stream N"
    assert problem.startswith(f"seq {(row.seq or 0) + 1}: prev_hash does not match the previous")
    # the store's own check catches the same edit made in the database
    forged = json.loads(lines[i])
    store._tamper(row.seq or 0, actor="mallory", thread_id="t-forged", hash=forged["hash"])
    assert store.verify_audit().problems == report.problems


def test_a_rehashed_last_row_is_caught_by_the_export_trailer() -> None:
    """Nothing follows the last row of a stream: the export's trailer (the stream heads at
    export time) catches it, and without the trailer only the head tells."""
    store = MemoryStore()
    decided_chain(store)
    lines = exported(store)
    trusted = verify_jsonl(lines).head
    assert verify_jsonl(lines).ok and trusted == store.verify_audit().head
    last = max(i for i, x in enumerate(lines) if "kind" not in json.loads(x))
    lines[last] = _rehash(lines[last], actor="mallory")
    assert not verify_jsonl(lines).ok
    bare = [x for x in lines if "kind" not in json.loads(x)]  # the trailer cut off
    report = verify_jsonl(bare)
    assert report.ok and report.head != trusted
