"""Irrefutable evidence: every tampering an insider with database access could try, on
SQLite and Postgres, is detected and named; decisions are signed and checked by the gate;
evidence bundles verify offline with the public key alone."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import open_store
from hitl_langgraph.audit.anchor import anchor_now, load_anchor, publish_anchor
from hitl_langgraph.audit.evidence import build_bundle, render_html, verify_bundle
from hitl_langgraph.errors import DigestMismatch, NotAuthorized
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.store.keys import DecisionVerifier, StaticKey, generate_signing_key
from hitl_langgraph.store.records import AuditEvent, audit_hash

KEY = "k" * 32
ALICE = Reviewer("alice", {"finance"})
BOB = Reviewer("bob", {"finance"})
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def signer() -> Any:
    return generate_signing_key()


@pytest.fixture(params=SQL_BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A keyed SQL store and a raw connection to its database (the insider's view)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hitl.db'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    store = open_store(url)
    store.set_audit_key(KEY)
    raw = Raw(store)
    yield store, raw
    store.close()


class Raw:
    """SQL straight against the store's database, the way an insider would."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.sqlite = type(store).__name__ == "SqliteStore"

    def run(self, sql: str, *params: Any) -> list[Any]:
        if self.sqlite:
            conn = sqlite3.connect(self.store.path)
            with conn:
                rows = conn.execute(sql.replace("%s", "?"), params).fetchall()
            conn.close()
            return rows
        import psycopg

        with psycopg.connect(self.store.conninfo, autocommit=True) as pg:
            cur = pg.execute(sql, params)
            return cur.fetchall() if cur.description else []


def lifecycle(store: ApprovalStore, signer: Any = None) -> tuple[Any, Any, MemLedger, list[str]]:
    """Three requests on three threads: approved (runs), rejected, still pending."""
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    inbox = Inbox(store, app)
    inbox.signer = signer  # type: ignore[attr-defined]
    _, _, a = interrupted(app)
    inbox.approve(a, reviewer=ALICE, reason="invoice 17")
    _, _, b = interrupted(app)
    inbox.reject(b, reviewer=BOB, reason="unknown payee")
    _, _, c = interrupted(app)
    return app, inbox, ledger, [a, b, c]


def problems_of(store: ApprovalStore, **kw: Any) -> list[str]:
    report = store.verify_audit(**kw)
    assert not report.ok, "tampering was not detected"
    return report.problems


def last_rows(raw: Raw, n: int) -> list[int]:
    return [r[0] for r in raw.run(f"SELECT seq FROM hitl_audit ORDER BY seq DESC LIMIT {n}")]


# -- the table of issue 13 --------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3])
def test_truncating_the_last_rows_is_detected(db: Any, n: int) -> None:
    store, raw = db
    lifecycle(store)
    assert store.verify_audit().ok
    for seq in last_rows(raw, n):
        raw.run("DELETE FROM hitl_audit WHERE seq = %s", seq)
    problems = problems_of(store)
    assert any("deleted (truncated)" in p and p.startswith("stream ") for p in problems), problems


def test_truncating_rows_and_their_heads_is_caught_by_the_anchor(db: Any) -> None:
    store, raw = db
    lifecycle(store)
    anchor = anchor_now(store)
    ((seq,),) = raw.run("SELECT seq FROM hitl_audit WHERE stream_seq > 1 ORDER BY seq DESC LIMIT 1")
    (stream, n) = raw.run("SELECT stream, stream_seq FROM hitl_audit WHERE seq = %s", seq)[0]
    prev = raw.run(
        "SELECT hash, seq FROM hitl_audit WHERE stream = %s AND stream_seq = %s", stream, n - 1
    )[0]
    raw.run("DELETE FROM hitl_audit WHERE seq = %s", seq)  # and rewind the head to match
    raw.run(
        "UPDATE hitl_audit_heads SET n = %s, hash = %s, seq = %s WHERE stream = %s",
        n - 1,
        prev[0],
        prev[1],
        stream,
    )
    assert store.verify_audit().ok  # consistent without an anchor ...
    problems = problems_of(store, anchor=anchor)  # ... but not with one
    assert any(f"anchor: stream {stream} #{n}" in p and "truncated" in p for p in problems)


