"""``FeedbackLoop``: collect -> guidance -> prompt versions -> adaptive priors -> remediation.

One call, :meth:`FeedbackLoop.run_once`, for a scheduler, a CLI or a notebook::

    loop = FeedbackLoop(
        store,
        project="support-agent",
        # ReviewQueue: verdicts from Phoenix; include_reviewed also picks up later edits
        # (a reviewer changing or retracting a verdict), at one more read per reviewed span
        collect=lambda: queue.collect(include_reviewed=True),
        resolver=PhoenixContextResolver(store, queue.client, "support-agent"),
        prompts=[PromptRegistry("support-agent", phoenix=queue.client, node="agent")],
        adaptive=adaptive,                           # the policy's AdaptiveRisk adjuster
        compensations=Compensations({"transfer_funds": refund}),
        mirror=queue.sync,                           # send compensation annotations
    )
    report = loop.run_once()
    print(report)

Each step runs even when an earlier one failed (its error is in ``report.errors``),
except that prompts are only pushed after guidance was derived. Guidance changes are
published to the audit trail (``guidance_activated`` / ``guidance_deactivated`` /
``guidance_conflict`` events, then a ``guidance_version`` event carrying the snapshot
that :class:`~hitl_langgraph.feedback.StoreGuidance` serves to running agents).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from ..store.base import ApprovalStore
from ..store.records import AuditEvent
from ..store.review_records import ReviewRecord
from ._streams import GUIDANCE_STREAM, StreamReader, publish, utc_now
from .adaptive import AdaptiveRisk
from .compensate import Compensations, Compensator
from .context import ContextResolver, ReviewContext, StoreContextResolver
from .derive import derive_guidance
from .distill import Distiller, RecordedDistiller
from .guidance import GuidanceConfig, GuidanceItem, GuidanceSet
from .prompts import PromptRegistry
from .remediate import CompensationOutcome, CompensationRunner
from .sources import GUIDANCE_EVENT

__all__ = ["FeedbackLoop", "LoopReport", "PromptUpdate"]

logger = logging.getLogger("hitl_langgraph.feedback")


@dataclass(frozen=True)
class PromptUpdate:
    """What happened to one Phoenix prompt in a run."""

    prompt: str
    version_id: str
    guidance_version: str
    created: bool
    promoted: bool


@dataclass
class LoopReport:
    """What one :meth:`FeedbackLoop.run_once` did."""

    started_at: datetime
    collected: Any = None
    reviews: int = 0
    deferred: int = 0
    """Reviews kept out of guidance this run: their context is not complete yet."""
    guidance: GuidanceSet = field(default_factory=GuidanceSet)
    previous_version: str | None = None
    published: bool = False
    activated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    prompts: list[PromptUpdate] = field(default_factory=list)
    priors_version: str | None = None
    risk_changes: list[dict[str, Any]] = field(default_factory=list)
    compensations: list[CompensationOutcome] = field(default_factory=list)
    outstanding: list[str] = field(default_factory=list)
    errors: list[tuple[str, BaseException]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not any(c.status == "failed" for c in self.compensations)

    def __str__(self) -> str:
        g = self.guidance
        rows = [
            ("reviews read (deferred)", f"{self.reviews} ({self.deferred})"),
            (
                "guidance version",
                f"{self.previous_version or '-'} -> {g.version}" if self.published else g.version,
            ),
            (
                "active / pending / conflict",
                f"{len(g.active)} / {len(g.pending)} / {len(g.conflicts)}",
            ),
            ("activated", ", ".join(self.activated) or "-"),
            ("deactivated", ", ".join(self.deactivated) or "-"),
            (
                "prompt versions",
                ", ".join(
                    f"{p.prompt}:{p.version_id}{' (promoted)' if p.promoted else ''}"
                    for p in self.prompts
                    if p.created
                )
                or "-",
            ),
            ("risk priors", f"{self.priors_version or '-'} ({len(self.risk_changes)} changed)"),
            (
                "compensations",
                ", ".join(
                    f"{c.request_id}:{c.status}"
                    for c in self.compensations
                    if c.status not in ("already_done", "no_compensator")
                )
                or "-",
            ),
            ("errors", "; ".join(f"{s}: {e}" for s, e in self.errors) or "-"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


class FeedbackLoop:
    """Ties collection, guidance, Phoenix prompt versions, risk priors and remediation.

    Args:
        store: The approval store (reviews, requests, journal, audit, outbox).
        project: Only reviews of this Phoenix project (``None``: all).
        collect: Called first to pull new verdicts into the store (``ReviewQueue.collect``).
        resolver: Resolves each review's action, node and input
            (default :class:`StoreContextResolver`).
        guidance: Activation, conflict and expiry rules.
        distiller: Optional :class:`Distiller` (wrapped in :class:`RecordedDistiller`).
        prompts: Phoenix prompts to keep in step with the guidance (one per node).
        auto_promote: Move ``production`` to each newly pushed version (otherwise it
            stays ``candidate`` until :meth:`PromptRegistry.promote`).
        adaptive: The :class:`AdaptiveRisk` adjuster to refresh.
        compensations: Compensators (a runner, a registry, or ``{tool: fn}``).
        mirror: Called last to send outbox entries to Phoenix (``ReviewQueue.sync``).
        clock: Injectable wall clock.
        resolve_grace: How long a review whose context is incomplete (its trace not in
            Phoenix yet, Phoenix down) is kept out of guidance before the partial context
            is used; remediation and risk priors use it right away.
        raise_errors: Re-raise the first step error after the run.
    """

    def __init__(
        self,
        store: ApprovalStore,
        *,
        project: str | None = None,
        collect: Callable[[], Any] | None = None,
        resolver: ContextResolver | None = None,
        guidance: GuidanceConfig | None = None,
        distiller: Distiller | RecordedDistiller | None = None,
        prompts: Sequence[PromptRegistry] = (),
        auto_promote: bool = False,
        adaptive: AdaptiveRisk | None = None,
        compensations: CompensationRunner | Compensations | Mapping[str, Compensator] | None = None,
        mirror: Callable[[], Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
        worker_id: str | None = None,
        resolve_grace: timedelta = timedelta(minutes=10),
        raise_errors: bool = False,
    ) -> None:
        self.store = store
        self.project = project
        self.collect = collect
        self.resolver: ContextResolver = resolver or StoreContextResolver(store)
        self.config = guidance or GuidanceConfig()
        if distiller is not None and not isinstance(distiller, RecordedDistiller):
            distiller = RecordedDistiller(store, distiller, clock=clock)
        self.distiller = distiller
        self.prompts = list(prompts)
        self.auto_promote = auto_promote
        self.adaptive = adaptive
        if isinstance(compensations, Mapping):
            compensations = Compensations(compensations)
        if isinstance(compensations, Compensations):
            compensations = CompensationRunner(store, compensations, clock=clock)
        self.compensations = compensations
        self.mirror = mirror
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:feedback"
        self.resolve_grace = resolve_grace
        self.raise_errors = raise_errors
        self._reader = StreamReader(store, GUIDANCE_STREAM, GUIDANCE_EVENT)

    # -- steps ---------------------------------------------------------------------------
    def reviews(self) -> list[ReviewRecord]:
        """Every collected verdict and guidance note (all pages)."""
        out: list[ReviewRecord] = []
        for name in (self.config.verdict_name, self.config.guidance_name):
            after: tuple[datetime, str] | None = None
            while True:
                page = self.store.list_reviews(self.project, name=name, limit=1000, after=after)
                out.extend(page)
                if len(page) < 1000:
                    break
                after = (page[-1].collected_at, page[-1].review_id)
        return sorted(out, key=lambda r: (r.collected_at, r.review_id))

    def contexts(self, reviews: Sequence[ReviewRecord]) -> dict[str, ReviewContext]:
        """The resolved context of each review, by review id."""
        return {r.review_id: self.resolver.resolve(r) for r in reviews}

    def ready(
        self, reviews: Sequence[ReviewRecord], contexts: Mapping[str, ReviewContext]
    ) -> list[ReviewRecord]:
        """The reviews guidance may use now: complete contexts, or past ``resolve_grace``."""
        now = self.clock()
        out = []
        for r in reviews:
            ctx = contexts.get(r.review_id)
            if ctx is None or ctx.complete or now - r.collected_at >= self.resolve_grace:
                out.append(r)
        return out

    def derive(
        self, reviews: Sequence[ReviewRecord], contexts: Mapping[str, ReviewContext]
    ) -> GuidanceSet:
        """The guidance set for these reviews (see :func:`derive_guidance`)."""
        usable = self.ready(reviews, contexts)
        return derive_guidance(
            usable, contexts, self.config, now=self.clock(), instruction_of=self.distiller
        )

    def published(self) -> tuple[int, GuidanceSet, frozenset[str]]:
        """The last published step number, set and conflict ids (``0`` if none)."""
        ev = self._reader.latest()
        if ev is None:
            return 0, GuidanceSet(), frozenset()
        snap = ev.data.get("snapshot", {})
        return (
            int(ev.data.get("n", 0)),
            GuidanceSet.from_snapshot(snap),
            frozenset(snap.get("conflicts", ())),
        )

    def publish(self, guidance: GuidanceSet, report: LoopReport) -> bool:
        """Publish ``guidance`` if its active items or conflicts changed; audit the diff."""
        n, old, old_conflicts = self.published()
        report.previous_version = old.version if n else None
        new_ids = {i.id for i in guidance.active}
        old_ids = {i.id for i in old.active}
        conflict_ids = {i.id for i in guidance.conflicts}
        if n and guidance.version == old.version and conflict_ids == old_conflicts:
            return False
        now = self.clock()
        events = [
            self._event("guidance_activated", now, i)
            for i in guidance.active
            if i.id not in old_ids
        ]
        for item in old.active:
            if item.id not in new_ids:
                now_item = guidance.item(item.id)
                why = "retracted" if now_item is None else f"{now_item.status}: {now_item.note}"
                events.append(self._event("guidance_deactivated", now, item, reason=why))
        events += [
            self._event("guidance_conflict", now, i)
            for i in guidance.conflicts
            if i.id not in old_conflicts
        ]
        data = {
            "version": guidance.version,
            "parent": old.version if n else None,
            "snapshot": guidance.to_snapshot(),
            "activated": sorted(new_ids - old_ids),
            "deactivated": sorted(old_ids - new_ids),
        }
        done = publish(
            self.store,
            GUIDANCE_STREAM,
            GUIDANCE_EVENT,
            data,
            n=n + 1,
            at=now,
            worker=self.worker_id,
            before=events,
        )
        if done:
            report.activated = sorted(new_ids - old_ids)
            report.deactivated = sorted(old_ids - new_ids)
            report.conflicts = sorted(conflict_ids - old_conflicts)
        return done

    def _event(
        self, kind: str, at: datetime, item: GuidanceItem, *, reason: str = ""
    ) -> AuditEvent:
        data = item.to_dict()
        if reason:
            data["reason"] = reason
        return AuditEvent(
            event=kind, at=at, request_id=GUIDANCE_STREAM, actor=self.worker_id, data=data
        )

    # -- the loop ------------------------------------------------------------------------
    def run_once(self) -> LoopReport:
        """Run every step once; see :class:`LoopReport`."""
        report = LoopReport(started_at=self.clock())
        reviews: list[ReviewRecord] = []
        contexts: dict[str, ReviewContext] = {}
        guidance: GuidanceSet | None = None

        def step(name: str, fn: Callable[[], Any]) -> Any:
            t0 = time.perf_counter()
            try:
                return fn()
            except Exception as exc:
                logger.exception("hitl_langgraph feedback loop: step %s failed", name)
                report.errors.append((name, exc))
                return None
            finally:
                report.seconds[name] = round(time.perf_counter() - t0, 4)

        if self.collect is not None:
            report.collected = step("collect", self.collect)
        reviews = step("reviews", self.reviews) or []
        report.reviews = len(reviews)
        contexts = step("resolve", lambda: self.contexts(reviews)) or {}
        report.deferred = len(reviews) - len(self.ready(reviews, contexts))
        guidance = step("guidance", lambda: self.derive(reviews, contexts))
        if guidance is not None:
            report.guidance = guidance
            report.published = bool(step("publish", lambda: self.publish(guidance, report)))
            for registry in self.prompts:
                update = step(f"prompt {registry.name}", partial(self._push, registry, guidance))
                if update is not None:
                    report.prompts.append(update)
        if self.adaptive is not None:
            adaptive = self.adaptive
            result = step("adaptive", lambda: adaptive.refresh(reviews, contexts))
            if result is not None:
                report.priors_version, report.risk_changes = result[0].version, result[1]
        if self.compensations is not None:
            runner = self.compensations
            report.compensations = (
                step("compensate", lambda: runner.run_all(reviews, contexts)) or []
            )
            ids = sorted(runner.verdicts_by_request(reviews, contexts))
            report.outstanding = step("outstanding", lambda: runner.outstanding(ids)) or []
        if self.mirror is not None:
            step("mirror", self.mirror)
        if self.raise_errors and report.errors:
            raise report.errors[0][1]
        return report

    def _push(self, registry: PromptRegistry, guidance: GuidanceSet) -> PromptUpdate:
        result = registry.push_candidate(guidance)
        promoted = False
        if result.created and self.auto_promote:
            registry.promote(result.version.id, actor=self.worker_id)
            promoted = True
        return PromptUpdate(
            prompt=registry.name,
            version_id=result.version.id,
            guidance_version=result.version.guidance.version,
            created=result.created,
            promoted=promoted,
        )
