"""Export the audit trail as evidence of human oversight: JSONL or CSV.

One row per audit event, in chain order, with the columns a compliance officer asks
for: when (``at``), what (``event``, ``tool``, ``args_digest``, ``decision``), who
(``requester``, ``reviewer`` and their ``reviewer_roles``, or ``actor`` for system
events; ``approvers`` lists every vote of a quorum as ``id[roles]``), why
(``reason``), under which rules (``policy_version``), and the chain
fields (``seq``, ``prev_hash``, ``hash``). Where an event's own data lacks the tool,
digest or policy version (an ``executed`` event, say), they are filled in from the
request row.

JSONL rows also carry the raw event (``actor``, ``data``), so an exported file can be
checked on its own, without database access: :func:`verify_jsonl` (CLI:
``hitl audit verify --file export.jsonl``) recomputes every hash.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, TextIO

from ..errors import ConfigurationError
from ..store.base import ApprovalStore, AuditReport
from ..store.chain import (
    ANCHOR_KIND,
    AuditHeads,
    ChainVerifier,
    StreamHead,
    check_anchor,
    make_anchor,
)
from ..store.keys import KeyProvider
from ..store.records import ApprovalRecord, AuditEvent

__all__ = ["COLUMNS", "audit_rows", "event_from_row", "export_audit", "verify_jsonl"]

COLUMNS: tuple[str, ...] = (
    "seq",
    "at",
    "event",
    "request_id",
    "thread_id",
    "tool",
    "args_digest",
    "decision",
    "requester",
    "reviewer",
    "reviewer_roles",
    "approvers",
    "actor",
    "reason",
    "policy_version",
    "prev_hash",
    "hash",
    "stream",
    "stream_seq",
    "mac",
    "key_id",
)
_REVIEWER_EVENTS = frozenset(
    {"decided", "approval", "objection", "refused", "expired", "cancelled", "escalated"}
)


def _decision(data: dict[str, Any]) -> str | None:
    d = data.get("decision")
    if isinstance(d, dict):
        return None if d.get("type") is None else str(d["type"])
    return None if d is None else str(d)


def _reason(data: dict[str, Any]) -> str | None:
    for key in ("reason", "message"):
        if data.get(key):
            return str(data[key])
    d = data.get("decision")
    if isinstance(d, dict) and d.get("message"):
        return str(d["message"])
    return None


def _approvers(data: dict[str, Any]) -> str | None:
    votes = data.get("approvals")
    if not isinstance(votes, list) or not votes:
        return None
    return "; ".join(
        f"{v.get('reviewer')}[{','.join(v.get('roles') or ())}]"
        for v in votes
        if isinstance(v, dict)
    )


def _row(ev: AuditEvent, rec: ApprovalRecord | None) -> dict[str, Any]:
    data = ev.data or {}
    reviewer = data.get("reviewer") or (ev.actor if ev.event in _REVIEWER_EVENTS else None)
    requester = data.get("requester") or (ev.actor if ev.event == "requested" else None)
    if requester is None and rec is not None:
        requester = rec.requester
    return {
        "seq": ev.seq,
        "at": ev.at.isoformat(),
        "event": ev.event,
        "request_id": ev.request_id,
        "thread_id": ev.thread_id,
        "tool": data.get("tool") or (rec.tool if rec else None),
        "args_digest": data.get("digest") or (rec.digest if rec else None),
        "decision": _decision(data),
        "requester": requester,
        "reviewer": reviewer,
        "reviewer_roles": list(data.get("reviewer_roles") or ()),
        "approvers": _approvers(data),
        "actor": ev.actor,
        "reason": _reason(data),
        "policy_version": data.get("policy_version") or (rec.policy_version if rec else None),
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
        "stream": ev.stream,
        "stream_seq": ev.stream_seq,
        "mac": ev.mac,
        "key_id": ev.key_id,
    }


def audit_rows(
    store: ApprovalStore, *, request_id: str | None = None, after_seq: int = 0, page: int = 1000
) -> Iterator[tuple[dict[str, Any], AuditEvent]]:
    """``(row, event)`` for every audit event after ``after_seq``, in chain order."""
    cache: dict[str, ApprovalRecord | None] = {}
    seq = after_seq
    while True:
        events = store.list_audit(after_seq=seq, limit=page, request_id=request_id)
        for ev in events:
            rid = ev.request_id
            if rid is not None and rid not in cache:
                if len(cache) > 10_000:
                    cache.clear()
                cache[rid] = store.get_request(rid)
            yield _row(ev, cache.get(rid) if rid else None), ev
            seq = ev.seq or seq
        if len(events) < page:
            return


def export_audit(
    store: ApprovalStore,
    out: TextIO,
    *,
    format: str = "jsonl",
    request_id: str | None = None,
    after_seq: int = 0,
) -> int:
    """Write the trail to ``out`` as ``jsonl`` or ``csv``; returns the number of rows."""
    if format not in ("jsonl", "csv"):
        raise ConfigurationError(f"audit export format must be 'jsonl' or 'csv', got {format!r}")
    n = 0
    writer: Any = None
    if format == "csv":
        writer = csv.DictWriter(out, fieldnames=[*COLUMNS, "data"], extrasaction="ignore")
        writer.writeheader()
    ends: dict[int, StreamHead] = {}
    for row, ev in audit_rows(store, request_id=request_id, after_seq=after_seq):
        if ev.stream is not None:
            ends[ev.stream] = StreamHead(
                ev.stream, int(ev.stream_seq or 0), ev.hash, int(ev.seq or 0)
            )
        if writer is not None:
            writer.writerow(
                {
                    **row,
                    "reviewer_roles": ";".join(row["reviewer_roles"]),
                    "data": json.dumps(ev.data, sort_keys=True, default=str),
                }
            )
        else:
            out.write(json.dumps({**row, "data": ev.data}, sort_keys=True, default=str) + "\n")
        n += 1
    if writer is None and request_id is None and after_seq == 0 and n:
        # a trailer naming where every stream ends, so dropping a stream's last rows from
        # the file is detected (HMAC-tagged when the store has an audit key)
        trailer = make_anchor(
            AuditHeads(ends, max((h.seq for h in ends.values()), default=0)),
            at=datetime.now(timezone.utc),
            keys=store.audit_key(),
            note="end of export",
        )
        out.write(json.dumps(trailer, sort_keys=True) + "\n")
    return n


def event_from_row(row: dict[str, Any]) -> AuditEvent:
    """The audit event of an exported JSONL row (or an evidence bundle's chain row)."""
    return AuditEvent(
        event=row["event"],
        at=datetime.fromisoformat(row["at"]),
        request_id=row["request_id"],
        thread_id=row["thread_id"],
        actor=row["actor"],
        data=row["data"],
        seq=row["seq"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        stream=row.get("stream"),
        stream_seq=row.get("stream_seq"),
        mac=row.get("mac"),
        key_id=row.get("key_id"),
    )


def verify_jsonl(
    lines: Iterable[str],
    *,
    keys: KeyProvider | None = None,
    anchor: Mapping[str, Any] | None = None,
) -> AuditReport:
    """Recompute the hash chains of a JSONL export (all rows, in ``seq`` order).

    Detects an edited, deleted, inserted or reordered row without database access; with
    ``keys`` (the audit key) also rows re-hashed without it, and with ``anchor`` rows
    deleted after the anchor. An export made with ``after_seq`` or ``request_id`` is a
    partial chain: each row's own hash is still checked, and gaps are reported.
    """
    problems: list[str] = []
    anchor_heads: dict[int, StreamHead] = {}
    if anchor is not None:
        anchor_heads, problems = check_anchor(anchor, keys=keys)
    verifier = ChainVerifier(keys, anchor=anchor_heads)
    trailer: dict[str, Any] | None = None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if isinstance(row, dict) and row.get("kind") == ANCHOR_KIND:
                trailer = row
                continue
            ev = event_from_row(row)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"line {lineno}: not an audit export row ({exc})")
            continue
        verifier.feed(ev)
    problems += verifier.finish(None)
    if trailer is not None:  # the heads the export ended with: every stream must reach them
        ends, bad = check_anchor(trailer, keys=keys)
        problems += [p.replace("anchor:", "export trailer:") for p in bad]
        for s, h in sorted(ends.items()):
            got = verifier.state.get(s)
            if got is None or got[0] != h.n or got[1] != h.hash:
                last = 0 if got is None else got[0]
                problems.append(
                    f"stream {s}: the export ends it at #{h.n} (seq {h.seq}) but the file's "
                    f"last row of it is #{last}: rows missing (deleted from the file?)"
                )
    return AuditReport(
        ok=not problems,
        events=verifier.events,
        problems=problems,
        head=verifier.head,
        keyed=keys is not None,
    )
