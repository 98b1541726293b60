"""Gate events as OpenInference GUARDRAIL spans.

:class:`GateSpanRecorder` is a :data:`~hitl_langgraph.gates.events.GateObserver`: give it to the
gate engine and every :class:`~hitl_langgraph.gates.events.GateEvent` becomes one span named
``gate <tool> → <route> (<kind>)``. Inside a traced LangGraph run the span nests under
the node's span; a ``decided`` span links back to the span where the run paused.

So that a reviewer scanning Phoenix's span list (root spans by default) sees which runs
were gated, the recorder also renames the run's still-open root span to
``<name> · gate <tool> → <route>`` and sets ``hitl.route``, ``hitl.review_state`` and
``hitl.action.tool`` on it (needs :class:`RootSpanTracker` on the provider, which
``setup_tracing`` adds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, cast

from ..errors import missing_dependency
from ..policy.action import canonical_json

try:
    from openinference.instrumentation import OITracer, TraceConfig
    from opentelemetry import context as context_api
    from opentelemetry import trace as trace_api
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
    from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_dependency("opentelemetry-api", "tracing", exc) from exc

from . import attributes as A

if TYPE_CHECKING:
    from ..gates.events import GateEvent


class TracingHandle(Protocol):
    """What the recorder needs of :class:`~hitl_langgraph.tracing.TracingHandle`.

    (A protocol, so this module does not import ``setup``, which imports it.)
    """

    @property
    def tracer_provider(self) -> trace_api.TracerProvider: ...

    @property
    def trace_config(self) -> TraceConfig: ...


def _is_handle(obj: object) -> TypeGuard[TracingHandle]:
    return hasattr(obj, "trace_config") and hasattr(obj, "tracer_provider")


__all__ = [
    "GateSpanRecorder",
    "RootSpanTracker",
    "current_span",
    "current_trace_ids",
    "review_state_of",
    "span_name",
    "tracing_suppressed",
]

logger = logging.getLogger("hitl_langgraph.tracing")

_TRACER_NAME = "hitl_langgraph.gate"


def tracing_suppressed() -> bool:
    """True inside OpenInference's ``suppress_tracing()`` (or OTel's suppression key)."""
    return bool(context_api.get_value(_SUPPRESS_INSTRUMENTATION_KEY))


def _langchain_span() -> trace_api.Span | None:
    """The OpenInference span of the LangChain run we are inside, if instrumented.

    OpenInference's LangChain tracer does not attach its spans to the OpenTelemetry
    context (on purpose), so ``trace.get_current_span()`` inside a node is *not* the
    node span. The instrumentor can look it up from LangChain's run context instead.
    """
    try:
        from openinference.instrumentation.langchain import (
            LangChainInstrumentor,
            get_current_span,
        )
    except ImportError:
        return None
    if not LangChainInstrumentor().is_instrumented_by_opentelemetry:
        return None
    span = get_current_span()
    if span is None or not span.get_span_context().is_valid:
        return None
    return span


def current_span() -> trace_api.Span | None:
    """The innermost active span: the LangChain node span or the OTel current span.

    When both exist, the one that started later is the inner one (a span you opened
    inside a node wins over the node; the node wins over a span around ``invoke``).

    Returns:
        The span, or ``None`` outside any span.
    """
    candidates = [
        s
        for s in (trace_api.get_current_span(), _langchain_span())
        if s is not None and s.get_span_context().is_valid
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda s: getattr(s, "start_time", None) or 0)


def current_trace_ids() -> tuple[str, str] | None:
    """Hex trace id and span id of :func:`current_span`, for linking back later.

    The gate engine stores them in ``GateEvent.extra`` under ``"paused_trace_id"`` and
    ``"paused_span_id"`` when a run pauses; the ``decided`` span then links to them.

    Returns:
        ``(trace_id, span_id)`` as 32 and 16 hex digits, or ``None`` outside any span.
    """
    try:
        span = current_span()
        if span is None:
            return None
        ctx = span.get_span_context()
        return trace_api.format_trace_id(ctx.trace_id), trace_api.format_span_id(ctx.span_id)
    except Exception:
        logger.exception("hitl_langgraph: reading the current trace ids failed")
        return None


_ROUTE_RANK = {"auto": 0, "review": 1, "approve": 2, "deny": 3}


class RootSpanTracker(SpanProcessor):
    """Keeps the open root span of each trace, so a gate can label its run's root.

    OpenInference's LangChain root span (``LangGraph``) is still open while a gate in
    the run fires; the recorder renames it and sets ``hitl.*`` attributes on it. Bounded:
    at most ``max_open`` roots are remembered (the oldest are forgotten).
    """

    def __init__(self, max_open: int = 10_000) -> None:
        self._roots: dict[int, Span] = {}
        self._max_open = max_open
        _trackers.append(self)

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if span.parent is None or span.parent.is_remote:
            ctx = span.get_span_context()
            if len(self._roots) >= self._max_open:
                self._roots.pop(next(iter(self._roots)), None)
            self._roots[ctx.trace_id] = span

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is not None and self._roots.get(ctx.trace_id) is span:
            self._roots.pop(ctx.trace_id, None)

    def root(self, trace_id: int) -> Span | None:
        return self._roots.get(trace_id)

    def shutdown(self) -> None:
        self._roots.clear()
        if self in _trackers:
            _trackers.remove(self)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_trackers: list[RootSpanTracker] = []


def _open_root(trace_id: int) -> Span | None:
    for t in list(_trackers):
        root = t.root(trace_id)
        if root is not None:
            return root
    return None


def span_name(event: GateEvent) -> str:
    """``gate <tool> → <route> (<kind>)``: what the span list shows for a gate span."""
    return f"gate {event.tool} → {event.route} ({event.kind})"


def review_state_of(event: GateEvent) -> str:
    """What a reviewer needs to know: ``awaiting_approval``, ``decided``, ``denied``,
    ``sampled`` (picked for asynchronous review), or ``none``."""
    if event.kind == "requested":
        return "awaiting_approval"
    if event.kind == "decided":
        return "decided"
    if event.kind == "denied" or event.route == "deny":
        return "denied"
    if event.sampled_for_review:
        return "sampled"
    if event.route == "review":
        return "review_route"
    return "none"


def _label_root(event: GateEvent, span: trace_api.Span | None) -> None:
    """Rename the run's open root span and set the ``hitl.*`` list attributes on it."""
    if span is None:
        return
    root = _open_root(span.get_span_context().trace_id)
    if root is None or not root.is_recording():
        return
    attrs = root.attributes or {}
    prev = attrs.get(A.HITL_ROUTE)
    if isinstance(prev, str) and _ROUTE_RANK.get(prev, -1) > _ROUTE_RANK.get(event.route, -1):
        return  # keep the riskiest gate of the run on the root
    base = attrs.get(_ROOT_BASE_NAME) or root.name
    root.set_attribute(_ROOT_BASE_NAME, str(base))
    root.update_name(f"{base} · gate {event.tool} → {event.route}")
    root.set_attributes(
        {
            A.HITL_ROUTE: event.route,
            A.HITL_ACTION_TOOL: event.tool,
            A.HITL_REVIEW_STATE: review_state_of(event),
            A.HITL_REQUEST_ID: event.request_id,
        }
    )


