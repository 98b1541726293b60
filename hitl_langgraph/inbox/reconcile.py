"""Repair the pending-approval index against the checkpointer, and say what changed.

The store and the checkpointer are two databases; a crash, a restore from backup or a
raw ``Command(resume=...)`` can leave them disagreeing. :func:`reconcile` reads the
state of every thread the store knows (plus any ``thread_ids`` you pass) and:

* **cancels** a pending request whose thread has no interrupt asking for it any more
  (status ``cancelled``, ``cancelled`` audit event) - unless the thread's next step
  re-runs the node that asked for it (the run crashed after writing the row, before the
  interrupt was checkpointed): re-driving the thread asks again under the same id, so
  the row stays pending (``awaiting_rerun``). A cancelled row that is asked for again
  is revived (``revived`` audit event) instead of failing;
* **relinks** a pending request found under another interrupt id (``interrupt_id``);
* **inserts** a request row for a gate interrupt whose actions have no row, built from
  the interrupt value (requester from the checkpoint's ``user_id``, ``on_expiry``
  ``reject``), audited as ``requested`` by ``"reconcile"``;
* **applies** a decided request whose interrupt is still pending - the resume was lost
  or its worker crashed (a resume claim older than the inbox's ``stale_after`` is
  released first).

Rows changed within ``grace`` are left alone: a run may be between writing its request
row and saving the checkpoint that holds the interrupt. Reconcile reads one thread
state per known thread, so run it as periodic maintenance, not per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import AlreadyDecided
from ..gates.journal import worker_alive
from ..store.records import ApprovalRecord, AuditEvent
from ._base import DECIDED_STATUSES, RESUME_MARK, iter_requests
from ._graph import hitl_interrupts, resume_key
from .results import ApplyReport, ReconcileReport

if TYPE_CHECKING:
    from ._resume import ResumeMixin as Inbox  # the parts of Inbox that reconcile uses

__all__ = ["RECONCILE_ACTOR", "reconcile"]

RECONCILE_ACTOR = "reconcile"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def record_from_interrupt(
    intr: Any, ar: dict[str, Any], index: int, *, thread_id: str, state: Any, now: datetime
) -> ApprovalRecord:
    """A pending request row rebuilt from a gate interrupt's action request."""
    value = intr.value
    configs = value.get("review_configs") or []
    cfg = configs[index] if index < len(configs) and isinstance(configs[index], dict) else {}
    hitl = value.get("hitl") or {}
    metadata = getattr(state, "metadata", None) or {}
    requester = metadata.get("user_id")
    return ApprovalRecord(
        request_id=str(ar["request_id"]),
        thread_id=thread_id,
        node=str(hitl.get("node") or ""),
        tool=str(ar.get("name") or ""),
        args=dict(ar.get("args") or {}),
        digest=str(ar.get("digest") or ""),
        score=float(ar.get("risk_score") or 0.0),
        route=str(ar.get("route") or "approve"),
        reasons=[*list(ar.get("reasons") or ()), "row rebuilt from the interrupt by reconcile"],
        status="pending",
        created_at=now,
        updated_at=now,
        tool_call_id=ar.get("tool_call_id"),
        interrupt_id=str(intr.id),
        approver_roles=sorted(cfg.get("approver_roles") or ()),
        allowed_decisions=list(cfg.get("allowed_decisions") or ()),
        quorum=int(cfg.get("quorum") or 1),
        policy_version=str(hitl.get("policy_version") or ""),
        requester=None if requester is None else str(requester),
        expires_at=_parse_time(ar.get("expires_at")),
        parent_request_id=ar.get("parent_request_id"),
        metadata={"reconciled": True},
    )


def _cancel(inbox: Inbox, rec: ApprovalRecord, state: Any, now: datetime) -> bool:
    exists = getattr(state, "created_at", None) is not None
    reason = (
        "the thread has no pending interrupt for this request any more"
        if exists
        else "the thread has no checkpoint in the checkpointer"
    )
    try:
        updated = inbox.store.update_request(
            rec.request_id,
            expected_status="pending",
            status="cancelled",
            decided_by=RECONCILE_ACTOR,
            decided_at=now,
            updated_at=now,
            audit=AuditEvent(
                event="cancelled",
                at=now,
                request_id=rec.request_id,
                thread_id=rec.thread_id,
                actor=RECONCILE_ACTOR,
                data={
                    "reason": reason,
                    "interrupt_id": rec.interrupt_id,
                    "thread_exists": exists,
                    "tool": rec.tool,
                    "digest": rec.digest,
                    "policy_version": rec.policy_version,
                },
            ),
        )
    except AlreadyDecided:
        return False
    inbox._notify("cancelled", updated, now, extra={"reason": reason})
    return True


