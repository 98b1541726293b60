"""Resuming threads with recorded decisions, exactly once (direct and split mode)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import AlreadyDecided, DecisionError
from ..store.base import RequestFilter
from ..store.records import ApprovalRecord, AuditEvent
from ._base import DECIDED_STATUSES, MAX_LIMIT, Committed, InboxBase
from ._graph import asks_for, find_interrupt, not_pending, resume_command, resume_key, thread_config
from .results import ApplyReport, DecisionResult

__all__ = ["ResumeMixin"]

logger = logging.getLogger("hitl_langgraph.inbox")


class ResumeMixin(InboxBase):
    """Claims ``resume:<request_id>``, resumes the thread, marks it applied or reverts."""

    def _claim(self, rec: ApprovalRecord) -> bool:
        return self.store.claim_execution(
            resume_key(rec.request_id), worker=self.worker_id, at=self.clock()
        )

    def _applied(self, rec: ApprovalRecord, actor: str) -> None:
        now = self.clock()
        self.store.finish_execution(
            resume_key(rec.request_id),
            state="done",
            at=now,
            audit=AuditEvent(
                event="applied",
                at=now,
                request_id=rec.request_id,
                thread_id=rec.thread_id,
                actor=self.worker_id,
                data={
                    "decision": (rec.decision or {}).get("type"),
                    "decided_by": rec.decided_by,
                    "requested_by": actor,
                },
            ),
        )

    def _not_applicable(self, rec: ApprovalRecord, err: DecisionError) -> None:
        now = self.clock()
        self.store.finish_execution(
            resume_key(rec.request_id),
            state="failed",
            at=now,
            error=str(err),
            audit=AuditEvent(
                event="apply_failed",
                at=now,
                request_id=rec.request_id,
                thread_id=rec.thread_id,
                actor=self.worker_id,
                data={"error": type(err).__name__, "message": str(err)},
            ),
        )

    def _revert(self, rec: ApprovalRecord, err: DecisionError) -> None:
        """The graph refused a recorded decision: set the request back to pending."""
        self.store.release_execution(resume_key(rec.request_id))
        if rec.quorum > 1:
            return
        now = self.clock()
        try:
            self.store.update_request(
                rec.request_id,
                expected_status=rec.status,
                status="pending",
                decision=None,
                decided_by=None,
                decided_at=None,
                approvals=[],
                updated_at=now,
                audit=AuditEvent(
                    event="reverted",
                    at=now,
                    request_id=rec.request_id,
                    thread_id=rec.thread_id,
                    actor=self.worker_id,
                    data={
                        "reverted_decision": rec.decision,
                        "decided_by": rec.decided_by,
                        "error": type(err).__name__,
                        "message": str(err),
                    },
                ),
            )
        except AlreadyDecided:
            logger.warning("could not revert %s: its status changed meanwhile", rec.request_id)

    def _follow_ups(self, rec: ApprovalRecord) -> tuple[ApprovalRecord, ...]:
        if (rec.decision or {}).get("type") != "edit":
            return ()
        rows = self.store.list_requests(
            RequestFilter(status=("pending",), thread_id=rec.thread_id), limit=MAX_LIMIT
        )
        return tuple(r for r in rows if r.parent_request_id == rec.request_id)

    def _settle(self, rec: ApprovalRecord, output: Any, actor: str) -> bool:
        """After a resume: mark it applied, or release the claim if it did not take."""
        if asks_for(output, rec.request_id):
            logger.warning(
                "resume of %s did not consume its decision (the interrupt is still asking); "
                "released the claim so apply_decided() retries",
                rec.request_id,
            )
            self.store.release_execution(resume_key(rec.request_id))
            return False
        self._applied(rec, actor)
        return True

    def _resume_decided(self, done: Committed, iid: str) -> DecisionResult:
        rec = done.record
        if not self._claim(rec):
            return self._result(done)
        cfg = thread_config(rec, self.resume_config, reviewer=done.reviewer.id)
        try:
            output = self.graph.invoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            self._revert(rec, err)
            raise
        except BaseException:
            self.store.release_execution(resume_key(rec.request_id))
            raise
        if not self._settle(rec, output, done.reviewer.id):
            return self._result(done, output=output)
        return self._result(done, "resumed", output, self._follow_ups(rec))

    async def _aresume_decided(self, done: Committed, iid: str) -> DecisionResult:
        rec = done.record
        if not await asyncio.to_thread(self._claim, rec):
            return self._result(done)
        cfg = thread_config(rec, self.resume_config, reviewer=done.reviewer.id)
        try:
            output = await self.graph.ainvoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            await asyncio.to_thread(self._revert, rec, err)
            raise
        except BaseException:
            await asyncio.to_thread(self.store.release_execution, resume_key(rec.request_id))
            raise
        if not await asyncio.to_thread(self._settle, rec, output, done.reviewer.id):
            return self._result(done, output=output)
        follow = await asyncio.to_thread(self._follow_ups, rec)
        return self._result(done, "resumed", output, follow)

    def _candidates(self, limit: int) -> list[str]:
        while len(self._queue) < limit:
            events = self.store.list_audit(after_seq=self._audit_seq, limit=500)
            for ev in events:
                self._audit_seq = max(self._audit_seq, ev.seq or 0)
                via = (ev.data or {}).get("via")
                wanted = ev.event in ("decided", "expired") and via in ("inbox", "sweep")
                if wanted and ev.request_id:
                    self._queue[ev.request_id] = None
            if len(events) < 500:
                break
        out: list[str] = []
        while self._queue and len(out) < limit:
            rid, _ = self._queue.popitem(last=False)
            out.append(rid)
        return out

    def _apply_one(self, rid: str, report: ApplyReport, actor: str) -> None:
        graph = self._require_graph("apply_decided()")
        rec = self.store.get_request(rid)
        if rec is None or rec.status not in DECIDED_STATUSES:
            return
        if self.store.get_execution(resume_key(rid)) is not None or not self._claim(rec):
            return  # another worker has it (or had it)
        cfg = thread_config(rec, self.resume_config, reviewer=actor)
        state = graph.get_state(cfg)
        iid = find_interrupt(state, rec)
        if iid is None:
            self._not_applicable(rec, not_pending(state, rec))
            report.not_pending.append(rid)
            return
        try:
            output = graph.invoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            self._revert(rec, err)
            report.reverted.append(rid)
            return
        except Exception as exc:
            self.store.release_execution(resume_key(rid))
            self._queue[rid] = None
            report.errors[rid] = f"{type(exc).__name__}: {exc}"
            return
        if self._settle(rec, output, actor):
            report.applied.append(rid)
            report.outputs[rid] = output
        else:
            self._queue[rid] = None

    async def _aapply_one(self, rid: str, report: ApplyReport, actor: str) -> None:
        graph = self._require_graph("aapply_decided()")
        rec = await asyncio.to_thread(self.store.get_request, rid)
        if rec is None or rec.status not in DECIDED_STATUSES:
            return
        claimed = await asyncio.to_thread(
            lambda: self.store.get_execution(resume_key(rid)) is None and self._claim(rec)
        )
        if not claimed:
            return
        cfg = thread_config(rec, self.resume_config, reviewer=actor)
        state = await graph.aget_state(cfg)
        iid = find_interrupt(state, rec)
        if iid is None:
            await asyncio.to_thread(self._not_applicable, rec, not_pending(state, rec))
            report.not_pending.append(rid)
            return
        try:
            output = await graph.ainvoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            await asyncio.to_thread(self._revert, rec, err)
            report.reverted.append(rid)
            return
        except Exception as exc:
            await asyncio.to_thread(self.store.release_execution, resume_key(rid))
            self._queue[rid] = None
            report.errors[rid] = f"{type(exc).__name__}: {exc}"
            return
        if await asyncio.to_thread(self._settle, rec, output, actor):
            report.applied.append(rid)
            report.outputs[rid] = output
        else:
            self._queue[rid] = None

    def apply_decided(self, *, limit: int = 100) -> ApplyReport:
        """Resume the threads of decisions recorded elsewhere (split mode), each once.

        Finds decisions through the audit trail (new ``decided``/``expired`` events of the
        inbox and sweeper since this inbox last looked; the first call reads the trail
        from the start), claims ``resume:<request_id>`` in the execution journal (exactly
        one worker wins, across processes) and resumes. A request whose thread no longer
        waits for it is reported in ``not_pending``; a resume that raises is released and
        retried on a later call. Run it in a loop in every worker holding the graph.
        """
        self._require_graph("apply_decided()")
        report = ApplyReport()
        for rid in self._candidates(limit):
            self._apply_one(rid, report, self.worker_id)
        return report

    async def aapply_decided(self, *, limit: int = 100) -> ApplyReport:
        """Async :meth:`apply_decided`."""
        self._require_graph("aapply_decided()")
        report = ApplyReport()
        for rid in await asyncio.to_thread(self._candidates, limit):
            await self._aapply_one(rid, report, self.worker_id)
        return report