def test_deleting_every_row_is_detected(db: Any) -> None:
    store, raw = db
    lifecycle(store)
    anchor = anchor_now(store)
    raw.run("DELETE FROM hitl_audit")
    assert any("deleted (truncated)" in p for p in problems_of(store))
    raw.run("DELETE FROM hitl_audit_heads")  # cover the tracks
    problems = problems_of(store)
    assert any("audit trail was deleted" in p for p in problems), problems
    assert any(p.startswith("anchor: stream") for p in problems_of(store, anchor=anchor))


def _rehash_stream_from(raw: Raw, seq: int, data: dict[str, Any]) -> None:
    """Edit row ``seq``'s data and recompute every hash after it in its stream (and the
    head) with sha256: what an insider without the audit key can do."""
    store = raw.store
    rows = {e.seq: e for e in store.list_audit()}
    target = rows[seq]
    chain = sorted(
        (
            e
            for e in rows.values()
            if e.stream == target.stream and e.stream_seq >= target.stream_seq
        ),
        key=lambda e: e.stream_seq,
    )
    prev = target.prev_hash
    for i, ev in enumerate(chain):
        ev2 = ev.__class__(
            **{**ev.__dict__, "prev_hash": prev, **({"data": data} if i == 0 else {})}
        )
        h = audit_hash(prev, ev2)
        raw.run(
            "UPDATE hitl_audit SET data = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            json.dumps(ev2.data),
            prev,
            h,
            ev.seq,
        )
        prev = h
    raw.run("UPDATE hitl_audit_heads SET hash = %s WHERE stream = %s", prev, target.stream)


def test_edit_and_recompute_every_hash_is_detected_with_the_key(db: Any) -> None:
    store, raw = db
    _, _, _, (a, _, _) = lifecycle(store)
    decided = next(e for e in store.list_audit(request_id=a) if e.event == "decided")
    _rehash_stream_from(raw, decided.seq, {**decided.data, "reviewer": "mallory"})
    problems = problems_of(store)
    assert (
        f"seq {decided.seq}: MAC mismatch (row re-hashed without the audit key, or wrong key)"
        in problems
    )
    # the same store without its key cannot tell, and says so
    unkeyed = open_store(store.url)
    unkeyed.set_audit_key(None)
    report = unkeyed.verify_audit()
    assert report.ok and not report.keyed
    assert any(n.startswith("unkeyed: ") and "not detected" in n for n in report.notes)
    unkeyed.close()


def test_truncate_then_append_is_detected_seq_never_reused(db: Any) -> None:
    store, raw = db
    app, inbox, _, (a, b, c) = lifecycle(store)
    last = max(e.seq for e in store.list_audit())
    rec = store.get_request(c)
    victim = max(e.seq for e in store.list_audit(request_id=c))
    raw.run("DELETE FROM hitl_audit WHERE seq = %s", victim)
    new = store.append_audit(
        AuditEvent("note", at=rec.created_at, request_id=c, thread_id=rec.thread_id)
    )
    assert new.seq > last  # the counter survives deletion: seq numbers are never reused
    problems = problems_of(store)
    assert any(f"seq {new.seq} (stream {new.stream} #" in p and "missing" in p for p in problems)


@pytest.mark.parametrize("attack", ["edit", "delete", "swap"])
def test_middle_row_edit_delete_swap_is_detected(db: Any, attack: str) -> None:
    store, raw = db
    _, _, _, (a, _, _) = lifecycle(store)
    events = store.list_audit(request_id=a)  # requested, decided, executed: one stream
    mid = events[1]
    if attack == "edit":
        raw.run("UPDATE hitl_audit SET actor = 'mallory' WHERE seq = %s", mid.seq)
        expected = f"seq {mid.seq}: hash mismatch (row edited)"
    elif attack == "delete":
        raw.run("DELETE FROM hitl_audit WHERE seq = %s", mid.seq)
        expected = "missing before it (row deleted?)"
    else:  # swap the content of two consecutive rows
        x, y = events[0], events[1]
        for src, dst in ((x, y), (y, x)):
            raw.run(
                "UPDATE hitl_audit SET event = %s, data = %s WHERE seq = %s",
                src.event,
                json.dumps(src.data),
                dst.seq,
            )
        expected = f"seq {x.seq}: hash mismatch (row edited)"
    problems = problems_of(store)
    assert any(expected in p for p in problems), problems


