"""The gate engine shared by ``GatedToolNode``, ``approval_gate`` and ``HITLMiddleware``.

For the actions a node handles in one run it:

1. assesses each with the policy and derives a deterministic request id from the thread,
   the task's checkpoint namespace and the tool call id, so a replayed node gets the
   same ids and every store write is an idempotent upsert;
2. for actions routed ``approve``, raises one LangGraph ``interrupt()`` listing those
   still undecided, with ``response_schema=ResumePayload``; the resume value is matched
   and checked (digest binding, allowed decisions, edits re-scored) while LangGraph
   validates it, so a bad one is refused before it is saved and the interrupt stays
   pending; decided actions leave the list, the rest are asked again;
3. records requests, decisions and executions in the store (with audit events) and
   tells observers; a replay finds everything recorded and repeats nothing.

The execution journal (:meth:`GateEngine.run_once`) makes the action itself run once per
approval even when the node is replayed or two resumes race.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.errors import GraphBubbleUp, GraphInterrupt
from langgraph.types import interrupt
from pydantic import ValidationError

from ..clock import Clock, utc_now
from ..errors import (
    RECOVER_HINT,
    AlreadyDecided,
    DecisionError,
    DecisionNotRecorded,
    ExecutionHeld,
    ExecutionInProgress,
    InvalidDecision,
    NotAuthorized,
    TamperedRequest,
    WrongRequest,
)
from ..policy.action import Action, canonical_json
from ..policy.risk import Assessment, RiskContext, RiskPolicy
from ..policy.text import escape_text, unsafe_text
from ..store.aio import AsyncStore
from ..store.base import ApprovalStore
from ..store.records import ApprovalRecord, AuditEvent
from ._complete import run_to_completion
from .decisions import (
    DECISION_ADAPTER,
    DECISION_FIELDS,
    STATUS_OF,
    Approve,
    Edit,
    PendingAction,
    Reject,
    Respond,
    ResumePayload,
    decision_error_from,
    pending_context,
)
from .events import (
    GateEvent,
    GateObserver,
    default_trace_ids,
    effective_observers,
    notify_observers,
)
from .journal import SETTLED_TEXT, pass_idempotency_key, settled_message, worker_alive
from .payload import GateItem, build_request
from .signatures import (
    SIGNED_STATUSES,
    check_signed,
    decision_verifier_of,
)

__all__ = ["Clock", "GateEngine", "Resolution", "utc_now"]

logger = logging.getLogger("hitl_langgraph")

T = TypeVar("T")


def _default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _mark_invalid_resume(err: BaseException) -> None:
    """Tell LangGraph this is a bad resume value, so it is not saved (the interrupt stays)."""
    try:
        from langgraph.errors import _mark_invalid_resume as mark
    except ImportError:  # pragma: no cover - older langgraph
        err._langgraph_invalid_resume = True  # type: ignore[attr-defined]
    else:
        mark(err)


@dataclass(frozen=True)
class Resolution:
    """What to do with one action once every human decision it needs is in."""

    item: GateItem
    outcome: Literal["run", "deny", "reject", "respond"]
    journal: bool
    tool_call: dict[str, Any]
    message: str | None = None
    decision: dict[str, Any] | None = None
    edited: bool = False

    @property
    def request_id(self) -> str:
        return self.item.request_id


@dataclass
class _RunCtx:
    thread_id: str | None
    checkpoint_ns: str
    node: str
    state: Any
    config: Mapping[str, Any]
    user_id: str | None
    tool_names: frozenset[str] | None = None
    arg_validator: Callable[[str, dict[str, Any]], None] | None = None
    seen: dict[str, ApprovalRecord | None] = field(default_factory=dict)
    recorded: dict[str, ApprovalRecord] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        config: Mapping[str, Any],
        *,
        node: str | None = None,
        state: Any = None,
        tool_names: frozenset[str] | None = None,
        arg_validator: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> _RunCtx:
        """The run's identity (thread, task namespace, requester) read from its config."""
        conf = config.get("configurable", {})
        if node is None:
            node = str((config.get("metadata") or {}).get("langgraph_node", ""))
        return cls(
            thread_id=None if conf.get("thread_id") is None else str(conf["thread_id"]),
            checkpoint_ns=str(conf.get("checkpoint_ns", "")),
            node=node,
            state=state,
            config=config,
            user_id=RiskContext(config=config).user_id,
            tool_names=tool_names,
            arg_validator=arg_validator,
        )


@dataclass
class _Plan:
    ctx: _RunCtx
    items: list[GateItem]
    journal: bool
    pending: list[GateItem] = field(default_factory=list)
    out: dict[str, Resolution] = field(default_factory=dict)

    def results(self) -> list[Resolution]:
        return [self.out[it.key] for it in self.items]


