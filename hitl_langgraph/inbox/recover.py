"""Settle an execution held for a human: the tool started and its worker never finished.

``Inbox.recover(request_id, "rerun" | "mark_done" | "mark_failed")`` (CLI:
``hitl recover REQUEST_ID --rerun | --mark-done [--result TEXT] | --mark-failed``):

* ``mark_done``: the side effect happened; the thread resumes with ``result`` (or a
  note saying a human marked it done) as the tool's output (a ``ToolMessage``).
* ``mark_failed``: it did not happen (or must count as failed); the thread resumes with
  an error ``ToolMessage``.
* ``rerun``: run it again, explicitly; the tool gets the same idempotency key as the
  first time, so a tool that honours it does not act twice.

Each is a compare-and-set on the journal row (a second operator, or the original worker
finishing late, cannot both settle it) with a ``recovered`` audit event in the same
transaction. Then, when the inbox holds the graph, the thread is driven on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ..errors import NothingToRecover, RequestNotFound
from ..gates.journal import SETTLED_TEXT, worker_alive
from ..store.base import ApprovalStore
from ..store.records import AuditEvent
from ._graph import find_interrupt, resume_command, resume_key, thread_config

if TYPE_CHECKING:
    from ._resume import ResumeMixin as Inbox

__all__ = ["RecoverHow", "RecoverResult", "recover", "settle"]

logger = logging.getLogger("hitl_langgraph.inbox")

RecoverHow = Literal["rerun", "mark_done", "mark_failed"]
HOWS: tuple[str, ...] = ("rerun", "mark_done", "mark_failed")


@dataclass
class RecoverResult:
    """What :meth:`Inbox.recover` did."""

    request_id: str
    how: str
    previous_state: str
    thread_id: str | None
    resumed: bool = False
    output: Any = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "how": self.how,
            "previous_state": self.previous_state,
            "thread_id": self.thread_id,
            "resumed": self.resumed,
            "error": self.error,
            "notes": self.notes,
        }


def settle(
    inbox: Inbox,
    request_id: str,
    how: str,
    *,
    result: str | None = None,
    by: str = "operator",
    force: bool = False,
    thread_id: str | None = None,
) -> RecoverResult:
    """Record the human's settlement in the journal (no graph needed)."""
    if how not in HOWS:
        raise NothingToRecover(
            request_id, f"unknown recovery {how!r}; use one of {', '.join(HOWS)}"
        )
    store = inbox.store
    ex = store.get_execution(request_id)
    cmd = f"`hitl recover {request_id} --rerun | --mark-done [--result TEXT] | --mark-failed`"
    if ex is None:
        raise NothingToRecover(
            request_id,
            f"{request_id} was never claimed for execution: nothing to settle. If its thread "
            "is stuck, run `hitl reconcile`",
        )
    if ex.state == "running":
        raise NothingToRecover(
            request_id,
            f"{request_id} was claimed by {ex.worker} but its tool was never called: the next "
            "resume or `hitl reconcile` takes the claim over and runs it once; nothing for a "
            "human to settle",
        )
    if ex.state == "done":
        raise NothingToRecover(
            request_id, f"{request_id} finished at {ex.finished_at}; nothing to settle"
        )
    allowed = ("started",) if how == "mark_failed" else ("started", "failed")
    if ex.state not in allowed:
        raise NothingToRecover(request_id, f"{request_id} is already {ex.state}")
    if ex.state == "started" and worker_alive(ex.worker) is True and not force:
        raise NothingToRecover(
            request_id,
            f"{request_id} was started by {ex.worker}, whose process is still running: it "
            f"may still finish. Wait, or if it hangs stop it and run {cmd} (or pass --force)",
        )
    rec = store.get_request(request_id)
    tid = thread_id or (rec.thread_id if rec is not None else None)
    now = inbox.clock()
    audit = AuditEvent(
        event="recovered",
        at=now,
        request_id=request_id,
        thread_id=tid,
        actor=by,
        data={
            "how": how,
            "previous_state": ex.state,
            "worker": ex.worker,
            "started_at": ex.started_at.isoformat(),
            "result": None if result is None else result[:500],
            "forced": force,
        },
    )
    try:
        ok = _settle_row(store, request_id, how, allowed, audit, now, result, by)
    except RequestNotFound:  # a racing operator's --rerun removed the row meanwhile
        ok = False
    if not ok:
        raise NothingToRecover(
            request_id, f"{request_id} changed while it was being settled; look again"
        )
    return RecoverResult(request_id, how, ex.state, tid)


