"""Verifying the audit trail together with the decision signatures in it.

:meth:`~hitl_langgraph.store.base.ApprovalStore.verify_audit` checks the chain: hashes,
links, positions, heads and, with the audit key, every row's MAC. Whoever holds the audit
key (every app worker) can still append a well-formed ``decided`` event through the store.
:func:`verify_with_signatures` adds what only the signing key can vouch for: every
``decided`` event whose decision runs the action (approve, edit) must carry a valid
Ed25519 signature over its request id, the digest of the action as the chained
``requested`` event recorded it (what the reviewer was shown), the decision, the reviewer
and their roles. ``hitl audit verify --public-key FILE`` (or ``HITL_DECISION_PUBLIC_KEYS``)
uses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..store.base import ApprovalStore, AuditReport
from ..store.chain import check_anchor
from ..store.keys import DecisionVerifier, KeyProvider, decision_payload
from ..store.records import AuditEvent

__all__ = ["APPROVING", "check_decided_event", "verify_with_signatures"]

APPROVING = frozenset({"approve", "edit"})
"""Decision types that run an action, so must be signed (rejections run nothing)."""

_MAX_PROBLEMS = 1000


def _decision_type(ev: AuditEvent) -> str | None:
    dec = (ev.data or {}).get("decision")
    if isinstance(dec, Mapping):
        t = dec.get("type")
        return None if t is None else str(t)
    return None if dec is None else str(dec)


def _shown_digest(store: ApprovalStore, request_id: str) -> str | None:
    """The digest the chained ``requested`` event recorded for ``request_id``."""
    for e in store.list_audit(request_id=request_id):
        if e.event == "requested":
            digest = (e.data or {}).get("digest")
            return None if digest is None else str(digest)
    return None


def check_decided_event(
    ev: AuditEvent, verifier: DecisionVerifier, shown_digest: str | None
) -> str | None:
    """Why ``ev`` (an approving ``decided`` event) is not a validly signed decision, or
    ``None`` when it is. ``shown_digest``: the action digest the request was shown with."""
    where = f"seq {ev.seq} (request {ev.request_id})"
    data = ev.data or {}
    kind = _decision_type(ev)
    sig = data.get("signature")
    if not isinstance(sig, Mapping):
        return (
            f"{where}: the {kind!r} decision is not signed (forged, or recorded without a "
            "signing key)"
        )
    if shown_digest is None:
        return (
            f"{where}: the {kind!r} decision's request has no 'requested' event, so what "
            "it approved is unknown"
        )
    decision = data.get("decision")
    payload = decision_payload(
        request_id=str(ev.request_id),
        digest=shown_digest,
        decision=decision if isinstance(decision, Mapping) else {"type": kind},
        reviewer=sig.get("reviewer"),
        roles=sig.get("roles") or (),
        at=str(sig.get("at")),
    )
    why = verifier.verify(sig, payload)
    if why is not None:
        return f"{where}: {why}"
    recorded = data.get("reviewer") or ev.actor
    if sig.get("reviewer") != recorded:
        return f"{where}: signed by {sig.get('reviewer')!r} but recorded as decided by {recorded!r}"
    return None


def verify_with_signatures(
    store: ApprovalStore,
    verifier: DecisionVerifier | None,
    *,
    keys: KeyProvider | None = None,
    anchor: Mapping[str, Any] | None = None,
    since: Mapping[str, Any] | None = None,
    page: int = 5000,
) -> AuditReport:
    """:meth:`ApprovalStore.verify_audit`, plus (when ``verifier`` holds the trusted
    public keys) a check of every approving ``decided`` event's signature; each unsigned
    or wrongly signed one is a problem naming its seq and request. Reads in pages, so
    memory stays flat; with ``since`` only events after the checkpoint are checked."""
    report = store.verify_audit(keys=keys, anchor=anchor, since=since, page=page)
    if verifier is None:
        return report
    after = 0
    if since is not None:  # verify_audit already refused an untrustworthy checkpoint
        start, _ = check_anchor(since, keys=keys if keys is not None else store.audit_key())
        after = min((h.seq for h in start.values()), default=0)
    problems: list[str] = []
    checked = 0
    while True:
        rows = store.list_audit(after_seq=after, limit=page)
        for ev in rows:
            after = ev.seq or after
            if ev.event != "decided" or _decision_type(ev) not in APPROVING:
                continue
            checked += 1
            why = check_decided_event(ev, verifier, _shown_digest(store, str(ev.request_id)))
            if why is not None and len(problems) <= _MAX_PROBLEMS:
                problems.append(
                    why if len(problems) < _MAX_PROBLEMS else "... more problems not listed"
                )
        if len(rows) < page:
            break
    notes = [*report.notes, f"{checked} approving decision signature(s) checked"]
    return dataclasses.replace(
        report,
        ok=report.ok and not problems,
        problems=[*report.problems, *problems],
        notes=notes,
        checkpoint=report.checkpoint if not problems else None,
    )