def test_request_args_edited_in_the_store_are_refused(db: Any) -> None:
    from hitl_langgraph.errors import TamperedRequest
    from hitl_langgraph.policy.action import request_digest

    store, raw = db
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer(9_000))
    inbox = Inbox(store, app)
    _, _, rid = interrupted(app)
    shown = {"amount": 90, "to": "bob"}
    raw.run("UPDATE hitl_requests SET args = %s WHERE request_id = %s", json.dumps(shown), rid)
    with pytest.raises(TamperedRequest, match="changed in the store"):
        inbox.approve(rid, reviewer=ALICE)
    # the insider also fixes the digest: the thread still holds the real action (9000)
    raw.run(
        "UPDATE hitl_requests SET digest = %s WHERE request_id = %s",
        request_digest(rid, "transfer_funds", shown),
        rid,
    )
    with pytest.raises((TamperedRequest, DigestMismatch)):
        inbox.approve(rid, reviewer=ALICE)
    assert ledger.count("transfer_funds") == 0
    # and the chained 'requested' event still shows what was really asked
    requested = next(e for e in store.list_audit(request_id=rid) if e.event == "requested")
    assert requested.data["args"]["amount"] == 9_000
    bundle = build_bundle(store, [rid])
    report = verify_bundle(json.dumps(bundle), None)
    assert any("request row edited" in p for p in report.problems), report.problems


def _forge_approved(raw: Raw, rid: str, metadata: dict[str, Any] | None = None) -> None:
    raw.run(
        "UPDATE hitl_requests SET status = 'approved', decided_by = 'mallory', decision = %s, "
        "metadata = %s WHERE request_id = %s",
        json.dumps({"type": "approve"}),
        json.dumps(metadata or {}),
        rid,
    )


def test_forged_approved_row_is_refused_and_recorded(db: Any, signer: Any) -> None:
    store, raw = db
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    app_engine_verifier(app, signer)
    _, _, rid = interrupted(app)
    _forge_approved(raw, rid)
    inbox = Inbox(store, app)
    inbox.reconcile(grace=timedelta(0))  # resumes decided rows whose thread still waits
    assert ledger.count("transfer_funds") == 0
    events = store.list_audit(request_id=rid)
    refused = [e for e in events if e.event == "refused"]
    assert refused and "decision is not signed" in refused[-1].data["message"]
    assert "reverted" in [e.event for e in events]
    assert store.get_request(rid).status == "pending"  # the forged approval was undone


def test_replayed_signature_on_another_request_is_refused(db: Any, signer: Any) -> None:
    store, raw = db
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer())
    app_engine_verifier(app, signer)
    inbox = Inbox(store, app)
    inbox.signer = signer  # type: ignore[attr-defined]
    _, _, a = interrupted(app)
    inbox.approve(a, reviewer=ALICE)  # signed, verified, runs
    assert ledger.count("transfer_funds") == 1
    _, _, b = interrupted(app)
    stolen = store.get_request(a).metadata["decision_signature"]
    _forge_approved(raw, b, {"decision_signature": stolen})
    raw.run("UPDATE hitl_requests SET decided_by = 'alice' WHERE request_id = %s", b)
    rec = store.get_request(b)
    with pytest.raises(NotAuthorized, match="does not match the decision"):
        app.invoke(
            Command(resume={"type": "approve"}), {"configurable": {"thread_id": rec.thread_id}}
        )
    assert ledger.count("transfer_funds") == 1


def test_wrong_key_is_detected(db: Any) -> None:
    store, _ = db
    lifecycle(store)
    problems = problems_of(store, keys=StaticKey("z" * 32))
    assert any("keyed with unknown key" in p and "wrong key" in p for p in problems)


