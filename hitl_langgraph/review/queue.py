"""``ReviewQueue``: review sampled runs from code, collect verdicts made in the Phoenix UI.

* :meth:`ReviewQueue.pending` — sampled, unreviewed items, oldest due first, each with
  the trace's input and output, its tool calls and a deep link into the Phoenix UI;
* :meth:`ReviewQueue.submit` — a reviewer's verdict, checked against the config first,
  stored, then mirrored as a HUMAN annotation with identifier ``human:<reviewer>``;
* :meth:`ReviewQueue.collect` — verdicts and guidance written in the Phoenix UI
  (identifier ``""`` with auth off, ``px-app:<user>`` with auth on) or through the API,
  pulled into the store: idempotent, and incremental (only the spans of unreviewed items
  are re-read; Phoenix has no "annotations since T" query);
* :meth:`ReviewQueue.sla` — the age of the oldest unreviewed item and how many are past
  their due time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError, NotAuthorized
from ..store.base import ApprovalStore
from ..store.review_records import ReviewRecord, ReviewSample, annotation_key
from .configs import ConfigsReport, ReviewOptions, ensure_annotation_configs, human_identifier
from .errors import UnknownProject, UnknownSpan
from .items import CollectReport, ReviewItem, SlaReport, ToolCall, parse_time, reviewer_of
from .observer import review_request_entry
from .phoenix_client import PhoenixClient, PhoenixError, PhoenixNotFound, PhoenixUnavailable
from .reviewers import ANONYMOUS, ReviewerDirectory
from .spool import Spool, SyncReport, utc_now

__all__ = [
    "AWAITING_REVIEW_FILTER",
    "CollectReport",
    "PendingItems",
    "ReviewItem",
    "ReviewQueue",
    "SlaReport",
    "ToolCall",
]

logger = logging.getLogger("hitl_langgraph.review")

_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")

AWAITING_REVIEW_FILTER = "annotations['review_request'].label == 'pending'"
"""Phoenix's span filter for spans awaiting review: the ``review_request`` annotation's
label is the queue state (``pending`` → ``reviewed`` when a verdict is collected)."""


class PendingItems(list[ReviewItem]):
    """What :meth:`ReviewQueue.pending` returns: the items, plus ``url``, the project's
    span list in the Phoenix UI filtered to spans awaiting review (``None`` when
    Phoenix could not be asked for the project's id)."""

    url: str | None = None

    def __repr__(self) -> str:
        return f"PendingItems({len(self)} item(s), url={self.url!r})"


_TRACE_CHUNK = 50


class ReviewQueue:
    """The review queue of one Phoenix project, kept in the store.

    Args:
        client: A :class:`PhoenixClient` or Phoenix's base URL.
        project: The Phoenix project the agent traces to.
        store: The store the :class:`~hitl_langgraph.review.ReviewSampler` writes to.
        options: Verdict labels and config names (default correct/incorrect/unsafe).
        clock: Returns an aware "now".
        mirror_on_submit: Try to send a submitted verdict right away (it is stored and
            spooled first either way; a failure leaves it for :meth:`sync`).
        required_roles: Authority rule: only reviewers holding one of these roles may
            close an item or back guidance (empty: anyone). UI verdicts get their
            reviewer's roles from the :class:`~hitl_langgraph.review.ReviewerDirectory`
            (``hitl review users add``); an anonymous verdict (auth off) has none.
    """

    def __init__(
        self,
        client: PhoenixClient | str,
        *,
        project: str,
        store: ApprovalStore,
        options: ReviewOptions | None = None,
        clock: Callable[[], datetime] = utc_now,
        mirror_on_submit: bool = True,
        required_roles: Iterable[str] = (),
    ) -> None:
        self.client = PhoenixClient(client) if isinstance(client, str) else client
        self.required_roles = frozenset(required_roles)
        self.reviewers = ReviewerDirectory(store)
        self.project = project
        self.store = store
        self.options = options or ReviewOptions()
        self.clock = clock
        self.mirror_on_submit = mirror_on_submit
        self.spool = Spool(store, self.client, project=project, clock=clock)
        self._project_id: str | None = None

    # -- setup ----------------------------------------------------------------------------
    def setup(self, *, update: bool = False) -> ConfigsReport:
        """Create the review annotation configs and assign them to the project."""
        report = ensure_annotation_configs(self.client, self.project, self.options, update=update)
        self._project_id = report.project_id
        return report

    # -- reading the queue ------------------------------------------------------------------
    def _samples(self, reviewed: bool | None, limit: int | None) -> list[ReviewSample]:
        out: list[ReviewSample] = []
        after: tuple[datetime, str] | None = None
        while limit is None or len(out) < limit:
            page = 500 if limit is None else min(500, limit - len(out))
            rows = self.store.list_review_samples(
                self.project, sampled=True, reviewed=reviewed, limit=page, after=after
            )
            out.extend(rows)
            if len(rows) < page:
                break
            after = (rows[-1].due_at, rows[-1].request_id)
        return out

    def review_url(self) -> str | None:
        """The project's span list in the Phoenix UI, filtered to spans awaiting review
        (:data:`AWAITING_REVIEW_FILTER`); ``None`` if Phoenix is unreachable or the
        project does not exist yet."""
        try:
            if self._project_id is None:
                found = self.client.get_project(self.project)
                self._project_id = None if found is None else str(found["id"])
        except PhoenixError:
            return None
        if self._project_id is None:
            return None
        return self.client.spans_url(self._project_id, AWAITING_REVIEW_FILTER)

    def pending(self, limit: int = 50, *, details: bool = True) -> PendingItems:
        """Sampled, unreviewed items, oldest due first; ``.url`` opens them in Phoenix.

        With ``details`` the trace's input/output, tool calls and UI link are read from
        Phoenix (one request per 50 traces); if Phoenix is unreachable the items come
        without them (and with a ``/redirects/spans/<id>`` link).
        """
        now = self.clock()
        samples = self._samples(False, limit)
        traces: dict[str, list[dict[str, Any]]] = {}
        if details and samples:
            traces = self._trace_spans([s.trace_id for s in samples if s.trace_id])
        items = PendingItems()
        for s in samples:
            spans = traces.get(s.trace_id or "", [])
            items.append(self._item(s, spans, now))
        if details:
            items.url = self.review_url()
        return items

    def _trace_spans(self, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        ids = sorted(set(trace_ids))
        try:
            if self._project_id is None:
                found = self.client.get_project(self.project)
                self._project_id = None if found is None else str(found["id"])
            for start in range(0, len(ids), _TRACE_CHUNK):
                chunk = ids[start : start + _TRACE_CHUNK]
                for span in self.client.spans(self.project, trace_ids=chunk):
                    out.setdefault(span["context"]["trace_id"], []).append(span)
        except PhoenixError as exc:
            logger.warning("hitl_langgraph review: no trace details from Phoenix: %s", exc)
        return out

    def _item(self, s: ReviewSample, spans: list[dict[str, Any]], now: datetime) -> ReviewItem:
        root = next((sp for sp in spans if not sp.get("parent_id")), None)
        tools = sorted(
            (sp for sp in spans if sp.get("span_kind") == "TOOL"), key=lambda sp: sp["start_time"]
        )
        own = next((sp for sp in spans if sp["context"]["span_id"] == s.span_id), None)
        url = None
        if s.trace_id and self._project_id and own is not None:
            url = self.client.trace_url(self._project_id, s.trace_id, own.get("id") or None)
        elif s.span_id:
            url = self.client.span_redirect_url(s.span_id)
        attrs = (root or {}).get("attributes") or {}
        return ReviewItem(
            sample=s,
            overdue=s.due_at < now,
            age_seconds=(now - s.decided_at).total_seconds(),
            input=attrs.get("input.value"),
            output=attrs.get("output.value"),
            tool_calls=[
                ToolCall(
                    name=sp["name"],
                    span_id=sp["context"]["span_id"],
                    input=(sp.get("attributes") or {}).get("input.value"),
                    output=(sp.get("attributes") or {}).get("output.value"),
                    status=str(sp.get("status_code") or ""),
                )
                for sp in tools
            ],
            url=url,
        )

    def sla(self) -> SlaReport:
        """Pending and past-due counts, and the age of the oldest unreviewed item."""
        now = self.clock()
        st = self.store.review_stats(self.project, now=now)
        oldest = st.oldest_pending_at
        return SlaReport(
            pending=st.pending,
            past_due=st.past_due,
            oldest_age_seconds=None if oldest is None else (now - oldest).total_seconds(),
            oldest_pending_at=oldest,
            next_due_at=st.next_due_at,
            sampled=st.sampled,
            reviewed=st.reviewed,
        )

    # -- writing verdicts -------------------------------------------------------------------
    def submit(
        self,
        span_id: str,
        verdict: str,
        *,
        reviewer: str,
        explanation: str | None = None,
        guidance: str | None = None,
    ) -> ReviewRecord:
        """Record a reviewer's verdict on a span and mirror it to Phoenix.

        The label is checked against the verdict config and the reviewer name against
        the identifier rules **before** anything is written. The verdict is stored (and
        closes the item) and spooled in one transaction, then sent if Phoenix answers.

        A span the store does not know (no sampled run) is looked up in Phoenix first:
        if Phoenix answers that the project or the span does not exist, nothing is
        written (a typo would otherwise be retried forever). If Phoenix is unreachable
        the verdict is stored and spooled as usual.

        Raises:
            InvalidVerdict: Unknown label, or an unusable reviewer name.
            ConfigurationError: ``span_id`` is not 16 hex digits.
            UnknownSpan, UnknownProject: Phoenix holds no such span / project.
        """
        score = self.options.check_verdict(verdict)
        identifier = human_identifier(reviewer)
        if self.required_roles:
            mapped = self.reviewers.by_name(reviewer)
            roles = mapped.roles if mapped is not None else frozenset()
            if not roles & self.required_roles:
                raise NotAuthorized(
                    f"reviewer {reviewer!r} ({', '.join(sorted(roles)) or 'no roles'}) may not "
                    f"give verdicts here: one of {sorted(self.required_roles)} is required "
                    "(`hitl review users add NAME --role ROLE`)"
                )
        span = span_id.strip().lower() if isinstance(span_id, str) else ""
        if not _SPAN_ID.match(span):
            raise ConfigurationError(
                f"span id {span_id!r} is not an OpenTelemetry span id (16 hex digits); "
                "take it from ReviewQueue.pending() or `hitl review pending`"
            )
        now = self.clock().replace(microsecond=0)  # Phoenix keeps whole seconds
        found = self.store.list_review_samples(
            self.project, sampled=None, reviewed=None, span_ids=[span], limit=1
        )
        sample = found[0] if found else None
        if sample is None:
            self._check_span(span)
        request_id = sample.request_id if sample else None
        meta = {"request_id": request_id, "reviewer": reviewer, "via": "hitl-langgraph"}
        entries = [
            Spool.entry(
                project=self.project,
                span_id=span,
                name=self.options.verdict_name,
                identifier=identifier,
                annotator_kind="HUMAN",
                result={"label": verdict, "score": score, "explanation": explanation},
                metadata=meta,
                now=now,
                request_id=request_id,
            )
        ]
        if guidance:
            entries.append(
                Spool.entry(
                    project=self.project,
                    span_id=span,
                    name=self.options.guidance_name,
                    identifier=identifier,
                    annotator_kind="HUMAN",
                    result={"explanation": guidance},
                    metadata=meta,
                    now=now,
                    request_id=request_id,
                )
            )
        if sample is not None and sample.reviewed_at is None and sample.span_id:
            entries.append(review_request_entry(sample, now=now, state="reviewed"))
        record = replace(
            self._record(span, self.options.verdict_name, identifier, now, sample),
            label=verdict,
            score=score,
            explanation=explanation,
        )
        stored, _ = self.store.put_review(record, closes=True, outbox=entries)
        if guidance:
            note = self._record(span, self.options.guidance_name, identifier, now, sample)
            self.store.put_review(replace(note, explanation=guidance))
        if self.mirror_on_submit:
            try:
                self.spool.sync()
            except Exception:  # the verdict is safe in the store; sync() retries later
                logger.exception("hitl_langgraph review: mirroring the verdict failed")
        return stored

    def _reviewer(self, a: dict[str, Any], kind: str) -> tuple[str | None, frozenset[str]]:
        """Who made annotation ``a``: the mapped reviewer of its Phoenix user, the
        ``human:<name>`` of an API verdict, or ``anonymous`` (UI, auth off)."""
        identifier = str(a.get("identifier") or "")
        user_id = a.get("user_id")
        source = str(a.get("source") or "")
        if identifier.startswith("human:"):
            name = identifier[len("human:") :]
            mapped = self.reviewers.by_name(name)
            return name, mapped.roles if mapped is not None else frozenset()
        if identifier.startswith("px-app:") or (source == "APP" and user_id):
            mapped = self.reviewers.by_user_id(str(user_id) if user_id else None)
            if mapped is not None:
                return mapped.name, mapped.roles
            return reviewer_of(a), frozenset()
        if kind == "HUMAN" and not identifier:
            return ANONYMOUS, frozenset()
        return reviewer_of(a), frozenset()

    def _check_span(self, span: str) -> None:
        try:
            if self.client.get_project(self.project) is None:
                raise UnknownProject(
                    f"Phoenix has no project {self.project!r}; nothing was recorded. "
                    f"Existing projects: {', '.join(self._project_names()) or '(none)'}",
                    projects=tuple(self._project_names()),
                )
            if self.client.find_span(self.project, span) is None:
                raise UnknownSpan(
                    f"Phoenix project {self.project!r} has no span {span}; nothing was "
                    "recorded. Take span ids from `hitl review pending` or the Phoenix UI"
                )
        except PhoenixUnavailable:
            logger.info("hitl_langgraph review: Phoenix unreachable; span %s not checked", span)
        except PhoenixNotFound as exc:  # the project holds no span yet
            raise UnknownSpan(
                f"Phoenix project {self.project!r} has no span {span} ({exc.detail}); "
                "nothing was recorded"
            ) from exc

    def _project_names(self) -> list[str]:
        try:
            return sorted(str(p["name"]) for p in self.client.list_projects())
        except PhoenixError:
            return []

    def _record(
        self, span: str, name: str, identifier: str, now: datetime, sample: ReviewSample | None
    ) -> ReviewRecord:
        return ReviewRecord(
            review_id=annotation_key(self.project, span, name, identifier),
            project=self.project,
            span_id=span,
            name=name,
            identifier=identifier,
            annotator_kind="HUMAN",
            source="hitl",
            created_at=now,
            updated_at=now,
            collected_at=now,
            reviewer=identifier[len("human:") :],
            request_id=sample.request_id if sample else None,
            trace_id=sample.trace_id if sample else None,
        )

    def sync(self, *, force: bool = False) -> SyncReport:
        """Send what the outbox holds for this project (see :meth:`Spool.sync`)."""
        return self.spool.sync(force=force)

    # -- collecting verdicts ------------------------------------------------------------------
    def collect(self, *, include_reviewed: bool = False) -> CollectReport:
        """Pull verdicts and guidance on sampled spans from Phoenix into the store.

        Re-reads the annotations of every unreviewed item (and, with
        ``include_reviewed``, of reviewed ones too, to pick up later edits). Running it
        again stores nothing new. A machine (LLM/CODE) annotation that replaced a human
        one under the same Phoenix key is stored next to the human verdict, not over it.

        Raises:
            PhoenixUnavailable: Phoenix cannot be reached (nothing changed).
        """
        report = CollectReport()
        samples = [s for s in self._samples(None if include_reviewed else False, None) if s.span_id]
        by_span: dict[str, ReviewSample] = {s.span_id: s for s in samples if s.span_id}
        report.spans = len(by_span)
        if not by_span:
            return report
        names = [self.options.verdict_name, self.options.guidance_name]
        annotations = self.client.span_annotations(self.project, list(by_span), names=names)
        now = self.clock()
        for a in sorted(annotations, key=lambda a: str(a.get("updated_at"))):
            report.annotations += 1
            self._collect_one(a, by_span, now, report)
        if report.closed:  # review_request pending -> reviewed in Phoenix now, no `hitl sync`
            try:
                self.spool.sync(force=True)
            except Exception:  # stays in the outbox; the next sync sends it
                logger.exception("hitl_langgraph review: mirroring the review state failed")
        return report

    def _collect_one(
        self,
        a: dict[str, Any],
        by_span: dict[str, ReviewSample],
        now: datetime,
        report: CollectReport,
    ) -> None:
        span, name = str(a["span_id"]), str(a["name"])
        identifier, kind = str(a.get("identifier") or ""), str(a.get("annotator_kind"))
        sample = by_span.get(span)
        result = a.get("result") or {}
        review_key = annotation_key(self.project, span, name, identifier)
        reviewer, roles = self._reviewer(a, kind)
        meta = dict(a.get("metadata") or {})
        authorized = not self.required_roles or bool(roles & self.required_roles)
        if kind == "HUMAN":
            meta["hitl_reviewer_roles"] = sorted(roles)
            if not authorized:
                meta["hitl_unauthorized"] = (
                    f"{reviewer or ANONYMOUS} holds none of {sorted(self.required_roles)}"
                )
        review = ReviewRecord(
            review_id=review_key,
            project=self.project,
            span_id=span,
            name=name,
            identifier=identifier,
            annotator_kind=kind,
            source=str(a.get("source") or "API"),
            created_at=parse_time(a.get("created_at"), now),
            updated_at=parse_time(a.get("updated_at"), now),
            collected_at=now,
            label=result.get("label"),
            score=result.get("score"),
            explanation=result.get("explanation"),
            reviewer=reviewer,
            request_id=sample.request_id if sample else None,
            trace_id=sample.trace_id if sample else None,
            phoenix_id=a.get("id"),
            metadata=meta,
        )
        if kind != "HUMAN":
            existing = [
                r
                for r in self.store.list_reviews(self.project, span_id=span, name=name)
                if r.review_id == review.review_id and r.annotator_kind == "HUMAN"
            ]
            if existing:  # Phoenix replaced a human verdict: keep both here
                key = annotation_key(self.project, span, name, f"{identifier}\x00{kind}")
                review = replace(review, review_id=key)
        valid = name != self.options.verdict_name or review.label in self.options.labels
        if not valid:
            report.invalid += 1
            logger.warning(
                "hitl_langgraph review: verdict %r on span %s is not one of %s; stored, "
                "but the item stays open",
                review.label,
                span,
                list(self.options.labels),
            )
        if not authorized and kind == "HUMAN" and name == self.options.verdict_name:
            report.unauthorized += 1
            logger.warning(
                "hitl_langgraph review: verdict on span %s by %s not counted: %s",
                span, reviewer or ANONYMOUS, meta["hitl_unauthorized"],
            )  # fmt: skip
        closes = valid and authorized and kind == "HUMAN" and name == self.options.verdict_name
        outbox = []
        if closes and sample is not None and sample.reviewed_at is None and sample.span_id:
            outbox.append(review_request_entry(sample, now=now, state="reviewed"))
        _, changed = self.store.put_review(review, closes=closes, outbox=outbox)
        if changed:
            report.changed += 1
            report.protected += int(review.review_id != review_key)
        else:
            report.unchanged += 1
        if closes and sample is not None and sample.reviewed_at is None:
            report.closed += 1
            by_span[span] = replace(sample, reviewed_at=review.updated_at)
