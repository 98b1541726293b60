"""Evidence bundles: everything an auditor needs about one request (or a period), in one
self-contained JSON file that verifies offline with the deployment's public key.

A bundle holds, per request: the action as proposed (the request row) and as shown to
the reviewer (the chained ``requested`` event), the risk assessment with its reasons
and policy version, the reviewers with their identity and roles, the signed decisions
with their times and waits, the execution and its result, the Phoenix trace ids, and
the request's audit events. ``chain_proof`` carries every row of the touched audit
streams from the request's first event up to an anchor (the heads at bundle time, or
a published anchor), and the anchor itself, signed. The whole bundle is signed too.

:func:`verify_bundle` checks, without the store: the bundle signature (any edited byte),
the anchor signature, the chain from each request's events to the anchor (hashes,
links, positions; HMACs too when the audit key is given), every decision signature
against the request id and the digest of the action shown, and that the stored request
still matches what was shown. :func:`render_html` renders the same data for people.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigurationError
from ..policy.action import canonical_json, digest_of, request_digest
from ..store.base import ApprovalStore, RequestFilter
from ..store.chain import ChainVerifier, StreamHead, check_anchor, make_anchor
from ..store.keys import DecisionVerifier, KeyProvider, Signer, decision_payload, sign_payload
from ..store.records import ApprovalRecord, AuditEvent, audit_hash
from .export import event_from_row

__all__ = [
    "BUNDLE_KIND",
    "BundleReport",
    "build_bundle",
    "render_html",
    "verify_bundle",
]

BUNDLE_KIND = "hitl-evidence-bundle"
_MAX_PROOF_ROWS = 1_000_000


def _event_row(ev: AuditEvent) -> dict[str, Any]:
    return {
        "seq": ev.seq,
        "event": ev.event,
        "at": ev.at.isoformat(),
        "request_id": ev.request_id,
        "thread_id": ev.thread_id,
        "actor": ev.actor,
        "data": ev.data,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
        "stream": ev.stream,
        "stream_seq": ev.stream_seq,
        "mac": ev.mac,
        "key_id": ev.key_id,
    }


def _requests(
    store: ApprovalStore,
    request_ids: Iterable[str],
    since: datetime | None,
    until: datetime | None,
) -> Iterator[ApprovalRecord]:
    for rid in request_ids:
        rec = store.get_request(rid)
        if rec is None:
            raise ConfigurationError(f"no request {rid!r} in the store; check the id")
        yield rec
    if since is None and until is None:
        return
    after: tuple[datetime, str] | None = None
    while True:
        page = store.list_requests(RequestFilter(status=None), limit=500, after=after)
        for rec in page:
            if since is not None and rec.created_at < since:
                continue
            if until is not None and rec.created_at >= until:
                return
            yield rec
        if len(page) < 500:
            return
        after = (page[-1].created_at, page[-1].request_id)


def _section(rec: ApprovalRecord, events: list[AuditEvent], store: ApprovalStore) -> dict[str, Any]:
    requested = next((e for e in events if e.event in ("requested", "review", "denied")), None)
    reviewers: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    for e in events:
        d = e.data or {}
        if e.event in ("decided", "approval", "objection", "refused"):
            reviewers.append(
                {
                    "event": e.event,
                    "reviewer": d.get("reviewer") or e.actor,
                    "roles": list(d.get("reviewer_roles") or ()),
                    "at": e.at.isoformat(),
                    "reason": d.get("reason") or d.get("message"),
                }
            )
        if e.event == "decided":
            dec = d.get("decision")
            decisions.append(
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "decision": dec,
                    "reviewer": d.get("reviewer") or e.actor,
                    "roles": list(d.get("reviewer_roles") or ()),
                    "waited_seconds": d.get("waited_seconds"),
                    "via": d.get("via", "gate"),
                    "signature": d.get("signature"),
                }
            )
    ex = store.get_execution(rec.request_id)
    execution = None
    if ex is not None:
        execution = {
            "state": ex.state,
            "worker": ex.worker,
            "started_at": ex.started_at.isoformat(),
            "finished_at": None if ex.finished_at is None else ex.finished_at.isoformat(),
            "error": ex.error,
        }
    executed = [e.data for e in events if e.event == "executed"]
    if executed and execution is not None:
        execution["result"] = executed[-1].get("result", executed[-1].get("summary"))
    meta = rec.metadata or {}
    return {
        "request_id": rec.request_id,
        "proposed": {
            "tool": rec.tool,
            "args": rec.args,
            "digest": rec.digest,
            "thread_id": rec.thread_id,
            "requester": rec.requester,
            "created_at": rec.created_at.isoformat(),
        },
        "shown": None
        if requested is None
        else {
            "tool": requested.data.get("tool"),
            "args": requested.data.get("args"),
            "digest": requested.data.get("digest"),
            "seq": requested.seq,
        },
        "risk": {
            "score": rec.score,
            "route": rec.route,
            "reasons": rec.reasons,
            "policy_version": rec.policy_version,
            "approver_roles": rec.approver_roles,
            "quorum": rec.quorum,
        },
        "status": rec.status,
        "reviewers": reviewers,
        "decisions": decisions,
        "execution": execution,
        "trace": {
            "trace_id": meta.get("paused_trace_id") or meta.get("trace_id"),
            "span_id": meta.get("paused_span_id") or meta.get("span_id"),
        },
        "events": [_event_row(e) for e in events],
    }


def build_bundle(
    store: ApprovalStore,
    request_ids: Iterable[str] = (),
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    anchor: Mapping[str, Any] | None = None,
    signer: Signer | None = None,
    phoenix_url: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An evidence bundle for ``request_ids`` and/or the requests created in
    ``[since, until)``. ``anchor``: a published anchor to prove the chain against (it
    must be newer than the requests' events); default: the heads now, signed by
    ``signer``. The bundle is signed by ``signer`` when given."""
    now = now or datetime.now(timezone.utc)
    sections = []
    first: dict[int, int] = {}  # stream -> first position the proof must start at
    min_seq: int | None = None
    for rec in _requests(store, request_ids, since, until):
        events = store.list_audit(request_id=rec.request_id)
        sec = _section(rec, events, store)
        if phoenix_url and sec["trace"]["trace_id"]:
            sec["trace"]["url"] = (
                f"{phoenix_url.rstrip('/')}/redirects/traces/{sec['trace']['trace_id']}"
            )
        sections.append(sec)
        for e in events:
            if e.stream is None or e.stream_seq is None:
                continue
            first[e.stream] = min(first.get(e.stream, e.stream_seq), e.stream_seq)
            min_seq = e.seq if min_seq is None else min(min_seq, e.seq or min_seq)
    if not sections:
        raise ConfigurationError("no requests match; give a request id or a wider --since/--until")
    if anchor is None:
        anchor = make_anchor(store.audit_heads(), at=now, keys=store.audit_key(), signer=signer)
    claims, _ = check_anchor(anchor)
    proof: dict[str, list[dict[str, Any]]] = {str(s): [] for s in first}
    if min_seq is not None:
        remaining = {s for s in first if s in claims}
        missing = sorted(set(first) - set(claims))
        if missing:
            raise ConfigurationError(
                f"the anchor does not cover audit stream(s) {missing} of these requests; "
                "use a newer anchor (hitl audit anchor) or none"
            )
        after, count = min_seq - 1, 0
        while remaining:
            page = store.list_audit(after_seq=after, limit=2000)
            for ev in page:
                after = ev.seq or after
                s = ev.stream
                if s in remaining and ev.stream_seq is not None and ev.stream_seq >= first[s]:
                    if ev.stream_seq <= claims[s].n:
                        proof[str(s)].append(_event_row(ev))
                        count += 1
                    if ev.stream_seq >= claims[s].n:
                        remaining.discard(s)
            if len(page) < 2000 or count > _MAX_PROOF_ROWS:
                break
    bundle: dict[str, Any] = {
        "kind": BUNDLE_KIND,
        "v": 1,
        "generated_at": now.isoformat(),
        "scope": {
            "request_ids": list(request_ids),
            "since": None if since is None else since.isoformat(),
            "until": None if until is None else until.isoformat(),
        },
        "requests": sections,
        "chain_proof": {"anchor": dict(anchor), "streams": proof},
    }
    if signer is not None:
        pem = getattr(signer, "public_pem", None)
        bundle["signer"] = {
            "key_id": signer.key_id,
            "public_key": pem() if callable(pem) else None,
        }
        bundle["signature"] = sign_payload(signer, _bundle_body(bundle))
    return bundle


