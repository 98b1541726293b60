"""The approval inbox: list pending requests, decide them once, resume their threads.

How a decision is made (``approve``, ``reject``, ``edit``, ``respond``):

1. **Checks** (each refusal raises and is recorded in the audit trail as ``refused``;
   nothing pending changes): the reviewer's authority
   (:mod:`~hitl_langgraph.inbox.authority`), the digest if one is given (the decision
   is bound to the exact action reviewed), that the request is still pending, and for an
   edit that the new action is a known tool with valid args, not denied, and not gated
   by roles the reviewer lacks. With a graph attached, the thread must really have the
   request's interrupt pending (``NotPending`` otherwise: LangGraph would silently ignore
   the resume, or run a never-created thread from START).
2. **Record** with a compare-and-set on status ``pending``: of any number of concurrent
   reviewers exactly one wins; the others get ``AlreadyDecided`` naming who decided.
   The decision and its ``decided`` audit event are one transaction.
3. **Resume** (graph attached): the compare-and-set also wrote a resume marker naming
   this inbox, so the winner, and only the winner, calls
   ``graph.invoke(Command(resume={interrupt_id: ...}))`` - no extra store write. If
   the graph refuses the decision (an edit the engine rejects), the decision is set back
   to pending (``reverted`` audit event) and the error is raised; if the resume fails
   otherwise, it is handed over to workers. Without a graph the decision is only
   recorded; a worker holding the graph applies it with :meth:`Inbox.apply_decided`
   (a claim in the execution journal makes that exactly once across workers).

Quorum (a rule with ``quorum=N``): approvals are counted in distinct-reviewer slots
(:mod:`~hitl_langgraph.inbox.quorum`); the Nth approval records ``approved`` and
resumes. One rejection (or respond) ends the request, unless
``reject_ends_quorum=False``, in which case it is recorded as an ``objection`` and the
request stays open for approvals until it expires. Edits are refused on quorum requests
(one reviewer's edit would bypass the others): reject with a reason instead.

Every method has an async twin (``apending``, ``aapprove``, ...) that awaits the graph's
``ainvoke``/``aget_state`` and runs store calls in a worker thread.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .._display_hooks import html_for, make_widget
from ..clock import Clock, utc_now
from ..errors import ConfigurationError, RequestNotFound
from ..notify.notifiers import Notification, Notifier, notifiers_from
from ..policy.risk import RiskPolicy
from ..store.base import ApprovalStore, RequestFilter
from ..store.records import ApprovalRecord, AuditEvent
from . import quorum
from ._base import DECIDED_STATUSES, MAX_LIMIT, Prepared
from ._decide import DecideMixin, check_integrity
from ._graph import ConfigHook, thread_config
from .authority import Reviewer
from .deadlines import DeadlineMixin, EscalationStep
from .results import DecisionResult, Page, ReconcileReport, decode_cursor, encode_cursor

__all__ = ["DECIDED_STATUSES", "Inbox"]


def _worker() -> str:
    return f"inbox:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _edit(args: Mapping[str, Any], tool: str | None, reason: str | None) -> dict[str, Any]:
    """An edit decision; ``tool=None`` is filled in with the request's own tool."""
    return {
        "type": "edit",
        "edited_action": {"name": tool or None, "args": dict(args)},
        "message": reason,
    }