class GateEngine:
    """Policy + store + clock: the logic every gate form shares.

    Args:
        policy: the risk policy that routes every action.
        store: where requests, decisions, executions and the audit trail live.
        clock: returns the current aware datetime (inject a fixed one in tests).
        worker_id: names this process in execution claims (default host:pid:random).
        observers: called with every :class:`GateEvent` (tracing, notifications).
        default_expiry: deadline for requests whose rule sets none (``None``: never).
        execution_wait: seconds a replay waits for a live worker's execution result
            before raising :class:`ExecutionInProgress` (it logs what it waits for).
        claim_grace: seconds after which a claim that never started its tool is taken
            over (at once when the claiming process is gone from this host).
        require_recorded_decisions: refuse a resume whose decision was not first recorded
            in the store (by :class:`~hitl_langgraph.inbox.Inbox`, which checks reviewer
            authority). Off by default so a plain ``Command(resume=...)`` works; turn it on
            in production. Requests that need a quorum always require it.
        trace_ids: returns the current (trace id, span id) when a run pauses, stored with
            the request so the resumed run's decision span links back to it
            (``hitl_langgraph.tracing.current_trace_ids``).
        tracing: consult the process-wide defaults that ``setup_tracing`` registers
            (:func:`~hitl_langgraph.gates.events.set_default_observers`): span recorder,
            review sampler and ``trace_ids``. An explicit observer replaces the default of
            its type; an explicit ``trace_ids`` wins. ``False`` opts this gate out.
    """

    def __init__(
        self,
        policy: RiskPolicy,
        store: ApprovalStore,
        *,
        clock: Clock = utc_now,
        worker_id: str | None = None,
        observers: Sequence[GateObserver] = (),
        default_expiry: timedelta | None = None,
        execution_wait: float = 5.0,
        claim_grace: float = 2.0,
        require_recorded_decisions: bool = False,
        trace_ids: Callable[[], tuple[str, str] | None] | None = None,
        tracing: bool = True,
    ) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.worker_id = worker_id or _default_worker()
        self.observers: list[GateObserver] = list(observers)
        self.default_expiry = default_expiry
        self.execution_wait = execution_wait
        self.claim_grace = claim_grace
        self.require_recorded_decisions = require_recorded_decisions
        self._serde = JsonPlusSerializer()
        self.trace_ids = trace_ids
        self.tracing = tracing

    def _observers(self) -> list[GateObserver]:
        return effective_observers(self.observers) if self.tracing else self.observers

    def _trace_ids(self) -> tuple[str, str] | None:
        fn = self.trace_ids
        if fn is None and self.tracing:
            fn = default_trace_ids()
        return fn() if fn is not None else None

    # -- ids -------------------------------------------------------------------------
    @staticmethod
    def request_id(thread_id: str | None, checkpoint_ns: str, key: str) -> str:
        """Deterministic: the same task replayed gets the same id."""
        raw = f"{thread_id}\x1f{checkpoint_ns}\x1f{key}"
        return "req_" + hashlib.sha256(raw.encode()).hexdigest()[:24]

    # -- the main entry --------------------------------------------------------------
    def resolve(
        self,
        tool_calls: Sequence[Mapping[str, Any]],
        *,
        node: str,
        state: Any,
        config: Mapping[str, Any],
        kind: Literal["tool_call", "state"] = "tool_call",
        tool_names: frozenset[str] | None = None,
        arg_validator: Callable[[str, dict[str, Any]], None] | None = None,
        run_early: Callable[[list[Resolution]], None] | None = None,
        describe: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> list[Resolution]:
        """Assess every call, wait for the humans where needed, return one resolution each.

        ``run_early`` is called with the actions decided in one round while others are
        still undecided, so an approved call runs (journaled) without waiting for the
        rest of its batch.

        Raises ``GraphInterrupt`` (through ``interrupt()``) while decisions are missing,
        and a :class:`DecisionError` (marked as an invalid resume value) for a bad one.
        """
        plan = self._start(
            tool_calls, node, state, config, kind, tool_names, arg_validator, describe
        )
        while plan.pending:
            decided = self._round(plan)
            if plan.pending and run_early is not None and decided:
                run_early(decided)
        return plan.results()

    async def aresolve(
        self,
        tool_calls: Sequence[Mapping[str, Any]],
        *,
        node: str,
        state: Any,
        config: Mapping[str, Any],
        kind: Literal["tool_call", "state"] = "tool_call",
        tool_names: frozenset[str] | None = None,
        arg_validator: Callable[[str, dict[str, Any]], None] | None = None,
        run_early: Callable[[list[Resolution]], Awaitable[None]] | None = None,
        describe: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> list[Resolution]:
        """Async twin of :meth:`resolve` (``run_early`` is awaited).

        The synchronous parts (policy, store writes, ``interrupt()`` and its validation,
        observers) run on the store's worker threads (``AsyncStore``), never on the loop."""
        off = AsyncStore.of(self.store).run
        plan = await off(
            self._start, tool_calls, node, state, config, kind, tool_names, arg_validator, describe
        )
        while plan.pending:
            decided = await off(self._round, plan)
            if plan.pending and run_early is not None and decided:
                await run_early(decided)
        return plan.results()

    def _start(
        self,
        tool_calls: Sequence[Mapping[str, Any]],
        node: str,
        state: Any,
        config: Mapping[str, Any],
        kind: Literal["tool_call", "state"],
        tool_names: frozenset[str] | None,
        arg_validator: Callable[[str, dict[str, Any]], None] | None,
        describe: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> _Plan:
        ctx = _RunCtx.of(
            config, node=node, state=state, tool_names=tool_names, arg_validator=arg_validator
        )
        items = [self._item(i, call, kind, ctx) for i, call in enumerate(tool_calls)]
        if describe is not None:
            items = [
                it if it.assessment.route != "approve" else replace(it, description=describe(call))
                for it, call in zip(items, tool_calls, strict=True)
            ]
        plan = _Plan(
            ctx=ctx, items=items, journal=any(it.assessment.route == "approve" for it in items)
        )
        for it in items:
            route = it.assessment.route
            if it.refused is not None:
                self._refused_call(it, ctx)
                plan.out[it.key] = Resolution(it, "deny", plan.journal, dict(it.tool_call))
            elif route == "approve":
                plan.pending.append(it)
            elif route == "deny":
                self._record_final(it, ctx, "denied")
                plan.out[it.key] = Resolution(it, "deny", plan.journal, dict(it.tool_call))
            else:
                plan.out[it.key] = Resolution(it, "run", plan.journal, dict(it.tool_call))
        return plan

    def _round(self, plan: _Plan) -> list[Resolution]:
        """Ask once about every pending action; apply what was decided."""
        matched = self._ask(plan.pending, plan.ctx)
        still: list[GateItem] = []
        decided: list[Resolution] = []
        for it in plan.pending:
            decision = matched.get(it.request_id)
            if decision is None:
                still.append(it)
                continue
            res_or_follow = self._apply(it, decision, plan.ctx, plan.journal)
            if isinstance(res_or_follow, GateItem):
                still.append(res_or_follow)
            else:
                plan.out[it.key] = res_or_follow
                decided.append(res_or_follow)
        plan.pending = still
        return decided

    def _item(
        self, index: int, call: Mapping[str, Any], kind: Literal["tool_call", "state"], ctx: _RunCtx
    ) -> GateItem:
        call_id = call.get("id")
        key = f"{index}:{call_id}"
        rid = self.request_id(ctx.thread_id, ctx.checkpoint_ns, f"{ctx.node}\x1f{call_id or index}")
        bad = unsafe_text(
            {"name": call.get("name"), "args": call.get("args"), "id": call_id}, "the tool call"
        ) or unsafe_text([ctx.user_id, ctx.thread_id], "the run's requester and thread ids")
        if bad is not None:
            why = (
                f"{bad}; the call was refused before anything was stored (lone surrogates, "
                "NUL and control characters cannot be kept). Re-issue it with plain text"
            )
            action = Action(
                tool=escape_text(call.get("name")),
                args={},
                kind=kind,
                tool_call_id=None if call_id is None else escape_text(call_id),
            )
            refused = Assessment(action=action, score=1.0, route="deny", reasons=(why,))
            return GateItem(
                key=key, request_id=rid, tool_call=dict(call), assessment=refused, refused=why
            )
        action = Action(
            tool=str(call["name"]),
            args=dict(call.get("args") or {}),
            kind=kind,
            tool_call_id=None if call_id is None else str(call_id),
        )
        assessment = self.policy.assess(action, state=ctx.state, config=ctx.config)
        return GateItem(key=key, request_id=rid, tool_call=dict(call), assessment=assessment)

    # -- asking ----------------------------------------------------------------------
    def _ask(
        self, pending: list[GateItem], ctx: _RunCtx
    ) -> dict[str, Approve | Edit | Reject | Respond]:
        now = self.clock()
        pending = [self._with_expiry(it, now) for it in pending]
        value = build_request(
            pending, thread_id=ctx.thread_id, node=ctx.node, policy_version=self.policy.version
        )
        pas = [
            PendingAction(
                request_id=it.request_id,
                tool=it.tool,
                digest=it.digest,
                allowed_decisions=tuple(it.assessment.allowed_decisions),
            )
            for it in pending
        ]
        by_id = {it.request_id: it for it in pending}

        def check(p: PendingAction, d: Any) -> None:
            self._check_decision(by_id[p.request_id], d, ctx)

        def commit(matched: dict[str, Any]) -> None:
            self._commit(matched, by_id, ctx)

        with pending_context(pas, check, commit):
            try:
                resp = interrupt(value, response_schema=ResumePayload)
            except GraphInterrupt as gi:
                self._record_pending(pending, gi, ctx)
                raise
            except ValidationError as exc:
                err = decision_error_from(exc)
                self._refused(err, by_id, ctx)
                _mark_invalid_resume(err)
                raise err from exc
            except DecisionError as err:
                self._refused(err, by_id, ctx)
                _mark_invalid_resume(err)
                raise
        return resp.matched()

    def _with_expiry(self, it: GateItem, now: datetime) -> GateItem:
        if it.expires_at is not None:
            return it
        after = it.assessment.expires_after or self.default_expiry
        if after is None:
            return it
        stored = self.store.get_request(it.request_id)
        created = stored.created_at if stored is not None else now
        return replace(it, expires_at=created + after)

    def _check_decision(self, it: GateItem, d: Any, ctx: _RunCtx) -> None:
        """Refuse (before LangGraph saves it) a decision that cannot be applied."""
        stored = self.store.get_request(it.request_id)
        ctx.seen[it.request_id] = stored
        if stored is not None and stored.status == "pending":
            self._check_bound(it, stored, d)
        verifier = decision_verifier_of(self)
        needs_record = (
            self.require_recorded_decisions or it.assessment.quorum > 1 or verifier is not None
        )
        if needs_record and (stored is None or stored.status == "pending"):
            raise NotAuthorized(
                f"request {it.request_id} ({it.tool}) needs a decision recorded through the "
                "inbox first (reviewer authority"
                + (f", quorum of {it.assessment.quorum}" if it.assessment.quorum > 1 else "")
                + "); use Inbox.approve/reject/edit/respond instead of a raw Command(resume=...)",
                request_id=it.request_id,
            )
        if verifier is not None and stored is not None and stored.status in SIGNED_STATUSES:
            check_signed(verifier, it.request_id, (it.digest, it.assessment.action.digest), stored)
        if stored is not None and stored.status != "pending":
            recorded = stored.decision or {}
            same_edit = recorded.get("edited_action") == (
                d.edited_action.model_dump() if isinstance(d, Edit) else None
            )
            if recorded.get("type") != d.type or not same_edit:
                raise AlreadyDecided(
                    f"request {it.request_id} is already {stored.status}"
                    + (f" by {stored.decided_by}" if stored.decided_by else "")
                    + f"; a different {d.type!r} decision cannot replace it",
                    request_id=it.request_id,
                    status=stored.status,
                    decided_by=stored.decided_by,
                )
        if isinstance(d, Edit):
            name, args = d.edited_action.name, dict(d.edited_action.args)
            if ctx.tool_names is not None and name not in ctx.tool_names:
                raise InvalidDecision(
                    f"edit names tool {name!r}, which this gate does not have; known: "
                    f"{sorted(ctx.tool_names)}",
                    request_id=it.request_id,
                )
            if ctx.arg_validator is not None:
                try:
                    ctx.arg_validator(name, args)
                except DecisionError:
                    raise
                except Exception as exc:
                    raise InvalidDecision(
                        f"edited args for {name} do not fit its schema: {exc}",
                        request_id=it.request_id,
                    ) from exc
            new = self.policy.assess(
                it.assessment.action.with_args(name, args), state=ctx.state, config=ctx.config
            )
            if new.route == "deny":
                raise InvalidDecision(
                    f"the edited action {name} is denied by the policy: {'; '.join(new.reasons)}",
                    request_id=it.request_id,
                )

    @staticmethod
    def _check_bound(it: GateItem, stored: ApprovalRecord, d: Any) -> None:
        """A fresh decision must reach the request it was made for, and the stored request
        must be the action that will run (not edited in the store)."""
        rid = it.request_id
        a = it.assessment.action
        same_action = stored.tool == a.tool and canonical_json(stored.args) == canonical_json(
            dict(a.args)
        )
        if not same_action or stored.digest not in (it.digest, a.digest):
            raise TamperedRequest(
                f"request {rid}: the stored request ({stored.tool}, digest {stored.digest}) "
                f"does not match the action that would run ({a.tool}, digest {it.digest}); "
                "the store row was changed after it was written. Nothing was decided; "
                "investigate the store, then run `hitl reconcile`",
                request_id=rid,
            )
        resume_map = _resume_map()
        if resume_map is not None and stored.interrupt_id and stored.interrupt_id not in resume_map:
            raise WrongRequest(
                f"the resume was keyed to interrupt(s) {sorted(resume_map)}, which do not ask "
                f"for request {rid} ({it.tool}); it is pending under interrupt "
                f"{stored.interrupt_id}. The decision was not applied; decide this request "
                "with Inbox.approve/reject/edit/respond or resume keyed to its interrupt",
                request_id=rid,
            )

    def _commit(
        self, matched: Mapping[str, Any], by_id: Mapping[str, GateItem], ctx: _RunCtx
    ) -> None:
        """Record every matched decision while LangGraph validates the resume value.

        Only a value whose decisions are durably recorded is stored by LangGraph as the
        task's resume write; if recording fails the error is raised from validation, the
        value is dropped and the request stays pending for the next decision.
        """
        now = self.clock()
        for rid, d in matched.items():
            it = by_id[rid]
            decision = d.model_dump(exclude_none=True)
            try:
                ctx.recorded[rid] = self._decide(it, d, decision, ctx, now)
            except DecisionError:
                raise
            except Exception as exc:
                raise DecisionNotRecorded(
                    f"the {d.type!r} decision for request {rid} ({it.tool}) could not be "
                    f"recorded ({type(exc).__name__}: {escape_text(str(exc))}); it was not "
                    "accepted and the request is still pending. Send the decision again "
                    "once the store is available",
                    request_id=rid,
                ) from exc

    def _refused_call(self, it: GateItem, ctx: _RunCtx) -> None:
        """Audit (escaped, best effort) a tool call refused for hostile text; store nothing else."""
        now = self.clock()
        try:
            self.store.append_audit(
                AuditEvent(
                    event="refused",
                    at=now,
                    request_id=it.request_id,
                    thread_id=ctx.thread_id,
                    actor=None if ctx.user_id is None else escape_text(ctx.user_id),
                    data={
                        "error": "InvalidAction",
                        "message": escape_text(it.refused or ""),
                        "tool_call": escape_text(it.tool_call),
                    },
                )
            )
        except Exception:
            logger.exception("could not audit a refused tool call")
        self._emit("refused", it, ctx, now, error=f"InvalidAction: {it.refused}")

    def _record_pending(self, pending: list[GateItem], gi: GraphInterrupt, ctx: _RunCtx) -> None:
        interrupts = gi.args[0] if gi.args else ()
        iid = interrupts[0].id if interrupts else None
        now = self.clock()
        ids = self._trace_ids()
        extra = {} if ids is None else {"paused_trace_id": ids[0], "paused_span_id": ids[1]}
        for it in pending:
            rec = self._record(it, ctx, "pending", now, interrupt_id=iid, metadata=extra)
            stored, created = self.store.put_request(rec, audit=self._audit("requested", rec, now))
            if created:
                self._emit("requested", it, ctx, now, extra=extra)
            elif stored.status == "pending" and stored.interrupt_id != iid:
                self.store.update_request(
                    it.request_id, expected_status="pending", interrupt_id=iid, updated_at=now
                )
            elif stored.status == "cancelled":
                self._revive(stored, iid, ctx, now)

    def _revive(self, stored: ApprovalRecord, iid: str | None, ctx: _RunCtx, now: datetime) -> None:
        """The thread asks again for a request recovery had cancelled: pending again."""
        with contextlib.suppress(AlreadyDecided):
            self.store.update_request(
                stored.request_id,
                expected_status="cancelled",
                status="pending",
                interrupt_id=iid,
                decision=None,
                decided_by=None,
                decided_at=None,
                approvals=[],
                updated_at=now,
                audit=AuditEvent(
                    event="revived",
                    at=now,
                    request_id=stored.request_id,
                    thread_id=ctx.thread_id,
                    actor=self.worker_id,
                    data={
                        "was": "cancelled",
                        "cancelled_by": stored.decided_by,
                        "interrupt_id": iid,
                        "reason": "the thread asked for it again under the same request id",
                    },
                ),
            )

    def _refused(self, err: DecisionError, by_id: Mapping[str, GateItem], ctx: _RunCtx) -> None:
        now = self.clock()
        it = by_id.get(err.request_id or "") or next(iter(by_id.values()))
        try:
            self.store.append_audit(
                AuditEvent(
                    event="refused",
                    at=now,
                    request_id=err.request_id,
                    thread_id=ctx.thread_id,
                    actor=None,
                    data={"error": type(err).__name__, "message": str(err)},
                )
            )
        except Exception:
            logger.exception("could not audit a refused decision")
        self._emit("refused", it, ctx, now, error=f"{type(err).__name__}: {err}")

    # -- applying --------------------------------------------------------------------
    def _apply(
        self,
        it: GateItem,
        d: Approve | Edit | Reject | Respond,
        ctx: _RunCtx,
        journal: bool,
    ) -> Resolution | GateItem:
        now = self.clock()
        decision = d.model_dump(exclude_none=True)
        stored = ctx.recorded.pop(it.request_id, None) or self._decide(it, d, decision, ctx, now)
        if stored.decision:
            # the recorded decision (e.g. by the inbox, with the reviewer's words) is applied
            decision = stored.decision
            d = DECISION_ADAPTER.validate_python(
                {k: v for k, v in decision.items() if k in DECISION_FIELDS}
            )
        if isinstance(d, Approve):
            # approving a follow-up of an edit runs the edited call
            edited = it.parent_request_id is not None
            return Resolution(
                it, "run", journal, dict(it.tool_call), decision=decision, edited=edited
            )
        if isinstance(d, Reject):
            return Resolution(it, "reject", journal, dict(it.tool_call), d.message, decision)
        if isinstance(d, Respond):
            return Resolution(it, "respond", journal, dict(it.tool_call), d.message, decision)
        name, args = d.edited_action.name, dict(d.edited_action.args)
        edited_call = {**it.tool_call, "name": name, "args": args}
        new = self.policy.assess(
            it.assessment.action.with_args(name, args), state=ctx.state, config=ctx.config
        )
        if new.route == "approve" and (name != it.tool or new.score > it.assessment.score):
            # a cross-tool or risk-raising edit needs the approval the new action needs
            follow = GateItem(
                key=it.key,
                request_id=self.request_id(
                    ctx.thread_id, it.request_id, f"edit\x1f{new.action.digest}"
                ),
                tool_call=edited_call,
                assessment=replace(
                    new,
                    reasons=(
                        *new.reasons,
                        f"edited by a reviewer from request {it.request_id}; the new action "
                        "needs its own approval",
                    ),
                ),
                parent_request_id=it.request_id,
                metadata={
                    "edited_by": stored.decided_by,
                    "editor_may_approve_followup": new.editor_may_approve_followup,
                },
            )
            return follow
        return Resolution(it, "run", journal, edited_call, d.message, decision, edited=True)

    def _decide(
        self,
        it: GateItem,
        d: Approve | Edit | Reject | Respond,
        decision: dict[str, Any],
        ctx: _RunCtx,
        now: datetime,
    ) -> ApprovalRecord:
        # read once per round: the check that validated this decision just read the row
        stored = ctx.seen.pop(it.request_id, None) or self.store.get_request(it.request_id)
        if stored is None:  # decided before the pending row was written (should not happen)
            rec = self._record(it, ctx, "pending", now)
            stored, _ = self.store.put_request(rec, audit=self._audit("requested", rec, now))
        if stored.status != "pending":
            # replay, or recorded first by the inbox (already audited): tell observers once
            if self._observers() and self.store.claim_execution(
                f"observed:{it.request_id}", worker=self.worker_id, at=now
            ):
                decided_at = stored.decided_at or now
                self._emit(
                    "decided",
                    it,
                    ctx,
                    now,
                    decision=d.type,
                    waited=(decided_at - stored.created_at).total_seconds(),
                    reviewer=stored.decided_by,
                    extra={**stored.metadata, "recorded_first": True},
                )
            return stored
        status = STATUS_OF[d.type]
        waited = (now - stored.created_at).total_seconds()
        try:
            updated = self.store.update_request(
                it.request_id,
                expected_status="pending",
                status=status,
                decision=decision,
                decided_at=now,
                updated_at=now,
                audit=AuditEvent(
                    event="decided",
                    at=now,
                    request_id=it.request_id,
                    thread_id=ctx.thread_id,
                    actor=stored.decided_by,
                    data={
                        "decision": decision,
                        "digest": stored.digest,
                        "tool": stored.tool,
                        "policy_version": stored.policy_version,
                        "waited_seconds": waited,
                    },
                ),
            )
        except AlreadyDecided:
            return self.store.get_request(it.request_id) or stored
        self._emit(
            "decided", it, ctx, now, decision=d.type, waited=waited, extra=dict(stored.metadata)
        )
        return updated

    # -- records ---------------------------------------------------------------------
    def _record(
        self,
        it: GateItem,
        ctx: _RunCtx,
        status: Any,
        now: datetime,
        interrupt_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ApprovalRecord:
        a = it.assessment
        return ApprovalRecord(
            request_id=it.request_id,
            thread_id=ctx.thread_id or "",
            node=ctx.node,
            tool=a.action.tool,
            args=dict(a.action.args),
            digest=it.digest,
            score=a.score,
            route=a.route,
            reasons=list(a.reasons),
            status=status,
            created_at=now,
            updated_at=now,
            checkpoint_ns=ctx.checkpoint_ns,
            tool_call_id=a.action.tool_call_id,
            kind=a.action.kind,
            interrupt_id=interrupt_id,
            approver_roles=sorted(a.approver_roles),
            allowed_decisions=list(a.allowed_decisions),
            quorum=a.quorum,
            policy_version=a.policy_version,
            requester=ctx.user_id,
            expires_at=it.expires_at,
            on_expiry=a.on_expiry,
            parent_request_id=it.parent_request_id,
            metadata={**it.metadata, **dict(metadata or {})},
        )

    def _record_final(
        self, it: GateItem, ctx: _RunCtx, status: Literal["denied", "review"]
    ) -> None:
        now = self.clock()
        rec = self._record(it, ctx, status, now)
        _, created = self.store.put_request(rec, audit=self._audit(status, rec, now))
        if created:
            self._emit("denied" if status == "denied" else "assessed", it, ctx, now)

    @staticmethod
    def _audit(event: str, rec: ApprovalRecord, now: datetime) -> AuditEvent:
        return AuditEvent(
            event=event,
            at=now,
            request_id=rec.request_id,
            thread_id=rec.thread_id,
            actor=rec.requester,
            data={
                "tool": rec.tool,
                "args": rec.args,
                "digest": rec.digest,
                "score": rec.score,
                "route": rec.route,
                "reasons": rec.reasons,
                "policy_version": rec.policy_version,
                "approver_roles": rec.approver_roles,
                "quorum": rec.quorum,
                "expires_at": None if rec.expires_at is None else rec.expires_at.isoformat(),
                "parent_request_id": rec.parent_request_id,
            },
        )

    def _emit(
        self,
        kind: Any,
        it: GateItem,
        ctx: _RunCtx,
        now: datetime,
        *,
        decision: str | None = None,
        waited: float | None = None,
        error: str | None = None,
        extra: dict[str, Any] | None = None,
        reviewer: str | None = None,
    ) -> None:
        observers = self._observers()
        if not observers:
            return
        a = it.assessment
        notify_observers(
            observers,
            GateEvent(
                kind=kind,
                request_id=it.request_id,
                node=ctx.node,
                tool=a.action.tool,
                args=dict(a.action.args),
                digest=a.action.digest,
                score=a.score,
                route=a.route,
                reasons=a.reasons,
                policy_version=a.policy_version,
                at=now,
                thread_id=ctx.thread_id,
                user_id=ctx.user_id,
                decision=decision,
                reviewer=reviewer,
                waited_seconds=waited,
                error=error,
                approver_roles=tuple(sorted(a.approver_roles)),
                expires_at=it.expires_at,
                extra=extra or {},
            ),
        )

    # -- execution -------------------------------------------------------------------
    def _finish(self, res: Resolution, ctx: _RunCtx, result: Any) -> None:
        now = self.clock()
        if res.journal:
            type_, blob = self._serde.dumps_typed(result)
            ok = self.store.finish_execution(
                res.request_id,
                state="done",
                at=now,
                result_type=type_,
                result=blob,
                audit=AuditEvent(
                    event="executed",
                    at=now,
                    request_id=res.request_id,
                    thread_id=ctx.thread_id,
                    actor=self.worker_id,
                    data={
                        "tool": res.tool_call.get("name"),
                        "args": res.tool_call.get("args"),
                        "edited": res.edited,
                        "result": _summary(result),
                    },
                ),
                expected_state="started",
            )
            if not ok:
                logger.warning(
                    "%s finished, but its journal row was settled meanwhile (hitl recover); "
                    "the settled outcome stands for replays",
                    res.request_id,
                )
        self._emit("executed", res.item, ctx, now, decision=_kind(res))

    def _failed(self, res: Resolution, ctx: _RunCtx, exc: BaseException) -> None:
        """The tool raised an ordinary error: the failure is audited and the claim
        released in one transaction, so a retry (a node ``RetryPolicy``, a re-invoke)
        runs it again, as it would without the gate. Tools whose failures may have taken
        effect should use the idempotency key (see the README's reliability section)."""
        now = self.clock()
        try:
            self.store.reopen_execution(
                res.request_id,
                expected_state=("started",),
                audit=AuditEvent(
                    event="execution_failed",
                    at=now,
                    request_id=res.request_id,
                    thread_id=ctx.thread_id,
                    actor=self.worker_id,
                    data={
                        "tool": res.tool_call.get("name"),
                        "error": type(exc).__name__,
                        "message": str(exc)[:500],
                        "released": True,
                    },
                ),
            )
        except Exception:  # the tool's error is what the caller must see
            logger.exception("could not record the failure of %s", res.request_id)

    def _unstart(self, res: Resolution) -> None:
        """The tool raised a LangGraph interrupt: it will be called again on resume."""
        try:
            self.store.reopen_execution(res.request_id, expected_state=("started",))
        except Exception:
            logger.exception("could not reopen %s after an interrupt in the tool", res.request_id)

    def _step(self, res: Resolution) -> tuple[str, Any]:
        """One look at the journal: ``("run", None)`` (this caller calls the tool now),
        ``("result", value)``, ``("again", None)`` or ``("wait", (why, record))``."""
        rid = res.request_id
        now = self.clock()
        if self.store.claim_execution(rid, worker=self.worker_id, at=now):
            if self.store.start_execution(rid, worker=self.worker_id, at=self.clock()):
                return "run", None
            return "again", None  # taken over between claim and start: look again
        rec = self.store.get_execution(rid)
        if rec is None:
            return "again", None
        if rec.state == "done" and rec.result_type == SETTLED_TEXT:
            return "result", settled_message(
                tool=str(res.tool_call.get("name") or res.item.tool),
                tool_call_id=str(res.tool_call.get("id") or ""),
                state="done",
                text=None if not rec.result else rec.result.decode("utf-8", "replace"),
            )
        if rec.state == "done" and rec.result_type is not None:
            return "result", self._serde.loads_typed((rec.result_type, rec.result or b""))
        if rec.state in ("done", "failed"):
            return "result", settled_message(
                tool=str(res.tool_call.get("name") or res.item.tool),
                tool_call_id=str(res.tool_call.get("id") or ""),
                state=rec.state,
                text=rec.error if rec.state == "failed" else None,
            )
        alive = worker_alive(rec.worker)
        if rec.state == "running":  # claimed, the tool never called
            stale = (now - rec.started_at).total_seconds() >= self.claim_grace
            if alive is False or stale:
                if self.store.release_execution(rid, worker=rec.worker):
                    self._audit_release(res, rec.worker, "gone" if alive is False else "stale")
                return "again", None
            return "wait", (f"worker {rec.worker} to start it", rec)
        if alive is False:
            raise ExecutionHeld(
                rid,
                worker=rec.worker,
                started_at=rec.started_at.isoformat(),
                why="its worker process no longer exists",
            )
        return "wait", (f"worker {rec.worker} to finish it (started {rec.started_at})", rec)

    def _audit_release(self, res: Resolution, worker: str, why: str) -> None:
        now = self.clock()
        logger.warning(
            "released the claim of %s by %s (%s): it never called the tool; running it here",
            res.request_id,
            worker,
            why,
        )
        try:
            self.store.append_audit(
                AuditEvent(
                    event="claim_released",
                    at=now,
                    request_id=res.request_id,
                    actor=self.worker_id,
                    data={"worker": worker, "reason": why, "started": False},
                )
            )
        except Exception:
            logger.exception("could not audit the released claim of %s", res.request_id)

    def _prepare_run(self, res: Resolution, config: Mapping[str, Any]) -> _RunCtx:
        ctx = _RunCtx.of(config)
        if res.item.assessment.route == "review":
            self._record_final(res.item, ctx, "review")
        if res.journal:
            pass_idempotency_key(config, res.request_id)
        return ctx

    def _timed_out(self, res: Resolution, last: Any) -> ExecutionInProgress:
        why, rec = last
        if rec is not None and rec.state == "started" and worker_alive(rec.worker) is False:
            return ExecutionHeld(
                res.request_id,
                worker=rec.worker,
                started_at=rec.started_at.isoformat(),
                why="its worker process no longer exists",
            )
        return ExecutionInProgress(
            res.request_id,
            f"action {res.request_id!r}: waited {self.execution_wait:g}s for {why} and no "
            "result came back. If that worker is still running, retry later; if it is gone, "
            "a claim that never started is taken over by the next resume or `hitl reconcile`, "
            f"and a started one is settled with `{RECOVER_HINT.format(rid=res.request_id)}`",
        )

    def run_once(
        self, res: Resolution, execute: Callable[[], T], *, config: Mapping[str, Any]
    ) -> T:
        """Run the action, at most once per request id when the run may be replayed.

        The journal row goes ``running`` (claimed) -> ``started`` (just before
        ``execute``) -> ``done`` / ``failed``. A replay (or a racing resume) gets the
        recorded result instead of running it again; it waits up to ``execution_wait``
        seconds for a live worker, takes over a claim that never started, and raises
        :class:`ExecutionHeld` for a started action whose worker is gone.
        """
        ctx = self._prepare_run(res, config)
        if not res.journal:
            result = execute()
            self._finish(res, ctx, result)
            return result
        deadline = time.monotonic() + self.execution_wait
        last: Any = None
        while True:
            kind, value = self._step(res)
            if kind == "run":
                try:
                    result = execute()
                except GraphBubbleUp:
                    self._unstart(res)
                    raise
                except Exception as exc:
                    self._failed(res, ctx, exc)
                    raise
                self._finish(res, ctx, result)
                return result
            if kind == "result":
                return value  # type: ignore[no-any-return]
            if kind == "wait":
                if last is None:
                    logger.info(
                        "%s: waiting up to %gs for %s",
                        res.request_id,
                        self.execution_wait,
                        value[0],
                    )
                last = value
                if time.monotonic() >= deadline:
                    raise self._timed_out(res, last)
                time.sleep(0.02)

    async def arun_once(
        self, res: Resolution, execute: Callable[[], Awaitable[T]], *, config: Mapping[str, Any]
    ) -> T:
        """Async twin of :meth:`run_once`; store calls run off the event loop.

        A journaled action runs to completion even if the awaiting task is cancelled
        (the Agent Server cancels runs for ``multitask_strategy`` interrupt/rollback):
        its outcome is recorded before the claim is settled, so a second run waits for
        that outcome instead of starting the action again."""
        off = AsyncStore.of(self.store).run
        ctx = await off(self._prepare_run, res, config)
        if not res.journal:
            result = await execute()
            await off(self._finish, res, ctx, result)
            return result

        async def settle_error(exc: BaseException) -> None:
            if isinstance(exc, GraphBubbleUp):
                await off(self._unstart, res)
            elif isinstance(exc, Exception):
                await off(self._failed, res, ctx, exc)
            # the action itself was cancelled (its loop is closing): it may have taken
            # effect, so it stays "started" and is held for a human (`hitl recover`)

        deadline = time.monotonic() + self.execution_wait
        last: Any = None
        while True:
            kind, value = await off(self._step, res)
            if kind == "run":
                return await run_to_completion(
                    execute,
                    on_result=lambda result: off(self._finish, res, ctx, result),
                    on_error=settle_error,
                )
            if kind == "result":
                return value  # type: ignore[no-any-return]
            if kind == "wait":
                if last is None:
                    logger.info(
                        "%s: waiting up to %gs for %s",
                        res.request_id,
                        self.execution_wait,
                        value[0],
                    )
                last = value
                if time.monotonic() >= deadline:
                    raise self._timed_out(res, last)
                await asyncio.sleep(0.02)


def _resume_map() -> Mapping[str, Any] | None:
    """The interrupt-id keyed resume map of the current run (``None``: a plain resume)."""
    try:
        from langgraph._internal._constants import CONFIG_KEY_RESUME_MAP
        from langgraph.config import get_config

        conf = get_config().get("configurable", {})
    except (ImportError, RuntimeError):  # pragma: no cover - outside a run / other langgraph
        return None
    value = conf.get(CONFIG_KEY_RESUME_MAP)
    return value if isinstance(value, Mapping) else None


def _kind(res: Resolution) -> str | None:
    return None if res.decision is None else str(res.decision.get("type"))


def _summary(result: Any, limit: int = 500) -> Any:
    content = getattr(result, "content", result)
    status = getattr(result, "status", None)
    text = content if isinstance(content, str) else repr(content)
    out: dict[str, Any] = {"content": text[:limit]}
    if status is not None:
        out["status"] = status
    return out
