"""Deadlines and escalation: which requests are overdue, and which escalation steps are due.

Every request may carry ``expires_at`` (from its rule's ``expires_after``, or the gate's
``default_expiry``). :meth:`Inbox.expire_overdue` (and ``hitl sweep``) applies the rule's
``on_expiry`` decision (``reject`` unless the rule says ``approve``) to each pending
request past its deadline: exactly once (a status compare-and-set), with status
``expired``, ``decided_by="system"``, and an ``expired`` audit event.

Escalation steps widen who may decide a request that waits too long::

    Inbox(store, graph, escalation=[
        EscalationStep(after=timedelta(hours=4), add_roles={"finance-lead"}),
        EscalationStep(after=timedelta(hours=24), add_roles={"cfo"}),
    ])

A step is due once ``created_at + after <= now``. Applying it sets the request's
``approver_roles`` to the rule's roles plus those of every step due (so steps applied
in any order, or twice, give the same result), audits an ``escalated`` event once per
step (a claim in the execution journal) and calls the notifiers. A request whose rule
lists no roles is open to everyone already; its steps only notify.

All of it reads time from the inbox's clock, so tests move a fake clock instead of
sleeping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import AlreadyDecided, ConfigurationError
from ..store.base import ApprovalStore, RequestFilter
from ..store.records import ApprovalRecord, AuditEvent
from ._base import iter_requests
from ._resume import ResumeMixin
from .authority import SYSTEM_ACTOR
from .results import DecisionResult, Escalation, SweepReport

__all__ = [
    "DeadlineMixin",
    "EscalationStep",
    "already_escalated",
    "due_steps",
    "escalated_roles",
    "escalation_candidates",
    "escalation_key",
    "escalation_metadata",
    "expiry_decision",
    "overdue",
]

_BASE_ROLES = "escalation_base_roles"
_STEPS = "escalated_steps"


@dataclass(frozen=True)
class EscalationStep:
    """After ``after`` has passed since a request was created, let ``add_roles`` decide it
    too, and (``notify``) tell the notifiers."""

    after: timedelta
    add_roles: frozenset[str] = field(default_factory=frozenset)
    notify: bool = True
    name: str | None = None

    def __init__(
        self,
        after: timedelta,
        add_roles: Iterable[str] = (),
        notify: bool = True,
        name: str | None = None,
    ) -> None:
        if not isinstance(after, timedelta) or after < timedelta(0):
            raise ConfigurationError(
                f"EscalationStep.after must be a non-negative timedelta, got {after!r}"
            )
        if isinstance(add_roles, str):
            raise ConfigurationError(
                f"EscalationStep.add_roles must be a collection of roles, not {add_roles!r}"
            )
        object.__setattr__(self, "after", after)
        object.__setattr__(self, "add_roles", frozenset(add_roles))
        object.__setattr__(self, "notify", notify)
        object.__setattr__(self, "name", name)

    @property
    def label(self) -> str:
        return self.name or f"after {self.after}"


def escalation_key(request_id: str, step: int) -> str:
    return f"escalate:{request_id}:{step}"


def overdue(store: ApprovalStore, now: datetime, *, limit: int) -> list[ApprovalRecord]:
    """Pending requests whose deadline is strictly before ``now`` (oldest first)."""
    return store.list_requests(RequestFilter(status=("pending",), expires_before=now), limit=limit)


def expiry_decision(record: ApprovalRecord) -> dict[str, Any]:
    """The decision applied when ``record`` expires (``on_expiry``, ``reject`` by default)."""
    kind = record.on_expiry if record.on_expiry in ("approve", "reject") else "reject"
    when = "" if record.expires_at is None else f" ({record.expires_at.isoformat()})"
    if kind == "approve":
        message = f"approved by default: no reviewer decided before the deadline{when}"
    else:
        message = (
            f"no reviewer decided before the deadline{when}, so the request expired and "
            "was rejected by default"
        )
    return {
        "type": kind,
        "message": message,
        "request_id": record.request_id,
        "digest": record.digest,
    }


def due_steps(record: ApprovalRecord, steps: Sequence[EscalationStep], now: datetime) -> list[int]:
    """Indexes of the steps due for ``record`` at ``now``."""
    age = now - record.created_at
    return [i for i, s in enumerate(steps) if s.after <= age]


def escalated_roles(
    record: ApprovalRecord, steps: Sequence[EscalationStep], due: Sequence[int]
) -> tuple[list[str], list[str]]:
    """``(base_roles, roles)``: the rule's own roles and those widened by the due steps.

    A request with no roles on its rule stays open to everyone (roles stay empty)."""
    base = record.metadata.get(_BASE_ROLES)
    base_roles = list(record.approver_roles) if not isinstance(base, list) else list(base)
    if not base_roles:
        return [], []
    roles = set(base_roles)
    for i in due:
        roles |= steps[i].add_roles
    return sorted(base_roles), sorted(roles)


def escalation_metadata(
    record: ApprovalRecord, base_roles: list[str], due: Sequence[int]
) -> dict[str, Any]:
    done = set(record.metadata.get(_STEPS) or ())
    return {**record.metadata, _BASE_ROLES: base_roles, _STEPS: sorted(done | set(due))}


def already_escalated(record: ApprovalRecord) -> set[int]:
    return {int(i) for i in record.metadata.get(_STEPS) or ()}


def escalation_candidates(
    store: ApprovalStore, steps: Sequence[EscalationStep], now: datetime, *, page: int = 200
) -> Iterator[ApprovalRecord]:
    """Pending requests old enough for at least one step, oldest first.

    Pages through the pending index in creation order and stops at the first request
    too young for the earliest step, so the cost follows the number of due requests."""
    if not steps:
        return
    earliest = min(s.after for s in steps)
    for rec in iter_requests(store, ("pending",), page=page):
        if now - rec.created_at < earliest:
            return
        yield rec


class DeadlineMixin(ResumeMixin):
    """``expire_overdue``, ``escalate_due`` and ``sweep`` for :class:`Inbox`."""

    def _expire_one(self, rec: ApprovalRecord, now: datetime) -> ApprovalRecord | None:
        decision = expiry_decision(rec)
        try:
            updated = self.store.update_request(
                rec.request_id,
                expected_status="pending",
                status="expired",
                decision=decision,
                decided_by=SYSTEM_ACTOR,
                decided_at=now,
                updated_at=now,
                metadata=self._marked(rec.metadata, now),
                audit=AuditEvent(
                    event="expired",
                    at=now,
                    request_id=rec.request_id,
                    thread_id=rec.thread_id,
                    actor=SYSTEM_ACTOR,
                    data={
                        "via": "sweep",
                        "decision": decision,
                        "expires_at": None
                        if rec.expires_at is None
                        else rec.expires_at.isoformat(),
                        "tool": rec.tool,
                        "digest": rec.digest,
                        "policy_version": rec.policy_version,
                        "approvals": list(rec.approvals),
                        "waited_seconds": (now - rec.created_at).total_seconds(),
                        "resumer": self.worker_id if self.graph is not None else None,
                    },
                ),
            )
        except AlreadyDecided:
            return None  # decided (or expired by another sweeper) meanwhile
        self._notify(
            "expired",
            updated,
            now,
            decision=str(decision["type"]),
            extra={"reason": decision["message"]},
        )
        return updated

    def _expiry_result(self, rec: ApprovalRecord, outcome: str, output: Any) -> DecisionResult:
        return DecisionResult(
            request_id=rec.request_id,
            decision=str((rec.decision or {}).get("type")),
            outcome=outcome,  # type: ignore[arg-type]
            record=rec,
            quorum=rec.quorum,
            output=output,
        )

    def expire_overdue(self, *, limit: int = 100) -> list[DecisionResult]:
        """Apply the default decision to pending requests past their deadline, once each.

        Each is recorded as ``expired``, decided by ``"system"``, with the rule's
        ``on_expiry`` decision (``reject`` unless configured); with a graph attached the
        thread is resumed (``outcome="resumed"``), otherwise a worker applies it.
        """
        now = self.clock()
        out: list[DecisionResult] = []
        for rec in overdue(self.store, now, limit=limit):
            updated = self._expire_one(rec, now)
            if updated is None:
                continue
            if self.graph is None:
                out.append(self._expiry_result(updated, "recorded", None))
                continue
            resumed, output = self._resume_owned(updated, SYSTEM_ACTOR)
            out.append(self._expiry_result(updated, "resumed" if resumed else "recorded", output))
        return out

    async def aexpire_overdue(self, *, limit: int = 100) -> list[DecisionResult]:
        """Async :meth:`expire_overdue`."""
        now = self.clock()
        rows = await self._off(overdue, self.store, now, limit=limit)
        out: list[DecisionResult] = []
        for rec in rows:
            updated = await self._off(self._expire_one, rec, now)
            if updated is None:
                continue
            if self.graph is None:
                out.append(self._expiry_result(updated, "recorded", None))
                continue
            resumed, output = await self._aresume_owned(updated, SYSTEM_ACTOR)
            out.append(self._expiry_result(updated, "resumed" if resumed else "recorded", output))
        return out

    def escalate_due(self) -> list[Escalation]:
        """Apply the escalation steps that are due (each step once per request)."""
        if not self.escalation:
            return []
        now = self.clock()
        out: list[Escalation] = []
        for rec in escalation_candidates(self.store, self.escalation, now):
            due = due_steps(rec, self.escalation, now)
            done = already_escalated(rec)
            new = [i for i in due if i not in done]
            if not new:
                continue
            base, roles = escalated_roles(rec, self.escalation, due)
            try:
                updated = self.store.update_request(
                    rec.request_id,
                    expected_status="pending",
                    approver_roles=roles,
                    metadata=escalation_metadata(rec, base, due),
                    updated_at=now,
                )
            except AlreadyDecided:
                continue
            for i in new:
                if not self.store.claim_execution(
                    escalation_key(rec.request_id, i), worker=self.worker_id, at=now
                ):
                    continue  # another sweeper applied this step
                step = self.escalation[i]
                added = sorted(step.add_roles - set(rec.approver_roles)) if base else []
                self.store.finish_execution(
                    escalation_key(rec.request_id, i),
                    state="done",
                    at=now,
                    audit=AuditEvent(
                        event="escalated",
                        at=now,
                        request_id=rec.request_id,
                        thread_id=rec.thread_id,
                        actor=SYSTEM_ACTOR,
                        data={
                            "step": i,
                            "step_name": step.label,
                            "after_seconds": step.after.total_seconds(),
                            "added_roles": added,
                            "approver_roles": roles,
                            "tool": rec.tool,
                            "digest": rec.digest,
                            "policy_version": rec.policy_version,
                        },
                    ),
                )
                out.append(Escalation(rec.request_id, i, tuple(added), tuple(roles)))
                if step.notify:
                    self._notify(
                        "escalated",
                        updated,
                        now,
                        extra={"step": i, "step_name": step.label, "added_roles": added},
                    )
        return out

    def sweep(self, *, limit: int = 100) -> SweepReport:
        """Run :meth:`escalate_due` then :meth:`expire_overdue` (what ``hitl sweep`` does)."""
        escalated = self.escalate_due()
        return SweepReport(expired=self.expire_overdue(limit=limit), escalated=escalated)

    async def asweep(self, *, limit: int = 100) -> SweepReport:
        escalated = await self._off(self.escalate_due)
        return SweepReport(expired=await self.aexpire_overdue(limit=limit), escalated=escalated)
