"""Resuming threads with recorded decisions, exactly once (direct and split mode).

Who resumes a decided request:

* **Direct** (an inbox holding the graph records the decision): the compare-and-set
  that records the decision also writes a *resume marker* (``metadata["resume"]``:
  which inbox, when), so the winner of the race is the one resumer, at no extra write.
  A resume that raises or does not take clears the marker (hands it over to workers).
* **Split** (recorded without a graph, or handed over): workers polling
  :meth:`~hitl_langgraph.inbox.Inbox.apply_decided` claim ``resume:<request_id>`` in the
  execution journal; exactly one claim succeeds across threads and processes. A resume
  claim whose worker process is gone (same host) is taken over at once; one whose worker
  cannot be checked (another host) once it is ``stale_after`` old.
* A marker older than ``stale_after`` means its inbox crashed mid-resume: a worker then
  reads the thread; if the interrupt is gone the resume happened (recorded as a
  ``done`` claim so nobody checks again), otherwise the worker claims and resumes it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..errors import AlreadyDecided, DecisionError
from ..gates.journal import worker_alive
from ..store.base import RequestFilter
from ..store.records import ApprovalRecord, AuditEvent
from ._base import DECIDED_STATUSES, MAX_LIMIT, RESUME_MARK, Committed, InboxBase
from ._graph import asks_for, find_interrupt, not_pending, resume_command, resume_key, thread_config
from .results import ApplyReport, DecisionResult

__all__ = ["ResumeMixin"]

logger = logging.getLogger("hitl_langgraph.inbox")


class ResumeMixin(InboxBase):
    """Resumes threads, hands failed resumes over to workers, applies recorded decisions."""

    # -- bookkeeping -----------------------------------------------------------------
    def _claim(self, rec: ApprovalRecord) -> bool:
        return self.store.claim_execution(
            resume_key(rec.request_id), worker=self.worker_id, at=self.clock()
        )

    def _marked_fresh(self, rec: ApprovalRecord, now: datetime) -> datetime | None:
        """When the resume marker of ``rec`` goes stale, if it is fresh; else ``None``."""
        mark = rec.metadata.get(RESUME_MARK)
        if not isinstance(mark, dict):
            return None
        if worker_alive(str(mark.get("by") or "")) is False:
            return None  # the inbox that marked it is gone: no resume is in flight
        try:
            due = datetime.fromisoformat(str(mark.get("at"))) + self.stale_after
        except ValueError:
            return None
        return due if now < due else None

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

    def _not_applicable(self, rec: ApprovalRecord, state: Any) -> None:
        now = self.clock()
        err = not_pending(state, rec)
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

    def _hand_over(self, rec: ApprovalRecord, why: str) -> None:
        """This inbox could not complete its resume: let workers do it (best effort)."""
        logger.warning("resume of %s handed over to apply_decided(): %s", rec.request_id, why)
        self._queue[rec.request_id] = None
        try:
            self.store.update_request(
                rec.request_id,
                expected_status=rec.status,
                metadata=self._unmarked(rec.metadata),
                updated_at=self.clock(),
            )
        except Exception:
            logger.exception("could not clear the resume marker of %s", rec.request_id)

    def _revert(self, rec: ApprovalRecord, err: DecisionError) -> None:
        """The graph refused a recorded decision: set the request back to pending."""
        self.store.release_execution(resume_key(rec.request_id))
        if rec.quorum > 1:
            return
        now = self.clock()
        # A refused expiry would be expired, refused and reverted again by every sweep:
        # its deadline is cleared, so it waits for a human (the audit row says why).
        expiry = rec.status == "expired"
        deadline = {"expires_at": None} if expiry else {}
        try:
            self.store.update_request(
                rec.request_id,
                expected_status=rec.status,
                status="pending",
                decision=None,
                decided_by=None,
                decided_at=None,
                approvals=[],
                metadata=self._unmarked(rec.metadata),
                updated_at=now,
                **deadline,
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
                        **({"deadline_cleared": True} if expiry else {}),
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

    # -- direct mode -----------------------------------------------------------------
    def _resume_decided(self, done: Committed, iid: str) -> DecisionResult:
        rec = done.record
        if not done.resumer:  # another reviewer's commit owns the resume
            return self._result(done)
        cfg = thread_config(rec, self.resume_config, reviewer=done.reviewer.id)
        try:
            output = self.graph.invoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            self._revert(rec, err)
            raise
        except BaseException as exc:
            self._hand_over(rec, f"{type(exc).__name__}: {exc}")
            raise
        if asks_for(output, rec.request_id):
            self._hand_over(rec, "the resume did not consume the decision")
            return self._result(done, output=output)
        return self._result(done, "resumed", output, self._follow_ups(rec))

    async def _aresume_decided(self, done: Committed, iid: str) -> DecisionResult:
        rec = done.record
        if not done.resumer:
            return self._result(done)
        cfg = thread_config(rec, self.resume_config, reviewer=done.reviewer.id)
        try:
            output = await self.graph.ainvoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            await self._off(self._revert, rec, err)
            raise
        except BaseException as exc:
            await self._off(self._hand_over, rec, f"{type(exc).__name__}: {exc}")
            raise
        if asks_for(output, rec.request_id):
            await self._off(self._hand_over, rec, "the resume did not consume it")
            return self._result(done, output=output)
        follow = await self._off(self._follow_ups, rec)
        return self._result(done, "resumed", output, follow)

    # -- split mode ------------------------------------------------------------------
    def _candidates(self, limit: int) -> list[str]:
        now = self.clock()
        for rid, due in list(self._watch.items()):
            if due <= now:
                del self._watch[rid]
                self._queue[rid] = None
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

    def _triage(self, rid: str) -> ApprovalRecord | None:
        """The request if this worker should claim it now (else ``None``, maybe watched)."""
        rec = self.store.get_request(rid)
        if rec is None or rec.status not in DECIDED_STATUSES:
            return None
        claim = self.store.get_execution(resume_key(rid))
        if claim is not None and not self._take_over(rid, claim):
            return None  # applied, or claimed by a worker that may still be resuming it
        due = self._marked_fresh(rec, self.clock())
        if due is not None:
            self._watch[rid] = due  # its inbox is resuming it; look again once stale
            return None
        return rec if self._claim(rec) else None

    def _take_over(self, rid: str, claim: Any) -> bool:
        """Release the resume claim of a worker that is gone (its process no longer
        exists) or whose claim is ``stale_after`` old; else watch it until then."""
        if claim.state != "running":
            return False  # applied (or failed): nothing to resume
        gone = worker_alive(claim.worker) is False
        due = claim.started_at + self.stale_after
        if not gone and self.clock() < due:
            self._watch[rid] = due  # look again once the claim is stale
            return False
        if self.store.release_execution(resume_key(rid), worker=claim.worker):
            logger.warning(
                "took over the resume of %s from %s (%s)",
                rid,
                claim.worker,
                "gone" if gone else f"claimed over {self.stale_after} ago",
            )
        return True

    def _after_claim(self, rec: ApprovalRecord, state: Any, report: ApplyReport) -> str | None:
        """The interrupt to resume, or ``None`` (and the claim settled) if there is none."""
        iid = find_interrupt(state, rec)
        if iid is not None:
            return iid
        if RESUME_MARK in rec.metadata:  # its inbox did resume it before the marker aged
            self.store.finish_execution(resume_key(rec.request_id), state="done", at=self.clock())
        else:
            self._not_applicable(rec, state)
            report.not_pending.append(rec.request_id)
        return None

    def _settle(self, rec: ApprovalRecord, output: Any, actor: str, report: ApplyReport) -> None:
        if asks_for(output, rec.request_id):
            self.store.release_execution(resume_key(rec.request_id))
            self._queue[rec.request_id] = None
            report.errors[rec.request_id] = "the resume did not consume the decision; will retry"
            return
        self._applied(rec, actor)
        report.applied.append(rec.request_id)
        report.outputs[rec.request_id] = output

    def _failed(self, rec: ApprovalRecord, exc: BaseException, report: ApplyReport) -> None:
        if isinstance(exc, DecisionError):
            self._revert(rec, exc)
            report.reverted.append(rec.request_id)
            return
        self.store.release_execution(resume_key(rec.request_id))
        self._queue[rec.request_id] = None
        report.errors[rec.request_id] = f"{type(exc).__name__}: {exc}"

    def _apply_one(self, rid: str, report: ApplyReport, actor: str) -> None:
        graph = self._require_graph("apply_decided()")
        rec = self._triage(rid)
        if rec is None:
            return
        try:  # from the claim on, any failure releases it (never a claim left running)
            cfg = thread_config(rec, self.resume_config, reviewer=actor)
            iid = self._after_claim(rec, graph.get_state(cfg), report)
            if iid is None:
                return
            output = graph.invoke(resume_command(iid, rec.decision or {}), cfg)
        except Exception as exc:
            self._failed(rec, exc, report)
            return
        self._settle(rec, output, actor, report)

    async def _aapply_one(self, rid: str, report: ApplyReport, actor: str) -> None:
        graph = self._require_graph("aapply_decided()")
        rec = await self._off(self._triage, rid)
        if rec is None:
            return
        try:  # from the claim on, any failure releases it (never a claim left running)
            cfg = thread_config(rec, self.resume_config, reviewer=actor)
            state = await graph.aget_state(cfg)
            iid = await self._off(self._after_claim, rec, state, report)
            if iid is None:
                return
            output = await graph.ainvoke(resume_command(iid, rec.decision or {}), cfg)
        except Exception as exc:
            await self._off(self._failed, rec, exc, report)
            return
        await self._off(self._settle, rec, output, actor, report)

    def apply_decided(self, *, limit: int = 100) -> ApplyReport:
        """Resume the threads of decisions recorded without a graph (split mode), each once.

        Finds decisions through the audit trail (new ``decided``/``expired`` events of the
        inbox and sweeper since this inbox last looked; the first call reads the trail
        from the start), claims ``resume:<request_id>`` in the execution journal (exactly
        one worker wins, across processes) and resumes. Decisions an inbox with a graph is
        resuming itself are skipped, and looked at again once their marker is
        ``stale_after`` old (that inbox crashed). A request whose thread no longer waits
        for it is reported in ``not_pending``; a resume that raises is released and retried
        on a later call. Run it in a loop in every worker holding the graph.
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
        for rid in await self._off(self._candidates, limit):
            await self._aapply_one(rid, report, self.worker_id)
        return report

    # -- resuming a request this inbox just decided itself (expiry) ---------------------
    def _resume_owned(self, rec: ApprovalRecord, actor: str) -> tuple[bool, Any]:
        """Resume ``rec`` whose marker this inbox wrote; ``(resumed, output)``."""
        graph = self._require_graph("resuming")
        cfg = thread_config(rec, self.resume_config, reviewer=actor)
        iid = find_interrupt(graph.get_state(cfg), rec)
        if iid is None:
            self._hand_over(rec, "its thread does not wait for it")
            return False, None
        try:
            output = graph.invoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            self._revert(rec, err)
            return False, None
        except Exception as exc:
            self._hand_over(rec, f"{type(exc).__name__}: {exc}")
            return False, None
        if asks_for(output, rec.request_id):
            self._hand_over(rec, "the resume did not consume the decision")
            return False, output
        return True, output

    async def _aresume_owned(self, rec: ApprovalRecord, actor: str) -> tuple[bool, Any]:
        graph = self._require_graph("resuming")
        cfg = thread_config(rec, self.resume_config, reviewer=actor)
        iid = find_interrupt(await graph.aget_state(cfg), rec)

        async def hand_over(why: str) -> None:
            await self._off(self._hand_over, rec, why)

        if iid is None:
            await hand_over("its thread does not wait for it")
            return False, None
        try:
            output = await graph.ainvoke(resume_command(iid, rec.decision or {}), cfg)
        except DecisionError as err:
            await self._off(self._revert, rec, err)
            return False, None
        except Exception as exc:
            await hand_over(f"{type(exc).__name__}: {exc}")
            return False, None
        if asks_for(output, rec.request_id):
            await hand_over("the resume did not consume the decision")
            return False, output
        return True, output