def _bundle_body(bundle: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in bundle.items() if k != "signature"}).encode()


@dataclass
class BundleReport:
    ok: bool
    requests: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify_bundle(
    data: str | bytes,
    verifier: DecisionVerifier | None,
    *,
    keys: KeyProvider | None = None,
    require_signed_decisions: bool = True,
) -> BundleReport:
    """Check a bundle offline. ``verifier`` holds the trusted public key(s); ``keys``
    (the audit key, optional) also checks each row's HMAC."""
    problems: list[str] = []
    notes: list[str] = []
    try:
        bundle = json.loads(data)
        if not isinstance(bundle, dict) or bundle.get("kind") != BUNDLE_KIND:
            raise ValueError(f"not a {BUNDLE_KIND}")
    except ValueError as exc:
        return BundleReport(False, 0, [f"bundle: not a readable evidence bundle ({exc})"])
    if verifier is None:
        problems.append("bundle: no public key given, so nothing can be trusted")
    elif "signature" not in bundle:
        problems.append("bundle: not signed")
    else:
        why = verifier.verify(bundle["signature"], _bundle_body(bundle))
        if why is not None:
            problems.append(f"bundle: signature invalid ({why}): the file was edited")
    proof = bundle.get("chain_proof") or {}
    anchor = proof.get("anchor") or {}
    try:
        claims, bad = check_anchor(anchor, keys=keys, verifier=verifier)
    except ConfigurationError as exc:
        return BundleReport(False, 0, [*problems, f"chain proof: {exc}"])
    problems += bad
    if "signature" not in anchor and keys is None:
        problems.append("anchor: not signed, so it cannot be trusted offline")
    proven: set[str] = set()
    for s_text, rows in dict(proof.get("streams") or {}).items():
        s = int(s_text)
        if not rows:
            problems.append(f"chain proof: stream {s} has no rows")
            continue
        first = event_from_row(rows[0])
        start = {s: StreamHead(s, int(first.stream_seq or 1) - 1, first.prev_hash, 0)}
        v = ChainVerifier(keys, start=start, require_keyed=keys is not None)
        for row in rows:
            ev = event_from_row(row)
            v.feed(ev)
            proven.add(ev.hash)
        problems += [f"chain proof: {p}" for p in v.finish(None)]
        got = v.state.get(s)
        claim = claims.get(s)
        if claim is None:
            problems.append(f"chain proof: stream {s} is not covered by the anchor")
        elif got is None or (got[0], got[1]) != (claim.n, claim.hash):
            problems.append(
                f"chain proof: stream {s} does not reach the anchored head #{claim.n} "
                "(rows missing or altered)"
            )
    requests = list(bundle.get("requests") or ())
    for sec in requests:
        rid = sec.get("request_id")
        for row in sec.get("events") or ():
            ev = event_from_row(row)
            if audit_hash(ev.prev_hash, ev) != ev.hash:
                problems.append(f"request {rid}: event seq {ev.seq} ({ev.event}) was edited")
            elif ev.stream is not None and ev.hash not in proven:
                problems.append(f"request {rid}: event seq {ev.seq} is not in the chain proof")
        shown = sec.get("shown") or {}
        proposed = sec.get("proposed") or {}
        if shown:
            tool, args = str(shown.get("tool")), dict(shown.get("args") or {})
            accepted = (request_digest(str(rid), tool, args), digest_of(tool, args))
            if shown.get("digest") not in accepted:
                problems.append(f"request {rid}: the args shown do not match their digest")
            if (proposed.get("args"), proposed.get("digest")) != (
                shown.get("args"),
                shown.get("digest"),
            ):
                problems.append(
                    f"request {rid}: the stored request differs from what was recorded when it "
                    "was shown (request row edited)"
                )
        else:
            problems.append(f"request {rid}: no 'requested' event (what was shown is unknown)")
        for dec in sec.get("decisions") or ():
            sig = dec.get("signature")
            if not sig:
                if require_signed_decisions:
                    problems.append(
                        f"request {rid}: decision at seq {dec.get('seq')} is not signed"
                    )
                continue
            if verifier is None:
                continue
            decision = dict(dec.get("decision") or {})
            payload = decision_payload(
                request_id=str(rid),
                digest=str(shown.get("digest") if shown else proposed.get("digest")),
                decision=decision,
                reviewer=sig.get("reviewer"),
                roles=sig.get("roles") or (),
                at=str(sig.get("at")),
            )
            why = verifier.verify(sig, payload)
            if why is not None:
                problems.append(f"request {rid}: decision at seq {dec.get('seq')}: {why}")
    if keys is None:
        notes.append(
            "row HMACs not checked (no audit key given); hashes, links and signatures were"
        )
    return BundleReport(not problems, len(requests), problems, notes)