class Inbox(DeadlineMixin, DecideMixin):
    """The reviewer-facing API over an approval store (and, optionally, the graph).

    Args:
        store: the approval store the gates write to (``open_store(url)``).
        graph: the compiled graph, to resume threads; ``None`` records decisions only
            (a worker applies them with :meth:`apply_decided`).
        clock: returns the current aware datetime (inject a fake one in tests).
        notifiers: :class:`~hitl_langgraph.notify.Notifier` objects or callables, told of
            decisions, quorum votes, refusals, expiry and escalation.
        separation_of_duties: refuse a requester approving or editing their own request.
        reject_ends_quorum: one rejection ends a quorum request (else it is an objection).
        policy: the risk policy, to pre-check edits; found in the graph's
            ``GatedToolNode`` when not given.
        escalation: :class:`~hitl_langgraph.inbox.EscalationStep` s applied by :meth:`sweep`.
        resume_config: ``record -> config`` merged into the run config of each resume
            (callbacks, extra ``configurable`` keys); ``thread_id`` and the requester's
            ``user_id`` are always set.
        worker_id: names this inbox in resume markers and claims (default
            host:pid:random).
        stale_after: how long an inbox or worker may take to resume a decision it took
            on (its resume marker or claim) before others treat it as crashed and take
            over (:meth:`apply_decided`, :meth:`reconcile`, a quorum's last vote). Keep it
            well above your slowest resume.
    """

    def __init__(
        self,
        store: ApprovalStore,
        graph: Any = None,
        *,
        clock: Clock | None = None,
        notifiers: Sequence[Notifier | Callable[[Notification], object]] = (),
        separation_of_duties: bool = True,
        reject_ends_quorum: bool = True,
        policy: RiskPolicy | None = None,
        escalation: Sequence[EscalationStep] = (),
        resume_config: ConfigHook | None = None,
        worker_id: str | None = None,
        stale_after: timedelta = timedelta(minutes=5),
    ) -> None:
        if not isinstance(store, ApprovalStore):
            raise ConfigurationError(
                f"Inbox needs an ApprovalStore (open_store(url)), got {type(store).__name__}"
            )
        if graph is not None and not (hasattr(graph, "invoke") and hasattr(graph, "get_state")):
            raise ConfigurationError(
                f"Inbox graph must be a compiled LangGraph graph (with invoke/get_state), got "
                f"{type(graph).__name__}"
            )
        for step in escalation:
            if not isinstance(step, EscalationStep):
                raise ConfigurationError(
                    f"escalation takes EscalationStep objects, got {type(step).__name__}"
                )
        self.store = store
        self.graph = graph
        self.clock: Clock = clock or utc_now
        self.notifiers = notifiers_from(notifiers)
        self.separation_of_duties = separation_of_duties
        self.reject_ends_quorum = reject_ends_quorum
        self.policy = policy
        self.escalation = tuple(escalation)
        self.resume_config = resume_config
        self.worker_id = worker_id or _worker()
        self.stale_after = stale_after
        self._audit_seq = 0
        self._queue: OrderedDict[str, None] = OrderedDict()
        self._watch: dict[str, datetime] = {}

    def _filter(
        self,
        tool: str | None,
        route: str | None,
        min_risk: float | None,
        thread_id: str | None,
        role: str | None,
        overdue: bool,
    ) -> RequestFilter:
        return RequestFilter(
            status=("pending",),
            thread_id=thread_id,
            tool=tool,
            route=route,
            min_score=min_risk,
            role=role,
            expires_before=self.clock() if overdue else None,
        )

    def pending(
        self,
        *,
        tool: str | None = None,
        route: str | None = None,
        min_risk: float | None = None,
        thread_id: str | None = None,
        role: str | None = None,
        overdue: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Pending requests across all threads, oldest first, from the store's index.

        Filters: ``tool`` (a glob, e.g. ``"transfer_*"``), ``route``, ``min_risk``
        (score at least), ``thread_id``, ``role`` (requests this role may decide: those
        with no ``approver_roles`` or listing it), ``overdue`` (deadline passed). The cost
        follows the page size, not the number of threads or checkpoints: it is one
        indexed query, never a scan of the checkpointer.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ConfigurationError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        f = self._filter(tool, route, min_risk, thread_id, role, overdue)
        after = None if cursor is None else decode_cursor(cursor)
        rows = self.store.list_requests(f, limit=limit + 1, after=after)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(rows[-1]) if more and rows else None)

    def count(
        self,
        *,
        tool: str | None = None,
        route: str | None = None,
        min_risk: float | None = None,
        thread_id: str | None = None,
        role: str | None = None,
        overdue: bool = False,
    ) -> int:
        """How many pending requests match (same filters as :meth:`pending`)."""
        return self.store.count_requests(
            self._filter(tool, route, min_risk, thread_id, role, overdue)
        )

    def get(self, request_id: str) -> ApprovalRecord:
        """The request, with the approvals counted so far; ``RequestNotFound`` if unknown.

        A pending request whose stored digest does not cover its tool and args raises
        :class:`~hitl_langgraph.errors.TamperedRequest` (it is not decidable).
        """
        rec = self.store.get_request(request_id)
        if rec is None:
            raise RequestNotFound(request_id)
        if rec.status == "pending":
            check_integrity(rec)  # a tampered row is reported, never shown as decidable
        if rec.quorum > 1 and rec.status == "pending":
            rec = rec.evolve(approvals=quorum.approvals_of(self.store, rec))
        return rec

    def widget(self, *, reviewer: Reviewer, **kwargs: Any) -> Any:
        """A notebook approval widget acting as ``reviewer`` (needs the ``notebook`` extra).

        See :class:`~hitl_langgraph.notebook.widget.ApprovalWidget`; ``kwargs`` go to it.
        """
        return make_widget(self, reviewer=reviewer, **kwargs)

    def _repr_html_(self) -> str | None:
        page = self.pending(limit=MAX_LIMIT)
        title = (
            f"Pending approvals ({self.count()} in all)"
            if page.next_cursor
            else "Pending approvals"
        )
        return html_for("records", page.items, title=title)

    def history(self, request_id: str) -> list[AuditEvent]:
        """The audit events of one request, oldest first."""
        return self.store.list_audit(request_id=request_id)

    def approve(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        reason: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        """Approve: the action runs as proposed. ``reason`` is recorded (audit, model)."""
        return self.decide(
            request_id, {"type": "approve", "message": reason}, reviewer=reviewer, digest=digest
        )

    def reject(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        reason: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        """Reject: the action does not run; ``reason`` is told to the model and audited."""
        return self.decide(
            request_id, {"type": "reject", "message": reason}, reviewer=reviewer, digest=digest
        )

    def edit(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        args: Mapping[str, Any],
        tool: str | None = None,
        reason: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        """Run a corrected call (``args``, and ``tool`` to change the tool) instead.

        The engine re-scores the edited call while resuming: one that raises the risk or
        changes the tool needs its own approval (a follow-up request, in ``follow_ups``).
        """
        decision = _edit(args, tool, reason)
        return self._decide(self._prepare(request_id, decision, reviewer, digest, keep_tool=True))

    def respond(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        message: str,
        digest: str | None = None,
    ) -> DecisionResult:
        """Answer in place of the tool: ``message`` is returned to the model as its result."""
        return self.decide(
            request_id, {"type": "respond", "message": message}, reviewer=reviewer, digest=digest
        )

    def decide(
        self,
        request_id: str,
        decision: Mapping[str, Any] | Any,
        *,
        reviewer: Reviewer,
        digest: str | None = None,
    ) -> DecisionResult:
        """Record any decision (a dict like ``{"type": "approve"}`` or a decision model)."""
        return self._decide(self._prepare(request_id, decision, reviewer, digest))

    def _decide(self, prep: Prepared) -> DecisionResult:
        iid: str | None = None
        if self.graph is not None:
            cfg = thread_config(prep.record, self.resume_config)
            iid = self._locate(prep, self.graph.get_state(cfg))
        done = self._commit(prep)
        if done.outcome != "final" or self.graph is None or iid is None:
            return self._result(done)
        return self._resume_decided(done, iid)

    async def apending(self, **filters: Any) -> Page:
        """Async :meth:`pending`."""
        return await self._off(lambda: self.pending(**filters))

    async def aget(self, request_id: str) -> ApprovalRecord:
        return await self._off(self.get, request_id)

    async def aapprove(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        reason: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        return await self.adecide(
            request_id, {"type": "approve", "message": reason}, reviewer=reviewer, digest=digest
        )

    async def areject(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        reason: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        return await self.adecide(
            request_id, {"type": "reject", "message": reason}, reviewer=reviewer, digest=digest
        )

    async def aedit(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        args: Mapping[str, Any],
        tool: str | None = None,
        reason: str | None = None,
        digest: str | None = None,
    ) -> DecisionResult:
        decision = _edit(args, tool, reason)
        prep = await self._off(
            self._prepare, request_id, decision, reviewer, digest, keep_tool=True
        )
        return await self._adecide(prep)

    async def arespond(
        self,
        request_id: str,
        *,
        reviewer: Reviewer,
        message: str,
        digest: str | None = None,
    ) -> DecisionResult:
        return await self.adecide(
            request_id, {"type": "respond", "message": message}, reviewer=reviewer, digest=digest
        )

    async def adecide(
        self,
        request_id: str,
        decision: Mapping[str, Any] | Any,
        *,
        reviewer: Reviewer,
        digest: str | None = None,
    ) -> DecisionResult:
        """Async :meth:`decide`: ``aget_state``/``ainvoke`` on the graph."""
        prep = await self._off(self._prepare, request_id, decision, reviewer, digest)
        return await self._adecide(prep)

    async def _adecide(self, prep: Prepared) -> DecisionResult:
        iid: str | None = None
        if self.graph is not None:
            cfg = thread_config(prep.record, self.resume_config)
            state = await self.graph.aget_state(cfg)
            iid = await self._off(self._locate, prep, state)
        done = await self._off(self._commit, prep)
        if done.outcome != "final" or self.graph is None or iid is None:
            return self._result(done)
        return await self._aresume_decided(done, iid)

    def reconcile(
        self,
        *,
        thread_ids: Sequence[str] = (),
        grace: timedelta = timedelta(seconds=60),
    ) -> ReconcileReport:
        """Repair the index against the checkpointer; see :mod:`~hitl_langgraph.inbox.reconcile`."""
        from .reconcile import reconcile

        return reconcile(self, thread_ids=thread_ids, grace=grace)

    def recover(
        self,
        request_id: str,
        how: str,
        *,
        result: str | None = None,
        by: str = "operator",
        force: bool = False,
        thread_id: str | None = None,
    ) -> Any:
        """Settle an execution held for a human (its tool started, its worker never
        finished) and drive its thread on; see :mod:`~hitl_langgraph.inbox.recover`.

        ``how`` is ``"rerun"``, ``"mark_done"`` (``result`` becomes the tool's output)
        or ``"mark_failed"``. Audited as ``recovered``. Raises
        :class:`~hitl_langgraph.errors.NothingToRecover` (nothing changed) when the
        execution is not held, and for a start whose process still runs (unless
        ``force``). CLI: ``hitl recover REQUEST_ID --rerun | --mark-done [--result TEXT]
        | --mark-failed``. Returns a :class:`~hitl_langgraph.inbox.recover.RecoverResult`.
        """
        from .recover import recover

        return recover(
            self, request_id, how, result=result, by=by, force=force, thread_id=thread_id
        )

    async def arecover(
        self,
        request_id: str,
        how: str,
        *,
        result: str | None = None,
        by: str = "operator",
        force: bool = False,
        thread_id: str | None = None,
    ) -> Any:
        """Async :meth:`recover`."""
        from .recover import arecover

        return await arecover(
            self, request_id, how, result=result, by=by, force=force, thread_id=thread_id
        )