_ROOT_BASE_NAME = "hitl.root.name"


class GateSpanRecorder:
    """Gate observer that writes one OpenInference GUARDRAIL span per gate event.

    Never raises (failures are logged). Writes nothing under ``suppress_tracing()``.
    The span's input is the proposed tool call, its output the outcome; both obey the
    ``TraceConfig`` masking (``hide_inputs``/``hide_outputs``).

    Args:
        tracer_provider: A :class:`~hitl_langgraph.tracing.TracingHandle`, an
            OpenTelemetry tracer provider, or ``None`` for the global provider.
        record_args: Put the tool arguments in ``input.value``. Turn off when
            arguments may hold secrets and no ``TraceConfig`` masks inputs.
        trace_config: Masking config; defaults to the handle's, else ``TraceConfig()``.
    """

    def __init__(
        self,
        tracer_provider: TracingHandle | trace_api.TracerProvider | None = None,
        *,
        record_args: bool = True,
        trace_config: TraceConfig | None = None,
    ) -> None:
        if _is_handle(tracer_provider):
            config = trace_config or tracer_provider.trace_config
            provider: trace_api.TracerProvider = tracer_provider.tracer_provider
        else:
            config = trace_config or TraceConfig()
            provider = cast(
                trace_api.TracerProvider, tracer_provider or trace_api.get_tracer_provider()
            )
        self._record_args = record_args
        self._tracer = cast(
            trace_api.Tracer,
            OITracer(provider.get_tracer(_TRACER_NAME), config=config),
        )

    def __call__(self, event: GateEvent) -> None:
        """Emit the span for ``event``; never raises."""
        try:
            if tracing_suppressed():
                return
            self._emit(event)
        except Exception:
            logger.exception(
                "hitl_langgraph: recording the %s span for %s failed",
                getattr(event, "kind", "?"),
                getattr(event, "request_id", "?"),
            )

    def _emit(self, event: GateEvent) -> None:
        parent = current_span()
        context = trace_api.set_span_in_context(parent) if parent is not None else None
        start = _to_ns(event.at)
        span = self._tracer.start_span(
            span_name(event),
            context=context,
            attributes=span_attributes(event, record_args=self._record_args),
            links=_links(event),
            start_time=start,
        )
        if event.error:
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=max(start, time.time_ns()))
        try:
            _label_root(event, parent if parent is not None else span)
        except Exception:
            logger.exception("hitl_langgraph: labelling the root span failed")


