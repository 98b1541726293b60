"""Text output of the ``hitl`` CLI: rich tables, request details, one-line results."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..inbox.results import DecisionResult
from ..store.base import AuditReport
from ..store.records import ApprovalRecord, AuditEvent

__all__ = [
    "UNIDENTIFIED",
    "age",
    "audit_report",
    "decision_line",
    "dumps",
    "one_sentence",
    "pending_table",
    "request_details",
    "table",
]


UNIDENTIFIED = "(unidentified resume)"
"""Who decided, when a plain ``Command(resume=...)`` decided without naming a reviewer."""


def one_sentence(message: str) -> str:
    """An error message on one line, without pydantic's documentation URLs."""
    lines = [
        line.strip()
        for line in message.splitlines()
        if line.strip() and "errors.pydantic.dev" not in line
    ]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def dumps(value: Any) -> str:
    """JSON for ``--json`` output (datetimes as ISO 8601)."""
    return json.dumps(value, indent=2, sort_keys=True, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


def age(delta: timedelta) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h`` (negative deltas: ``-`` prefix)."""
    secs = int(delta.total_seconds())
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    if secs < 60:
        return f"{sign}{secs}s"
    if secs < 3600:
        return f"{sign}{secs // 60}m"
    if secs < 86400:
        return f"{sign}{secs // 3600}h{secs % 3600 // 60:02d}m"
    return f"{sign}{secs // 86400}d{secs % 86400 // 3600:02d}h"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, flex: int = -1) -> str:
    """A borderless rich table: one line per row, columns separated by two spaces. Column
    ``flex`` (default: the last one) is clipped with an ellipsis so that the table fits
    the terminal width (120 columns when there is no terminal)."""
    cols = len(headers)
    flex = flex % cols
    cells = [[str(c) for c in r] for r in rows]
    cells = [[" ".join(c.split()) if i == flex else c for i, c in enumerate(r)] for r in cells]
    widths = [max([len(headers[i])] + [len(r[i]) for r in cells]) for i in range(cols)]
    width = shutil.get_terminal_size((120, 24)).columns
    fixed = sum(w for i, w in enumerate(widths) if i != flex) + 2 * (cols - 1)
    widths[flex] = max(len(headers[flex]), min(widths[flex], width - fixed))
    t = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), expand=False)
    for i, h in enumerate(headers):
        t.add_column(
            Text(h), no_wrap=True, overflow="ellipsis", min_width=widths[i], max_width=widths[i]
        )
    for r in cells:
        t.add_row(*(Text(c) for c in r))
    buf = io.StringIO()
    Console(
        file=buf,
        width=max(width, sum(widths) + 2 * cols),
        color_system=None,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    ).print(t)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def _args(rec: ApprovalRecord) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in rec.args.items())


def pending_table(records: Sequence[ApprovalRecord], now: datetime) -> str:
    if not records:
        return "no pending requests"
    rows = []
    for r in records:
        expires = "-" if r.expires_at is None else age(r.expires_at - now)
        if r.expires_at is not None and r.expires_at < now:
            expires = "OVERDUE"
        votes = f"{len(r.approvals)}/{r.quorum}" if r.quorum > 1 else "-"
        rows.append(
            [
                r.request_id,
                age(now - r.created_at),
                r.tool,
                f"{r.score:.2f}",
                ",".join(r.approver_roles) or "any",
                votes,
                expires,
                r.thread_id,
                _args(r),
            ]
        )
    headers = ["ID", "AGE", "TOOL", "RISK", "ROLES", "VOTES", "EXPIRES", "THREAD", "ARGS"]
    return table(headers, rows)


def request_details(rec: ApprovalRecord, history: Sequence[AuditEvent], now: datetime) -> str:
    """Everything a reviewer needs before deciding one request."""
    lines = [
        f"request     {rec.request_id}",
        f"status      {rec.status}"
        + (
            f" (by {rec.decided_by or UNIDENTIFIED} at {rec.decided_at.isoformat()})"
            if rec.decided_at
            else ""
        ),
        f"tool        {rec.tool}",
        f"args        {json.dumps(rec.args, sort_keys=True, default=str)}",
        f"digest      {rec.digest}",
        f"risk        {rec.score:.2f} ({rec.route})",
        f"reasons     {'; '.join(rec.reasons)}",
        f"thread      {rec.thread_id} (node {rec.node})",
        f"requester   {rec.requester or '-'}",
        f"roles       {', '.join(rec.approver_roles) or 'any reviewer'}",
        f"decisions   {', '.join(rec.allowed_decisions)}",
        f"quorum      {len(rec.approvals)}/{rec.quorum} approvals"
        if rec.quorum > 1
        else "quorum      1",
        f"created     {rec.created_at.isoformat()} ({age(now - rec.created_at)} ago)",
        f"expires     {rec.expires_at.isoformat()} (then {rec.on_expiry})"
        if rec.expires_at
        else "expires     never",
        f"policy      {rec.policy_version}",
    ]
    if rec.parent_request_id:
        lines.append(f"edit of     {rec.parent_request_id}")
    if rec.decision:
        lines.append(f"decision    {json.dumps(rec.decision, sort_keys=True, default=str)}")
    for a in rec.approvals:
        lines.append(
            f"approval    {a.get('reviewer')} ({', '.join(a.get('roles') or ()) or 'no roles'}) "
            f"at {a.get('at')}" + (f": {a['reason']}" if a.get("reason") else "")
        )
    if history:
        rows = [
            [str(e.seq), e.at.isoformat(timespec="seconds"), e.event, e.actor or "-", _note(e)]
            for e in history
        ]
        lines += ["", "audit trail", table(["SEQ", "AT", "EVENT", "ACTOR", "DETAIL"], rows)]
    return "\n".join(lines)


def _note(e: AuditEvent) -> str:
    d = e.data or {}
    if e.event == "refused":
        return f"{d.get('error')}: {d.get('message')}"
    decision = d.get("decision")
    if isinstance(decision, dict):
        kind = str(decision.get("type"))
        why = d.get("reason") or decision.get("message")
        return kind + (f" - {why}" if why else "")
    if e.event == "escalated":
        return f"step {d.get('step')}: roles now {', '.join(d.get('approver_roles') or ())}"
    if e.event == "executed":
        return str((d.get("result") or {}).get("content", ""))
    return str(d.get("reason") or d.get("message") or "")


def decision_line(res: DecisionResult) -> str:
    rec = res.record
    head = f"{res.decision} {res.request_id} ({rec.tool})"
    if res.outcome == "resumed":
        tail = f"recorded and resumed thread {rec.thread_id}"
        if res.follow_ups:
            tail += "; the edit needs a new approval: " + ", ".join(
                f.request_id for f in res.follow_ups
            )
        elif res.pending_interrupts():
            tail += f"; the thread waits on {len(res.pending_interrupts())} more interrupt(s)"
        return f"{head}: {tail}"
    if res.outcome == "partial":
        return f"{head}: approval {res.approvals}/{res.quorum} recorded; more approvals needed"
    if res.outcome == "objection":
        return f"{head}: objection recorded; the request stays open"
    return f"{head}: recorded as {rec.status}; a worker will resume thread {rec.thread_id}"


def audit_report(report: AuditReport) -> str:
    if report.ok:
        return f"audit trail OK: {report.events} events, head {report.head[:16]}"
    lines = [f"audit trail FAILED verification ({len(report.problems)} problem(s)):"]
    lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines)
