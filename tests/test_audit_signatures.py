"""``hitl audit verify --public-key``: a ``decided`` event appended through the store by
someone holding the audit key keeps the chain valid, but its (missing, copied or foreign)
signature is caught and named by seq and request, on SQLite and Postgres."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, inbox_policy, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import open_store
from hitl_langgraph.audit.verify import verify_with_signatures
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.store.keys import (
    DecisionVerifier,
    decision_payload,
    generate_signing_key,
    sign_payload,
)
from hitl_langgraph.store.records import AuditEvent

KEY = "k" * 32
ALICE = Reviewer("alice", {"finance"})
BOB = Reviewer("bob", {"finance"})


@pytest.fixture(scope="module")
def signer() -> Any:
    return generate_signing_key()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hitl.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


def signed_flow(store: ApprovalStore, signer: Any) -> tuple[str, str, str, str, str]:
    """Approved, rejected, edited, quorum-approved (all signed) and one still pending."""
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer(9_000))
    inbox = Inbox(store, app)
    inbox.signer = signer  # type: ignore[attr-defined]
    _, _, a = interrupted(app)
    inbox.approve(a, reviewer=ALICE, reason="invoice 17")
    _, _, b = interrupted(app)
    inbox.reject(b, reviewer=BOB, reason="unknown payee")
    _, _, e = interrupted(app)
    inbox.edit(e, reviewer=ALICE, args={"amount": 8_500, "to": "bob"})
    q_app = build_app(store, InMemorySaver(), ledger, transfer(), policy=inbox_policy(quorum=2))
    q = Inbox(store, q_app)
    q.signer = signer  # type: ignore[attr-defined]
    _, _, qid = interrupted(q_app)
    q.approve(qid, reviewer=ALICE)
    q.approve(qid, reviewer=BOB)
    _, _, c = interrupted(app)
    assert ledger.count("transfer_funds") == 3
    return a, b, e, qid, c


def forge_decided(store: ApprovalStore, rid: str, **data: Any) -> AuditEvent:
    """Append a ``decided`` event through the store, with its audit key: the chain stays valid."""
    rec = store.get_request(rid)
    assert rec is not None
    return store.append_audit(
        AuditEvent(
            "decided",
            at=rec.created_at,
            request_id=rid,
            thread_id=rec.thread_id,
            actor="alice",
            data={"decision": {"type": "approve"}, "reviewer": "alice", "via": "inbox", **data},
        )
    )


def signature_of(store: ApprovalStore, rid: str) -> dict[str, Any]:
    ev = next(e for e in store.list_audit(request_id=rid) if e.event == "decided")
    return dict(ev.data["signature"])


def cli_verify(url: str, tmp_path: Path, signer: Any, *extra: str) -> Any:
    pub = tmp_path / "signer.pub.pem"
    pub.write_text(signer.public_pem())
    cmd = [sys.executable, "-m", "hitl_langgraph.cli", "--store", url, "audit", "verify"]
    env = {"HITL_AUDIT_KEY": KEY, "PATH": "/usr/bin:/bin"}
    args = [*cmd, *extra]
    args = [a if a != "PUB" else str(pub) for a in args]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def test_a_genuine_signed_flow_verifies(url: str, signer: Any, tmp_path: Path) -> None:
    store = open_store(url)
    store.set_audit_key(KEY)
    signed_flow(store, signer)
    report = verify_with_signatures(store, DecisionVerifier([signer.public_pem()]))
    assert report.ok, report.problems
    assert "3 approving decision signature(s) checked" in report.notes  # a, e, the quorum
    store.close()
    p = cli_verify(url, tmp_path, signer, "--public-key", "PUB", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["ok"] is True


def test_forged_decided_event_appended_with_the_audit_key_is_detected(
    url: str, signer: Any, tmp_path: Path
) -> None:
    store = open_store(url)
    store.set_audit_key(KEY)
    *_, c = signed_flow(store, signer)
    forged = forge_decided(store, c)
    assert store.verify_audit().ok  # the chain alone cannot tell
    report = verify_with_signatures(store, DecisionVerifier([signer]))
    assert not report.ok and report.checkpoint is None
    assert report.problems == [
        f"seq {forged.seq} (request {c}): the 'approve' decision is not signed (forged, or "
        "recorded without a signing key)"
    ]
    store.close()
    assert cli_verify(url, tmp_path, signer).returncode == 0  # without a public key: the gap
    p = cli_verify(url, tmp_path, signer, "--public-key", "PUB")
    assert p.returncode == 1 and "FAILED" in p.stdout
    assert f"seq {forged.seq} (request {c})" in p.stdout and "not signed" in p.stdout


def test_signature_copied_from_another_request_is_detected(
    url: str, signer: Any, tmp_path: Path
) -> None:
    store = open_store(url)
    store.set_audit_key(KEY)
    a, *_, c = signed_flow(store, signer)
    forged = forge_decided(store, c, signature=signature_of(store, a))
    report = verify_with_signatures(store, DecisionVerifier([signer]))
    assert not report.ok
    assert report.problems == [
        f"seq {forged.seq} (request {c}): the signature does not match the decision (forged, "
        "or made for another request or action)"
    ]
    store.close()
    p = cli_verify(url, tmp_path, signer, "--public-key", "PUB", "--json")
    assert p.returncode == 1
    problems = json.loads(p.stdout)["problems"]
    assert any(f"seq {forged.seq} (request {c})" in x for x in problems), problems


def test_self_signed_or_relabelled_signatures_are_detected(signer: Any, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.set_audit_key(KEY)
    a, *_, c = signed_flow(store, signer)
    mallory = generate_signing_key()  # the insider's own key: not trusted
    digest = next(e for e in store.list_audit(request_id=c) if e.event == "requested").data[
        "digest"
    ]
    at = "2026-01-01T00:00:00+00:00"
    payload = decision_payload(
        request_id=c, digest=digest, decision={"type": "approve"}, reviewer="alice", at=at
    )
    own = {**sign_payload(mallory, payload), "reviewer": "alice", "roles": [], "at": at}
    f1 = forge_decided(store, c, signature=own)
    # a genuine signature of the same request, recorded under another reviewer's name
    genuine = next(e for e in store.list_audit(request_id=a) if e.event == "decided").data
    f2 = forge_decided(store, a, **{**genuine, "reviewer": "bob"})
    report = verify_with_signatures(store, DecisionVerifier([signer]))
    assert not report.ok
    assert any(
        p.startswith(f"seq {f1.seq} (request {c}): signed by an untrusted key")
        for p in report.problems
    ), report.problems
    assert any(
        p.startswith(
            f"seq {f2.seq} (request {a}): signed by 'alice' but recorded as decided by 'bob'"
        )
        for p in report.problems
    ), report.problems
    # rejections run nothing and are not signature-checked; no verifier: the chain only
    assert verify_with_signatures(store, None).ok
    store.close()


def test_a_checkpoint_checks_only_new_decisions(signer: Any, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    store.set_audit_key(KEY)
    *_, c = signed_flow(store, signer)
    verifier = DecisionVerifier([signer])
    first = verify_with_signatures(store, verifier)
    assert first.ok and first.checkpoint is not None
    forged = forge_decided(store, c)
    again = verify_with_signatures(store, verifier, since=first.checkpoint)
    assert not again.ok and again.checkpoint is None
    assert any(f"seq {forged.seq} (request {c})" in p for p in again.problems)
    store.close()