def span_attributes(event: GateEvent, *, record_args: bool = True) -> dict[str, Any]:
    """The attributes of the span for ``event`` (``None`` values left out)."""
    attrs: dict[str, Any] = {
        A.OPENINFERENCE_SPAN_KIND: A.GUARDRAIL,
        A.HITL_EVENT_KIND: event.kind,
        A.HITL_REQUEST_ID: event.request_id,
        A.HITL_NODE: event.node,
        A.HITL_ACTION_TOOL: event.tool,
        A.HITL_ACTION_DIGEST: event.digest,
        A.HITL_RISK_SCORE: float(event.score),
        A.HITL_RISK_REASONS: [str(r) for r in event.reasons],
        A.HITL_ROUTE: event.route,
        A.HITL_REVIEW_STATE: review_state_of(event),
        A.HITL_POLICY_VERSION: event.policy_version,
        A.SESSION_ID: event.thread_id,
        A.USER_ID: event.user_id,
        A.HITL_DECISION: event.decision,
        A.HITL_REVIEWER_ID: event.reviewer,
        A.HITL_WAIT_SECONDS: event.waited_seconds,
        A.HITL_REVIEW_SAMPLED: event.sampled_for_review,
        A.HITL_ERROR: event.error,
        A.OUTPUT_VALUE: canonical_json(_outcome(event)),
        A.OUTPUT_MIME_TYPE: A.JSON_MIME_TYPE,
    }
    if event.reviewer_roles:
        attrs[A.HITL_REVIEWER_ROLES] = [str(r) for r in event.reviewer_roles]
    if record_args:
        attrs[A.INPUT_VALUE] = canonical_json({"tool": event.tool, "args": event.args})
        attrs[A.INPUT_MIME_TYPE] = A.JSON_MIME_TYPE
    if event.extra:
        attrs[A.METADATA] = canonical_json(event.extra)
    paused = _paused_ids(event)
    if paused is not None:
        attrs[A.HITL_PAUSED_TRACE_ID], attrs[A.HITL_PAUSED_SPAN_ID] = paused
    return {k: v for k, v in attrs.items() if v is not None}


def _outcome(event: GateEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"event": event.kind, "route": event.route, "score": event.score}
    for name in ("decision", "reviewer", "waited_seconds", "error"):
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    return out


def _paused_ids(event: GateEvent) -> tuple[str, str] | None:
    extra: Mapping[str, Any] = event.extra or {}
    trace_hex, span_hex = extra.get(A.PAUSED_TRACE_ID_KEY), extra.get(A.PAUSED_SPAN_ID_KEY)
    if not (isinstance(trace_hex, str) and isinstance(span_hex, str)):
        return None
    try:
        if int(trace_hex, 16) == 0 or int(span_hex, 16) == 0:
            return None
    except ValueError:
        logger.warning(
            "hitl_langgraph: ignoring malformed paused trace ids %r/%r", trace_hex, span_hex
        )
        return None
    return trace_hex.lower(), span_hex.lower()


def _links(event: GateEvent) -> list[Link]:
    if event.kind != "decided":
        return []
    paused = _paused_ids(event)
    if paused is None:
        return []
    ctx = SpanContext(
        trace_id=int(paused[0], 16),
        span_id=int(paused[1], 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return [Link(ctx, attributes={A.HITL_EVENT_KIND: "paused"})]


def _to_ns(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return int(at.timestamp() * 1_000_000_000)
