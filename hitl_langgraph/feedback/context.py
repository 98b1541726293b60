"""What a review is *about*: the action, the node whose prompt proposed it, the input.

A verdict arrives as an annotation on a span. To turn it into guidance for the right
prompt, the loop needs the action reviewed (from the approval store, via the request id)
and the graph node whose model *proposed* it. That is not the node that executed it:
``GatedToolNode`` runs in ``tools``, the mistake was made by the model in ``agent``.

* :class:`StoreContextResolver` uses the store only: the review's request id (or the
  review sample recorded for its span), the request's tool and args, and a
  ``node_of`` mapping you give (``{"transfer_funds": "payments"}`` or a callable).
* :class:`PhoenixContextResolver` adds the trace: it reads the reviewed span and its
  trace over Phoenix's REST API, takes the request id from the gate span
  (``hitl.request.id``), finds the LLM span whose output holds the tool call
  (``llm.output_messages.*.tool_calls.*.tool_call.id`` = the request's tool call id)
  and takes ``metadata.langgraph_node`` and the last user message from it. A review
  put on the LLM span itself resolves too.

Resolved contexts are cached per review id (the trace does not change once ingested).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Protocol, Union

from ..errors import HitlError
from ..policy.action import canonical_json
from ..store.base import ApprovalStore, RequestFilter
from ..store.records import ApprovalRecord
from ..store.review_records import ReviewRecord

__all__ = [
    "ContextResolver",
    "PhoenixContextResolver",
    "ReviewContext",
    "StoreContextResolver",
    "describe_action",
]

logger = logging.getLogger("hitl_langgraph.feedback")

_OUT_CALL_ID = re.compile(
    r"^llm\.output_messages\.(\d+)\.message\.tool_calls\.(\d+)\.tool_call\.id$"
)
_IN_MSG = re.compile(r"^llm\.input_messages\.(\d+)\.message\.(role|content)$")
_REQUEST_ATTR = "hitl.request.id"
_NODE_ATTR = "metadata.langgraph_node"


@dataclass(frozen=True)
class ReviewContext:
    """The resolved subject of one review (every field may be unknown)."""

    request_id: str | None = None
    node: str | None = None
    """The graph node whose prompt proposed the action (the scope guidance lands in)."""
    tool: str | None = None
    args: Mapping[str, Any] | None = None
    input: str | None = None
    """The user input the agent was answering, for the corrected example."""
    tenant: str | None = None
    trace_id: str | None = None
    executed: bool | None = None
    sources: tuple[str, ...] = field(default=())
    """Where each part came from (``store``, ``sample``, ``phoenix``, ``mapping``)."""
    complete: bool = True
    """``False`` when a source that should have answered did not (the trace is not in
    Phoenix yet, or Phoenix is down): the loop waits a while before using it."""


class ContextResolver(Protocol):
    """Resolves a collected review to its :class:`ReviewContext`."""

    def resolve(self, review: ReviewRecord) -> ReviewContext: ...


def describe_action(tool: str | None, args: Mapping[str, Any] | None, limit: int = 200) -> str:
    """``tool(k=v, ...)`` for the corrected example (bounded)."""
    if tool is None:
        return ""
    inner = ", ".join(f"{k}={canonical_json(v)}" for k, v in sorted((args or {}).items()))
    text = f"{tool}({inner})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


NodeOf = Union[Callable[[ApprovalRecord], Optional[str]], Mapping[str, str]]


class StoreContextResolver:
    """Resolve from the approval store (and an optional tool-to-node mapping).

    Args:
        store: The approval store.
        node_of: The node that proposes each tool: a mapping ``tool -> node`` or a
            callable on the :class:`ApprovalRecord`. Without it (and without a
            ``proposed_by``/``node`` in the request's metadata) guidance is scoped to
            the tool only.
        tenant_of: Reads the tenant of a request (default: ``metadata["tenant"]``).
    """

    def __init__(
        self,
        store: ApprovalStore,
        *,
        node_of: NodeOf | None = None,
        tenant_of: Callable[[ApprovalRecord], str | None] | None = None,
    ) -> None:
        self.store = store
        self.node_of = node_of
        self.tenant_of = tenant_of
        self._cache: dict[str, ReviewContext] = {}
        self._lock = threading.Lock()

    def resolve(self, review: ReviewRecord) -> ReviewContext:
        """The context of ``review`` (cached by review id and content)."""
        key = f"{review.review_id}:{review.span_id}:{review.request_id}"
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        ctx = self._resolve(review)
        if ctx.complete:  # an incomplete one is resolved again next time
            with self._lock:
                self._cache[key] = ctx
        return ctx

    def _resolve(self, review: ReviewRecord) -> ReviewContext:
        request_id, sources = self._request_id(review)
        return self._from_request(review, request_id, sources)

    def _request_id(self, review: ReviewRecord) -> tuple[str | None, list[str]]:
        if review.request_id:
            return review.request_id, ["review"]
        samples = self.store.list_review_samples(
            None, sampled=None, reviewed=None, span_ids=[review.span_id], limit=1
        )
        if samples:
            return samples[0].request_id, ["sample"]
        return None, []

    def _from_request(
        self,
        review: ReviewRecord,
        request_id: str | None,
        sources: list[str],
        *,
        node: str | None = None,
        input_text: str | None = None,
        trace_id: str | None = None,
    ) -> ReviewContext:
        rec = self.store.get_request(request_id) if request_id else None
        if rec is None:
            return ReviewContext(
                request_id=request_id,
                node=node,
                input=input_text,
                trace_id=trace_id or review.trace_id,
                tenant=_str(review.metadata.get("tenant")),
                sources=tuple(sources),
            )
        sources.append("store")
        if node is None:
            node = self._mapped_node(rec)
            if node is not None:
                sources.append("mapping")
        execution = self.store.get_execution(rec.request_id)
        tenant = self.tenant_of(rec) if self.tenant_of else _str(rec.metadata.get("tenant"))
        return ReviewContext(
            request_id=rec.request_id,
            node=node,
            tool=rec.tool,
            args=dict(rec.args),
            input=input_text or _str(rec.metadata.get("input")),
            tenant=tenant or _str(review.metadata.get("tenant")),
            trace_id=trace_id or review.trace_id,
            # route review runs without a journal row; every other route journals its run
            executed=rec.status == "review" if execution is None else execution.state == "done",
            sources=tuple(sources),
        )

    def _mapped_node(self, rec: ApprovalRecord) -> str | None:
        explicit = _str(rec.metadata.get("proposed_by"))
        if explicit:
            return explicit
        if self.node_of is None:
            return None
        if callable(self.node_of):
            return self.node_of(rec)
        return self.node_of.get(rec.tool)


class PhoenixContextResolver(StoreContextResolver):
    """Resolve with the trace in Phoenix as well (see the module docstring).

    Args:
        store: The approval store.
        phoenix: A :class:`~hitl_langgraph.review.PhoenixClient` for the server.
        project: The Phoenix project the reviewed spans are in.
        node_of: Fallback tool-to-node mapping when the trace does not tell.
        tenant_of: As for :class:`StoreContextResolver`.
    """

    def __init__(
        self,
        store: ApprovalStore,
        phoenix: Any,
        project: str,
        *,
        node_of: NodeOf | None = None,
        tenant_of: Callable[[ApprovalRecord], str | None] | None = None,
    ) -> None:
        super().__init__(store, node_of=node_of, tenant_of=tenant_of)
        self.phoenix = phoenix
        self.project = project

    def _resolve(self, review: ReviewRecord) -> ReviewContext:
        try:
            spans = self._trace(review)
        except HitlError as exc:  # the review client's PhoenixError family
            logger.warning(
                "hitl_langgraph: reading the trace of %s failed: %s", review.span_id, exc
            )
            return replace(super()._resolve(review), complete=False)
        target = spans.get(review.span_id.lower())
        if target is None:  # not ingested yet (or deleted)
            return replace(super()._resolve(review), complete=False)
        request_id, sources = self._request_id_from(review, target, spans)
        trace_id = str(target["context"]["trace_id"])
        rec = self.store.get_request(request_id) if request_id else None
        llm: dict[str, Any] | None = None
        if rec is not None and rec.tool_call_id:
            llm = _proposing_llm(spans.values(), rec.tool_call_id)
        elif rec is None and target.get("span_kind") == "LLM":
            llm = target
            rec = self._request_from_llm(target)
            if rec is not None:
                request_id = rec.request_id
                sources.append("phoenix")
        node = _str((llm or {}).get("attributes", {}).get(_NODE_ATTR)) if llm else None
        if node is None and rec is None:
            node = _str(target.get("attributes", {}).get(_NODE_ATTR))
        if node is not None:
            sources.append("phoenix")
        return self._from_request(
            review,
            request_id,
            sources,
            node=node,
            input_text=_last_user_message(llm or target),
            trace_id=trace_id,
        )

    def _trace(self, review: ReviewRecord) -> dict[str, dict[str, Any]]:
        trace_id = review.trace_id
        if not trace_id:
            found = self.phoenix.spans(self.project, span_ids=[review.span_id], limit=10)
            if not found:
                return {}
            trace_id = found[0]["context"]["trace_id"]
        spans = self.phoenix.spans(self.project, trace_ids=[trace_id])
        return {str(s["context"]["span_id"]).lower(): s for s in spans}

    def _request_id_from(
        self, review: ReviewRecord, target: dict[str, Any], spans: dict[str, dict[str, Any]]
    ) -> tuple[str | None, list[str]]:
        request_id, sources = self._request_id(review)
        if request_id:
            return request_id, sources
        own = _str(target.get("attributes", {}).get(_REQUEST_ATTR))
        if own:
            return own, ["phoenix"]
        span_id = target["context"]["span_id"]
        for span in spans.values():  # a tool span: its gate spans are children
            if span.get("parent_id") == span_id:
                child = _str(span.get("attributes", {}).get(_REQUEST_ATTR))
                if child:
                    return child, ["phoenix"]
        return None, []

    def _request_from_llm(self, llm: dict[str, Any]) -> ApprovalRecord | None:
        attrs = llm.get("attributes", {})
        call_ids = [str(v) for k, v in attrs.items() if _OUT_CALL_ID.match(k)]
        thread = _str(attrs.get("session.id")) or _str(attrs.get("metadata.thread_id"))
        if len(call_ids) != 1 or thread is None:
            return None
        flt = RequestFilter(status=None, thread_id=thread)
        for rec in self.store.list_requests(flt, limit=1000):
            if rec.tool_call_id == call_ids[0]:
                return rec
        return None


def _proposing_llm(spans: Any, tool_call_id: str) -> dict[str, Any] | None:
    for span in spans:
        if span.get("span_kind") != "LLM":
            continue
        for key, value in span.get("attributes", {}).items():
            if _OUT_CALL_ID.match(key) and str(value) == tool_call_id:
                return dict(span)
    return None


def _last_user_message(span: dict[str, Any] | None) -> str | None:
    if span is None:
        return None
    attrs = span.get("attributes", {})
    messages: dict[int, dict[str, str]] = {}
    for key, value in attrs.items():
        m = _IN_MSG.match(key)
        if m:
            messages.setdefault(int(m.group(1)), {})[m.group(2)] = str(value)
    users = [
        messages[i].get("content") for i in sorted(messages) if messages[i].get("role") == "user"
    ]
    text = next((u for u in reversed(users) if u), None)
    if text is not None:
        return text
    raw = attrs.get("input.value")
    if isinstance(raw, str) and raw and not raw.lstrip().startswith(("{", "[")):
        return raw
    if isinstance(raw, str):
        try:
            json.loads(raw)
        except ValueError:
            return raw
    return None


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
