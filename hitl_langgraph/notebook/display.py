"""Jupyter rendering: readable HTML for approval requests, assessments and decisions.

Objects render themselves through ``_repr_html_`` (which Jupyter calls) and keep a short
plain-text ``__repr__`` for terminals. Long argument values are folded into
``<details>`` elements. A link to the paused trace in Phoenix appears when the request
carries trace ids (tracing on) and a Phoenix URL is known: ``configure(phoenix_url=...,
project=...)`` or the ``PHOENIX_URL`` / ``PHOENIX_PROJECT`` environment variables.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._display_hooks import register_html

if TYPE_CHECKING:
    from ..policy.risk import Assessment
    from ..store.records import ApprovalRecord

__all__ = [
    "assessment_html",
    "configure",
    "decision_html",
    "record_html",
    "records_html",
    "trace_url",
]

_FOLD_AT = 80
_settings: dict[str, str | None] = {"phoenix_url": None, "project": None}

_STYLE = (
    "<style>.hitl{font-family:system-ui,sans-serif;font-size:13px;border:1px solid #ddd;"
    "border-radius:6px;padding:8px 10px;margin:4px 0;max-width:900px}"
    ".hitl table{border-collapse:collapse}.hitl td,.hitl th{padding:2px 8px;text-align:left;"
    "vertical-align:top}.hitl th{color:#555;font-weight:600}.hitl .risk{display:inline-block;"
    "height:8px;border-radius:4px;margin-right:6px}.hitl code{font-size:12px}"
    ".hitl .st{font-weight:600}.hitl ul{margin:2px 0 2px 16px;padding:0}</style>"
)


def configure(*, phoenix_url: str | None = None, project: str | None = None) -> None:
    """Set the Phoenix base URL and project used for trace links."""
    if phoenix_url is not None:
        _settings["phoenix_url"] = phoenix_url.rstrip("/")
    if project is not None:
        _settings["project"] = project


def trace_url(trace_id: str | None, span_id: str | None = None) -> str | None:
    """Link to a paused run in the Phoenix UI, or ``None`` if no Phoenix URL is known.

    With the span id it is Phoenix's ``/redirects/spans/<span id>``, which opens the trace
    with that span selected; without it, the project's trace view by trace id.
    """
    base = _settings["phoenix_url"] or os.environ.get("PHOENIX_URL")
    if not base or not (trace_id or span_id):
        return None
    base = base.rstrip("/")
    if span_id:
        return f"{base}/redirects/spans/{quote(span_id)}"
    project = _settings["project"] or os.environ.get("PHOENIX_PROJECT") or "default"
    return f"{base}/projects/{quote(project)}/traces/{quote(str(trace_id))}"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= _FOLD_AT:
        return f"<code>{_e(text)}</code>"
    return (
        f"<details><summary><code>{_e(text[:_FOLD_AT])}…</code> ({len(text)} chars)</summary>"
        f"<pre style='white-space:pre-wrap'>{_e(text)}</pre></details>"
    )


def _args_table(args: Mapping[str, Any]) -> str:
    if not args:
        return "<i>no arguments</i>"
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in args.items())
    return f"<table>{rows}</table>"


def _risk(score: float) -> str:
    color = "#2e7d32" if score <= 0.5 else "#f9a825" if score <= 0.85 else "#c62828"
    width = max(4, int(score * 120))
    return f"<span class='risk' style='width:{width}px;background:{color}'></span>{score:.2f}"


def _reasons(reasons: Iterable[str]) -> str:
    items = "".join(f"<li>{_e(r)}</li>" for r in reasons)
    return f"<ul>{items}</ul>" if items else "<i>none</i>"


def _time(at: datetime | None) -> str:
    return "—" if at is None else _e(at.isoformat(timespec="seconds"))


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def record_html(rec: ApprovalRecord) -> str:
    """One approval request as an HTML card."""
    link = trace_url(
        str(rec.metadata.get("paused_trace_id") or "") or None,
        str(rec.metadata.get("paused_span_id") or "") or None,
    )
    pairs: list[tuple[str, str]] = [
        ("action", f"<b>{_e(rec.tool)}</b>" + (" (state)" if rec.kind == "state" else "")),
        ("arguments", _args_table(rec.args)),
        ("status", f"<span class='st'>{_e(rec.status)}</span>"),
        ("risk", f"{_risk(rec.score)} → route <b>{_e(rec.route)}</b>"),
        ("why", _reasons(rec.reasons)),
        ("allowed", _e(", ".join(rec.allowed_decisions) or "—")),
        ("who may decide", _e(", ".join(rec.approver_roles) or "anyone")),
    ]
    if rec.quorum > 1:
        pairs.append(("quorum", f"{len(rec.approvals)} of {rec.quorum} approvals"))
    pairs += [
        ("requested", f"{_time(rec.created_at)} by {_e(rec.requester or 'unknown')}"),
        ("expires", _time(rec.expires_at)),
        ("thread", f"<code>{_e(rec.thread_id)}</code> · node <code>{_e(rec.node)}</code>"),
        ("request id", f"<code>{_e(rec.request_id)}</code>"),
        ("digest", f"<code>{_e(rec.digest[:23])}…</code>"),
    ]
    if rec.decision:
        who = f" by {_e(rec.decided_by)}" if rec.decided_by else ""
        pairs.append(
            ("decision", decision_html(rec.decision) + f"{who} at {_time(rec.decided_at)}")
        )
    if link:
        pairs.append(("trace", f"<a href='{_e(link)}' target='_blank'>open in Phoenix</a>"))
    return f"{_STYLE}<div class='hitl'>{_rows(pairs)}</div>"


def records_html(records: Sequence[ApprovalRecord], *, title: str = "Pending approvals") -> str:
    """A table of requests (the inbox view)."""
    if not records:
        return f"{_STYLE}<div class='hitl'><b>{_e(title)}</b>: nothing pending.</div>"
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "request",
            "action",
            "arguments",
            "risk",
            "roles",
            "requested",
            "expires",
            "thread",
        )
    )
    body = "".join(
        "<tr>"
        f"<td><code>{_e(r.request_id)}</code></td><td><b>{_e(r.tool)}</b></td>"
        f"<td>{_value(r.args)}</td><td>{_risk(r.score)}</td>"
        f"<td>{_e(', '.join(r.approver_roles) or 'anyone')}</td><td>{_time(r.created_at)}</td>"
        f"<td>{_time(r.expires_at)}</td><td><code>{_e(r.thread_id)}</code></td>"
        "</tr>"
        for r in records
    )
    return (
        f"{_STYLE}<div class='hitl'><b>{_e(title)}</b> ({len(records)})"
        f"<table><tr>{head}</tr>{body}</table></div>"
    )


def assessment_html(a: Assessment) -> str:
    """The policy's verdict on one action."""
    pairs = [
        ("action", f"<b>{_e(a.action.tool)}</b>"),
        ("arguments", _args_table(a.action.args)),
        ("risk", f"{_risk(a.score)} → route <b>{_e(a.route)}</b>"),
        ("why", _reasons(a.reasons)),
        ("rule", _e(a.rule or "no rule matched")),
        ("who may decide", _e(", ".join(sorted(a.approver_roles)) or "anyone")),
        ("policy version", f"<code>{_e(a.policy_version)}</code>"),
    ]
    return f"{_STYLE}<div class='hitl'>{_rows(pairs)}</div>"


def decision_html(decision: Mapping[str, Any] | Any) -> str:
    """A decision (dict or pydantic model) as a short HTML fragment."""
    d = (
        decision.model_dump(exclude_none=True)
        if hasattr(decision, "model_dump")
        else dict(decision)
    )
    kind = _e(d.get("type", "?"))
    parts = [f"<b>{kind}</b>"]
    if "edited_action" in d:
        ea = d["edited_action"]
        parts.append(f"→ {_e(ea.get('name'))} {_value(ea.get('args', {}))}")
    if d.get("message"):
        parts.append(f"“{_e(d['message'])}”")
    return " ".join(parts)


register_html("assessment", assessment_html)
register_html("decision", decision_html)
register_html("record", record_html)
register_html("records", records_html)
