"""The notebook approval widget: a thin ipywidgets view over :class:`~hitl_langgraph.inbox.Inbox`.

::

    from hitl_langgraph.widget import ApprovalWidget
    ApprovalWidget(inbox, reviewer=Reviewer("alice", {"finance"}))   # or inbox.widget(...)

Every rule (authority, quorum, digest binding, exactly once) is the inbox's: the widget
only collects the reviewer's input, calls ``inbox.approve/reject/edit/respond`` with the
digest of the request it showed, and displays the outcome or the refusal. Edited
arguments are checked against the tool's schema before anything is sent.

Needs the ``notebook`` extra: ``pip install "hitl-langgraph[notebook]"``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import DecisionError, HitlError, missing_dependency
from ..gates.tool_node import validate_tool_args
from ..store.records import ApprovalRecord
from .display import record_html, records_html

try:
    import ipywidgets as w
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise missing_dependency("ipywidgets", "notebook", _exc) from _exc

__all__ = ["ApprovalWidget"]


def _label(rec: ApprovalRecord) -> str:
    args = json.dumps(rec.args, default=str)
    if len(args) > 50:
        args = args[:49] + "…"
    return f"{rec.tool} {args} · risk {rec.score:.2f} · {rec.request_id}"


class ApprovalWidget(w.VBox):  # type: ignore[misc]
    """Approve / Reject (with reason) / Edit (JSON args) / Respond for pending requests.

    Args:
        inbox: the inbox to act through (attach the graph to it to resume threads).
        reviewer: who is deciding; given once, used for every decision.
        tools: tool name -> tool, to validate edited arguments (default: the tools of the
            inbox graph's ``GatedToolNode``).
        limit: how many pending requests to list.
        filters: passed to ``inbox.pending`` (``tool=``, ``role=``, ``min_risk=`` ...).
    """

    def __init__(
        self,
        inbox: Any,
        *,
        reviewer: Any,
        tools: Mapping[str, Any] | None = None,
        limit: int = 50,
        **filters: Any,
    ) -> None:
        self.inbox = inbox
        self.reviewer = reviewer
        self.limit = limit
        self.filters = filters
        self._tools = tools
        self.header = w.HTML()
        self.picker = w.Dropdown(description="request", layout=w.Layout(width="95%"))
        self.details = w.HTML()
        self.reason = w.Textarea(
            placeholder="reason (reject) or answer (respond)",
            description="message",
            layout=w.Layout(width="95%"),
        )
        self.args_editor = w.Textarea(
            description="edit args", layout=w.Layout(width="95%", height="90px")
        )
        self.approve_button = w.Button(description="Approve", button_style="success")
        self.reject_button = w.Button(description="Reject", button_style="danger")
        self.edit_button = w.Button(description="Edit", button_style="warning")
        self.respond_button = w.Button(description="Respond", button_style="info")
        self.refresh_button = w.Button(description="Refresh")
        self.outcome = w.HTML()
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self.approve_button.on_click(lambda _b: self._act("approve"))
        self.reject_button.on_click(lambda _b: self._act("reject"))
        self.edit_button.on_click(lambda _b: self._act("edit"))
        self.respond_button.on_click(lambda _b: self._act("respond"))
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.picker.observe(lambda _change: self._show(), names="value")
        buttons = w.HBox(
            [
                self.approve_button,
                self.reject_button,
                self.edit_button,
                self.respond_button,
                self.refresh_button,
            ]
        )
        super().__init__(
            [
                self.header,
                self.picker,
                self.details,
                self.reason,
                self.args_editor,
                buttons,
                self.outcome,
            ]
        )
        self.refresh()

    # -- state -------------------------------------------------------------------------
    @property
    def selected(self) -> ApprovalRecord | None:
        rid = self.picker.value
        if not rid:
            return None
        try:
            rec: ApprovalRecord = self.inbox.get(rid)
        except HitlError:
            return None
        return rec

    def refresh(self) -> None:
        """Reload the pending list (keeps the selection if it is still pending)."""
        page = self.inbox.pending(limit=self.limit, **self.filters)
        items = list(page.items)
        who = html.escape(
            f"{self.reviewer.id} ({', '.join(sorted(self.reviewer.roles)) or 'no roles'})"
        )
        self.header.value = records_html(items, title=f"Pending approvals — acting as {who}")
        keep = self.picker.value
        self.picker.options = [(_label(r), r.request_id) for r in items]
        ids = [r.request_id for r in items]
        self.picker.value = keep if keep in ids else (ids[0] if ids else None)
        self._show()

    def select(self, request_id: str) -> None:
        """Select a request by id (it must be in the pending list)."""
        self.picker.value = request_id

    def _show(self) -> None:
        rec = self.selected
        disabled = rec is None or rec.status != "pending"
        for b in (self.approve_button, self.reject_button, self.edit_button, self.respond_button):
            b.disabled = disabled
        if rec is None:
            self.details.value = "<i>nothing selected</i>"
            self.args_editor.value = ""
            return
        self.details.value = record_html(rec)
        self.args_editor.value = json.dumps(rec.args, indent=2, default=str)
        allowed = set(rec.allowed_decisions)
        self.approve_button.disabled = disabled or "approve" not in allowed
        self.reject_button.disabled = disabled or "reject" not in allowed
        self.edit_button.disabled = disabled or "edit" not in allowed
        self.respond_button.disabled = disabled or "respond" not in allowed

    # -- actions -----------------------------------------------------------------------
    def _tools_map(self) -> Mapping[str, Any]:
        if self._tools is None and getattr(self.inbox, "graph", None) is not None:
            from ..inbox._graph import gate_tools

            return gate_tools(self.inbox.graph) or {}
        return self._tools or {}

    def _edited_args(self, rec: ApprovalRecord) -> dict[str, Any]:
        try:
            args = json.loads(self.args_editor.value or "{}")
        except json.JSONDecodeError as exc:
            raise _Invalid(f"the edited arguments are not valid JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise _Invalid("the edited arguments must be a JSON object")
        try:
            validate_tool_args(self._tools_map(), rec.tool, args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise _Invalid(f"the edited arguments do not fit {rec.tool}: {problems}") from exc
        return args

    def _act(self, kind: str) -> None:
        rec = self.selected
        self.last_error = None
        self.last_result = None
        if rec is None:
            self._say("error", "no pending request selected")
            return
        message = self.reason.value.strip() or None
        try:
            if kind == "approve":
                result = self.inbox.approve(
                    rec.request_id, reviewer=self.reviewer, reason=message, digest=rec.digest
                )
            elif kind == "reject":
                result = self.inbox.reject(
                    rec.request_id, reviewer=self.reviewer, reason=message, digest=rec.digest
                )
            elif kind == "edit":
                args = self._edited_args(rec)
                result = self.inbox.edit(
                    rec.request_id,
                    reviewer=self.reviewer,
                    args=args,
                    reason=message,
                    digest=rec.digest,
                )
            else:
                if not message:
                    raise _Invalid("write the answer in the message box to respond")
                result = self.inbox.respond(
                    rec.request_id, reviewer=self.reviewer, message=message, digest=rec.digest
                )
        except _Invalid as exc:
            self.last_error = exc
            self._say("not sent", str(exc))
            return
        except DecisionError as exc:
            self.last_error = exc
            self._say(f"refused ({type(exc).__name__})", str(exc))
            self.refresh()
            return
        self.last_result = result
        detail = {
            "resumed": "decision recorded and the graph resumed",
            "recorded": "decision recorded; a worker will resume the graph",
            "partial": f"approval counted ({result.approvals} of {result.quorum})",
            "objection": "objection recorded",
        }.get(result.outcome, result.outcome)
        follow = ""
        if getattr(result, "follow_ups", ()):
            follow = "; the edit needs a new approval: " + ", ".join(
                r.request_id for r in result.follow_ups
            )
        self._say(result.outcome, f"{kind} {rec.request_id}: {detail}{follow}")
        self.reason.value = ""
        self.refresh()

    def _say(self, status: str, text: str) -> None:
        color = {"resumed": "#2e7d32", "recorded": "#2e7d32", "partial": "#1565c0"}.get(
            status, "#c62828"
        )
        self.outcome.value = (
            f"<div style='color:{color}'><b>{html.escape(status)}</b>: {html.escape(text)}</div>"
        )


class _Invalid(Exception):
    """Input the widget refuses before calling the inbox."""