def _will_ask_again(rec: ApprovalRecord, state: Any) -> bool:
    """Whether the thread's next step re-runs the node that asked for ``rec`` (a run that
    crashed after writing the row, before the interrupt was checkpointed): re-driving
    the thread asks again under the same request id, so the row must stay pending."""
    nxt = tuple(getattr(state, "next", ()) or ())
    if not nxt:
        return False
    top = rec.checkpoint_ns.split("|", 1)[0].split(":", 1)[0] if rec.checkpoint_ns else rec.node
    return top in nxt or rec.node in nxt


def _marker_gone(rec: ApprovalRecord) -> bool:
    """The decision's resume marker names an inbox process that no longer exists."""
    mark = rec.metadata.get(RESUME_MARK)
    return isinstance(mark, dict) and worker_alive(str(mark.get("by") or "")) is False


def _insert(inbox: Inbox, rec: ApprovalRecord, now: datetime) -> bool:
    _, created = inbox.store.put_request(
        rec,
        audit=AuditEvent(
            event="requested",
            at=now,
            request_id=rec.request_id,
            thread_id=rec.thread_id,
            actor=rec.requester,
            data={
                "via": RECONCILE_ACTOR,
                "tool": rec.tool,
                "args": rec.args,
                "digest": rec.digest,
                "score": rec.score,
                "route": rec.route,
                "policy_version": rec.policy_version,
                "approver_roles": rec.approver_roles,
                "quorum": rec.quorum,
                "interrupt_id": rec.interrupt_id,
            },
        ),
    )
    return created


def _reapply(inbox: Inbox, rec: ApprovalRecord, now: datetime, report: ReconcileReport) -> None:
    claim = inbox.store.get_execution(resume_key(rec.request_id))
    if claim is not None:
        if claim.state != "running":
            report.errors[rec.request_id] = (
                f"its {(rec.decision or {}).get('type')} decision was applied "
                f"({claim.state} at {claim.finished_at}), yet the thread still asks for it; "
                "inspect the thread"
            )
            return
        gone = worker_alive(claim.worker) is False
        if not gone and now - claim.started_at < inbox.stale_after:
            return  # a worker's resume is in flight
        inbox.store.release_execution(resume_key(rec.request_id))
    elif inbox._marked_fresh(rec, now) is not None:
        return  # the inbox that recorded it is resuming it right now
    applied = ApplyReport()
    inbox._apply_one(rec.request_id, applied, RECONCILE_ACTOR)
    report.applied.extend(applied.applied)
    report.errors.update(applied.errors)


def reconcile(
    inbox: Inbox, *, thread_ids: Sequence[str] = (), grace: timedelta = timedelta(seconds=60)
) -> ReconcileReport:
    """Compare the store with the graph's checkpointer and repair it; see the module doc."""
    graph = inbox._require_graph("reconcile()")
    store = inbox.store
    now = inbox.clock()
    report = ReconcileReport()
    by_thread: dict[str, list[ApprovalRecord]] = {}
    rows: dict[str, ApprovalRecord] = {}
    for rec in iter_requests(store, None, page=500):
        by_thread.setdefault(rec.thread_id, []).append(rec)
        rows[rec.request_id] = rec
    for tid in thread_ids:
        by_thread.setdefault(tid, [])
    for tid, recs in by_thread.items():
        state = graph.get_state({"configurable": {"thread_id": tid}})
        report.checked_threads += 1
        asked = {str(ar.get("request_id")): (intr, ar, i) for intr, ar, i in hitl_interrupts(state)}
        for rec in recs:
            if rec.status != "pending":
                continue
            report.checked_requests += 1
            rid = rec.request_id
            if rid in asked:
                iid = str(asked[rid][0].id)
                if iid != rec.interrupt_id:
                    try:
                        store.update_request(
                            rid, expected_status="pending", interrupt_id=iid, updated_at=now
                        )
                        report.relinked.append(rid)
                    except AlreadyDecided:
                        pass
            elif now - rec.updated_at < grace:
                report.skipped_recent.append(rid)
            elif _will_ask_again(rec, state):
                report.awaiting_rerun.append(rid)
            elif _cancel(inbox, rec, state, now):
                report.cancelled.append(rid)
        for rid, (intr, ar, i) in asked.items():
            existing = rows.get(rid) or store.get_request(rid)
            if existing is None:
                new = record_from_interrupt(intr, ar, i, thread_id=tid, state=state, now=now)
                if _insert(inbox, new, now):
                    report.inserted.append(rid)
            elif existing.status in DECIDED_STATUSES:
                if now - existing.updated_at < grace and not _marker_gone(existing):
                    report.skipped_recent.append(rid)
                else:
                    _reapply(inbox, existing, now, report)
    return report