def test_forged_event_is_caught_unsigned_in_the_bundle(db: Any, signer: Any) -> None:
    store, raw = db
    _, _, _, (a, b, c) = lifecycle(store, signer)
    rec = store.get_request(c)
    store.append_audit(  # through the store (with its key): the chain stays valid ...
        AuditEvent(
            "decided",
            at=rec.created_at,
            request_id=c,
            thread_id=rec.thread_id,
            actor="alice",
            data={"decision": {"type": "approve"}, "reviewer": "alice", "via": "inbox"},
        )
    )
    assert store.verify_audit().ok
    bundle = build_bundle(store, [c], signer=signer)  # ... but the decision is unsigned
    report = verify_bundle(json.dumps(bundle), DecisionVerifier([signer]))
    assert not report.ok and any(
        f"request {c}: decision at seq" in p and "not signed" in p for p in report.problems
    )
    # an event inserted with SQL, without the key, breaks the chain itself
    raw.run(
        "INSERT INTO hitl_audit (seq, event, at, request_id, thread_id, actor, data, prev_hash, "
        "hash, stream, stream_seq) VALUES (99999, 'decided', %s, %s, %s, 'alice', '{}', '', "
        "'f00', 0, 1)",
        rec.created_at.isoformat() if raw.sqlite else rec.created_at,
        c,
        rec.thread_id,
    )
    assert any("seq 99999" in p for p in problems_of(store))


# -- signed decisions, bundles ----------------------------------------------------------


def app_engine_verifier(app: Any, signer: Any) -> None:
    node = app.builder.nodes["tools"].runnable
    engine = getattr(node, "engine", None) or getattr(node, "_engine", None)
    assert engine is not None, "GatedToolNode exposes no engine"
    engine.decision_verifier = DecisionVerifier([signer])


def test_signed_decisions_run_and_the_bundle_verifies_offline(
    db: Any, signer: Any, tmp_path: Path
) -> None:
    store, _ = db
    app, inbox, ledger, (a, b, c) = lifecycle(store, signer)
    rec = store.get_request(a)
    sig = rec.metadata["decision_signature"]
    assert sig["reviewer"] == "alice" and sig["alg"] == "ed25519"
    bundle = build_bundle(store, [a, b], signer=signer)
    text = json.dumps(bundle)
    pub = DecisionVerifier([signer.public_pem()])
    report = verify_bundle(text, pub, keys=StaticKey(KEY))
    assert report.ok, report.problems
    sec = bundle["requests"][0]
    assert sec["shown"]["args"] == {"amount": 9000, "to": "bob"}
    assert sec["risk"]["policy_version"] and sec["risk"]["reasons"] is not None
    assert sec["decisions"][0]["reviewer"] == "alice" and sec["decisions"][0]["roles"] == [
        "finance"
    ]
    assert sec["decisions"][0]["waited_seconds"] is not None
    assert sec["execution"]["state"] == "done"
    html = render_html(bundle)
    assert "Evidence of human oversight" in html and a in html
    # one byte changed anywhere: the bundle signature fails
    i = text.index('"amount": 9000')
    edited = text[:i] + text[i:].replace("9000", "9001", 1)
    bad = verify_bundle(edited, pub)
    assert not bad.ok and any("bundle: signature invalid" in p for p in bad.problems)
    # the wrong public key trusts nothing
    other = DecisionVerifier([generate_signing_key()])
    assert not verify_bundle(text, other).ok