def _settle_row(
    store: ApprovalStore,
    request_id: str,
    how: str,
    allowed: tuple[str, ...],
    audit: AuditEvent,
    now: datetime,
    result: str | None,
    by: str,
) -> bool:
    """One compare-and-set on the journal row, with its audit event."""
    if how == "rerun":
        return store.reopen_execution(request_id, expected_state=allowed, audit=audit)
    if how == "mark_done":
        return store.finish_execution(
            request_id,
            state="done",
            at=now,
            result_type=SETTLED_TEXT,
            result=None if result is None else result.encode("utf-8", "surrogatepass"),
            audit=audit,
            expected_state=allowed,
        )
    return store.finish_execution(
        request_id,
        state="failed",
        at=now,
        error=result or f"marked failed by {by} after an interrupted run",
        audit=audit,
        expected_state=allowed,
    )


def _drive_args(inbox: Inbox, res: RecoverResult, state: Any) -> Any:
    """The input that drives the thread on: a resume with the recorded decision if it
    still waits for it, ``None`` to continue an unfinished step, or ``...`` for nothing."""
    rec = inbox.store.get_request(res.request_id)
    if rec is not None and rec.decision:
        iid = find_interrupt(state, rec)
        if iid is not None:
            return resume_command(iid, rec.decision)
    if getattr(state, "next", ()):
        return None
    return ...


def _mark_applied(inbox: Inbox, request_id: str) -> None:
    key = resume_key(request_id)
    if inbox.store.claim_execution(key, worker=inbox.worker_id, at=inbox.clock()):
        inbox.store.finish_execution(key, state="done", at=inbox.clock())


def recover(
    inbox: Inbox,
    request_id: str,
    how: str,
    *,
    result: str | None = None,
    by: str = "operator",
    force: bool = False,
    thread_id: str | None = None,
) -> RecoverResult:
    res = settle(inbox, request_id, how, result=result, by=by, force=force, thread_id=thread_id)
    if inbox.graph is None or res.thread_id is None:
        res.notes.append("settled; resume the thread with the graph (no graph here)")
        return res
    cfg = thread_config_for(inbox, res)
    arg = _drive_args(inbox, res, inbox.graph.get_state(cfg))
    if arg is ...:
        res.notes.append("settled; its thread does not wait for anything")
        return res
    try:
        res.output = inbox.graph.invoke(arg, cfg)
        res.resumed = True
        _mark_applied(inbox, request_id)
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    return res


async def arecover(
    inbox: Inbox,
    request_id: str,
    how: str,
    *,
    result: str | None = None,
    by: str = "operator",
    force: bool = False,
    thread_id: str | None = None,
) -> RecoverResult:
    res = await inbox._off(
        settle, inbox, request_id, how, result=result, by=by, force=force, thread_id=thread_id
    )
    if inbox.graph is None or res.thread_id is None:
        res.notes.append("settled; resume the thread with the graph (no graph here)")
        return res
    cfg = thread_config_for(inbox, res)
    state = await inbox.graph.aget_state(cfg)
    arg = await inbox._off(_drive_args, inbox, res, state)
    if arg is ...:
        res.notes.append("settled; its thread does not wait for anything")
        return res
    try:
        res.output = await inbox.graph.ainvoke(arg, cfg)
        res.resumed = True
        await inbox._off(_mark_applied, inbox, request_id)
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    return res


def thread_config_for(inbox: Inbox, res: RecoverResult) -> Any:
    rec = inbox.store.get_request(res.request_id)
    if rec is not None:
        return thread_config(rec, inbox.resume_config, reviewer=None)
    return {"configurable": {"thread_id": res.thread_id}}