def _e(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value, sort_keys=True, default=str))
    return html.escape("" if value is None else str(value))


def render_html(bundle: Mapping[str, Any]) -> str:
    """A human-readable page of the bundle (same data; the JSON is what verifies)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Evidence of human oversight"
        "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}code{font-size:90%}</style></head><body>",
        "<h1>Evidence of human oversight</h1>",
        f"<p>Generated {_e(bundle.get('generated_at'))}. Signed by "
        f"<code>{_e((bundle.get('signer') or {}).get('key_id'))}</code>. Verify offline: "
        "<code>hitl audit verify-bundle FILE --public-key KEY.pem</code></p>",
    ]
    for sec in bundle.get("requests") or ():
        p, r, shown = sec.get("proposed") or {}, sec.get("risk") or {}, sec.get("shown") or {}
        parts.append(
            f"<h2>Request <code>{_e(sec.get('request_id'))}</code> — {_e(sec.get('status'))}</h2>"
        )
        parts.append("<table>")
        rows = [
            ("Action proposed", f"{p.get('tool')}({json.dumps(p.get('args'), default=str)})"),
            (
                "Action shown to the reviewer",
                f"{shown.get('tool')}({json.dumps(shown.get('args'), default=str)})",
            ),
            ("Digest", p.get("digest")),
            ("Requester", p.get("requester")),
            (
                "Risk",
                f"score {r.get('score')} → {r.get('route')}; " + "; ".join(r.get("reasons") or ()),
            ),
            ("Policy version", r.get("policy_version")),
            (
                "Trace",
                (sec.get("trace") or {}).get("url") or (sec.get("trace") or {}).get("trace_id"),
            ),
        ]
        parts += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows]
        parts.append(
            "</table><h3>Decisions</h3><table><tr><th>at</th><th>reviewer</th>"
            "<th>roles</th><th>decision</th><th>waited (s)</th><th>signature</th></tr>"
        )
        for d in sec.get("decisions") or ():
            dec = d.get("decision") or {}
            sig = d.get("signature") or {}
            parts.append(
                f"<tr><td>{_e(d.get('at'))}</td><td>{_e(d.get('reviewer'))}</td>"
                f"<td>{_e(', '.join(d.get('roles') or ()))}</td><td>{_e(dec.get('type'))} "
                f"{_e(dec.get('message') or '')}</td><td>{_e(d.get('waited_seconds'))}</td>"
                f"<td><code>{_e(sig.get('key_id') or 'unsigned')}</code></td></tr>"
            )
        ex = sec.get("execution") or {}
        parts.append(
            "</table><h3>Execution</h3>"
            + (
                f"<p>{_e(ex.get('state'))} by {_e(ex.get('worker'))}, {_e(ex.get('started_at'))}"
                f" → {_e(ex.get('finished_at'))}; result: <code>{_e(ex.get('result'))}</code>"
                f"{'; error: ' + _e(ex.get('error')) if ex.get('error') else ''}</p>"
                if ex
                else "<p>not executed</p>"
            )
        )
        parts.append(
            "<h3>Audit events</h3><table><tr><th>seq</th><th>at</th><th>event</th>"
            "<th>actor</th><th>hash</th></tr>"
        )
        for ev in sec.get("events") or ():
            parts.append(
                f"<tr><td>{_e(ev.get('seq'))}</td><td>{_e(ev.get('at'))}</td>"
                f"<td>{_e(ev.get('event'))}</td><td>{_e(ev.get('actor'))}</td>"
                f"<td><code>{_e(str(ev.get('hash'))[:16])}…</code></td></tr>"
            )
        parts.append("</table>")
    anchor = (bundle.get("chain_proof") or {}).get("anchor") or {}
    parts.append(
        f"<h2>Chain proof</h2><p>Anchor at {_e(anchor.get('at'))} over "
        f"{len(anchor.get('streams') or {})} streams; "
        f"{sum(len(v) for v in ((bundle.get('chain_proof') or {}).get('streams') or {}).values())}"
        " rows link the events above to it.</p></body></html>"
    )
    return "\n".join(parts)