def test_cli_anchor_verify_evidence_and_verify_bundle(tmp_path: Path, signer: Any) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = open_store(url)
    store.set_audit_key(KEY)
    _, _, _, (a, _, _) = lifecycle(store, signer)
    store.close()
    key_file = tmp_path / "signer.pem"
    key_file.write_text(signer.private_pem())
    pub_file = tmp_path / "signer.pub.pem"
    pub_file.write_text(signer.public_pem())
    env = {
        "HITL_AUDIT_KEY": KEY,
        "HITL_SIGNING_KEY_FILE": str(key_file),
        "PATH": "/usr/bin:/bin",
    }
    cli = [sys.executable, "-m", "hitl_langgraph.cli", "--store", url, "audit"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120, env=env)

    anchors = tmp_path / "anchors.jsonl"
    p = run("anchor", "--out", str(anchors))
    assert p.returncode == 0 and "stream" in p.stdout, p.stderr
    assert load_anchor(anchors)["signature"]["alg"] == "ed25519"
    p = run("anchor")  # stdout: one JSON line
    assert json.loads(p.stdout)["kind"] == "hitl-audit-anchor"
    p = run("verify", "--anchor", str(anchors), "--checkpoint", str(tmp_path / "cp.json"))
    assert p.returncode == 0 and "audit trail OK" in p.stdout, p.stdout + p.stderr
    p = run("verify", "--checkpoint", str(tmp_path / "cp.json"), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["events"] == 0  # nothing new
    out, page = tmp_path / "ev.json", tmp_path / "ev.html"
    p = run("evidence", a, "-o", str(out), "--html", str(page))
    assert p.returncode == 0 and "signed" in p.stdout, p.stderr
    assert a in page.read_text()
    p = run("verify-bundle", str(out), "--public-key", str(pub_file))
    assert p.returncode == 0 and "bundle OK" in p.stdout, p.stdout
    out.write_text(out.read_text().replace('"alice"', '"alicf"', 1))
    p = run("verify-bundle", str(out), "--public-key", str(pub_file))
    assert p.returncode == 1 and "FAILED" in p.stdout
    # after truncation, verify against the anchor fails with exit 1
    conn = sqlite3.connect(tmp_path / "h.db")
    with conn:
        conn.execute("DELETE FROM hitl_audit WHERE seq = (SELECT MAX(seq) FROM hitl_audit)")
    conn.close()
    p = run("verify", "--anchor", str(anchors))
    assert p.returncode == 1 and "truncated" in p.stdout


def test_publish_anchor_appends_and_loads_the_newest(tmp_path: Path) -> None:
    store = open_store("memory://")
    store.set_audit_key(KEY)
    store.append_audit(AuditEvent("note", at=_now()))
    first = anchor_now(store)
    publish_anchor(first, out=tmp_path / "a.jsonl")
    store.append_audit(AuditEvent("note", at=_now()))
    second = anchor_now(store)
    publish_anchor(second, out=tmp_path / "a.jsonl")
    assert load_anchor(tmp_path / "a.jsonl") == second
    assert store.verify_audit(anchor=first).ok and store.verify_audit(anchor=second).ok
    tampered = {**second, "last_seq": 1}
    assert any("anchor: MAC mismatch" in p for p in problems_of(store, anchor=tampered))


def test_checkpoint_resumes_and_reads_only_new_rows() -> None:
    store = open_store("memory://")
    store.set_audit_key(KEY)
    for i in range(50):
        store.append_audit(AuditEvent("note", at=_now(), thread_id=f"t{i}"))
    full = store.verify_audit()
    assert full.ok and full.events == 50 and full.checkpoint is not None
    for i in range(7):
        store.append_audit(AuditEvent("note", at=_now(), thread_id=f"u{i}"))
    again = store.verify_audit(since=full.checkpoint)
    assert again.ok and again.events == 7
    forged = {**full.checkpoint, "last_seq": 0}
    with pytest.raises(Exception, match="checkpoint is not trustworthy"):
        store.verify_audit(since=forged)


def test_verify_streams_in_flat_memory(tmp_path: Path) -> None:
    """Peak memory of verify does not grow with the number of events."""
    import tracemalloc

    store = open_store(f"sqlite:///{tmp_path / 'big.db'}")
    store.set_audit_key(KEY)

    def peak() -> int:
        tracemalloc.start()
        report = store.verify_audit(page=500)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert report.ok
        return top

    def add(n: int) -> None:
        for i in range(n):
            store.append_audit(
                AuditEvent(
                    "note", at=_now(), thread_id=f"t{i % 97}", data={"i": i, "pad": "x" * 200}
                )
            )

    add(2_000)
    small = peak()
    add(8_000)
    large = peak()
    assert large < small * 1.5, (small, large)  # 5x the rows, about the same peak
    store.close()


def _now() -> Any:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_concurrent_appends_on_many_streams_keep_every_chain_valid(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Threads appending at once (Postgres: no global lock, only per-stream head rows)
    lose nothing and fork nothing; a verify running meanwhile reports no false alarm."""
    import threading

    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_schema_url")
    )
    store = open_store(url)
    store.set_audit_key(KEY)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            for j in range(30):
                store.append_audit(AuditEvent("note", at=_now(), thread_id=f"t{(i + j) % 5}"))
        except BaseException as exc:  # collected below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    barrier.wait(timeout=30)
    during = [store.verify_audit() for _ in range(3)]
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(r.ok for r in during), [r.problems for r in during]
    report = store.verify_audit()
    assert report.ok and report.events == 150, report.problems
    seqs = [e.seq for e in store.list_audit()]
    assert len(set(seqs)) == 150
    store.close()


def test_a_store_from_before_per_stream_chains_upgrades_and_still_verifies(
    tmp_path: Path,
) -> None:
    """Rows written by the old single global chain become the legacy stream -1."""
    from hitl_langgraph.store.sqlite import MIGRATIONS, _statements

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE hitl_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for v in (1, 2):
        for stmt in _statements(MIGRATIONS[v - 1]):
            conn.execute(stmt)
        conn.execute("INSERT INTO hitl_migrations VALUES (?, 'then')", (v,))
    prev = ""
    for seq in (1, 2, 3):  # the old format: one chain, body without stream fields
        ev = AuditEvent("note", at=_now(), data={"i": seq}, seq=seq, prev_hash=prev)
        h = audit_hash(prev, ev)
        conn.execute(
            "INSERT INTO hitl_audit (seq, event, at, request_id, thread_id, actor, data, "
            "prev_hash, hash) VALUES (?, 'note', ?, NULL, NULL, NULL, ?, ?, ?)",
            (seq, ev.at.isoformat(timespec="microseconds"), json.dumps(ev.data), prev, h),
        )
        prev = h
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")  # runs the migration
    store.set_audit_key(KEY)
    new = store.append_audit(AuditEvent("note", at=_now(), thread_id="t1"))
    assert new.seq == 4 and new.stream != -1 and new.mac
    report = store.verify_audit()
    assert report.ok, report.problems
    assert any("predate per-stream keyed chains" in n for n in report.notes)
    raw = Raw(store)
    raw.run("UPDATE hitl_audit SET data = '{\"i\": 9}' WHERE seq = 2")
    assert "seq 2: hash mismatch (row edited)" in problems_of(store)
    raw.run("DELETE FROM hitl_audit WHERE seq = 3")  # the legacy chain's last row
    assert any("stream -1" in p and "truncated" in p for p in problems_of(store))
    store.close()


def test_signed_edit_and_quorum_decisions_run_with_verification_on(db: Any, signer: Any) -> None:
    from inbox_graphs import inbox_policy

    store, _ = db
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer(9_000))
    app_engine_verifier(app, signer)
    inbox = Inbox(store, app)
    inbox.signer = signer  # type: ignore[attr-defined]
    _, _, rid = interrupted(app)
    inbox.edit(rid, reviewer=ALICE, args={"amount": 8_500, "to": "bob"})
    assert ledger.entries == [("transfer_funds", {"amount": 8_500, "to": "bob"})]
    q_app = build_app(store, InMemorySaver(), ledger, transfer(), policy=inbox_policy(quorum=2))
    app_engine_verifier(q_app, signer)
    q = Inbox(store, q_app)
    q.signer = signer  # type: ignore[attr-defined]
    _, _, qid = interrupted(q_app)
    q.approve(qid, reviewer=ALICE)
    q.approve(qid, reviewer=BOB)
    assert ledger.count("transfer_funds") == 2
    assert store.get_request(qid).metadata["decision_signature"]["reviewer"] == "bob"


def test_anchor_webhook_receives_the_anchor_and_a_dead_one_is_a_typed_error() -> None:
    import http.server
    import threading

    from hitl_langgraph.errors import StoreError

    got: list[dict[str, Any]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = open_store("memory://")
    store.set_audit_key(KEY)
    store.append_audit(AuditEvent("note", at=_now()))
    anchor = anchor_now(store)
    url = f"http://127.0.0.1:{server.server_address[1]}/anchors"
    assert publish_anchor(anchor, webhook=url) == [url]
    assert got == [anchor]
    server.shutdown()
    server.server_close()
    with pytest.raises(StoreError, match="could not publish the anchor"):
        publish_anchor(anchor, webhook=url, timeout=2)


def test_period_bundle_covers_the_requests_created_in_it(db: Any, signer: Any) -> None:
    store, _ = db
    _, _, _, (a, b, c) = lifecycle(store, signer)
    recs = [store.get_request(x) for x in (a, b, c)]
    since = recs[1].created_at
    until = recs[2].created_at
    bundle = build_bundle(store, since=since, until=until, signer=signer)
    assert [s["request_id"] for s in bundle["requests"]] == [b]
    assert verify_bundle(json.dumps(bundle), DecisionVerifier([signer])).ok
    everything = build_bundle(store, since=recs[0].created_at, signer=signer)
    assert {s["request_id"] for s in everything["requests"]} == {a, b, c}
    report = verify_bundle(json.dumps(everything), DecisionVerifier([signer]))
    assert report.ok, report.problems
