"""``setup_tracing``: send LangGraph and gate spans to Phoenix, with bounded failure modes.

Built only on the OpenTelemetry SDK, the OTLP/HTTP exporter and OpenInference's LangChain
instrumentor. It never imports ``phoenix``: with the Phoenix server package installed,
``import phoenix.otel`` alone costs about 7 s and 400 MB.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigurationError, missing_dependency
from ..gates import events as gate_events

try:
    from openinference.instrumentation import OITracer, TraceConfig
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_dependency("opentelemetry-sdk", "tracing", exc) from exc

from ._processor import BoundedSpanProcessor, TracingStats, _call_bounded
from .attributes import PROJECT_NAME
from .spool import DEFAULT_SPOOL_BYTES, SPOOL_DIR_ENV, SpanSpool, SpoolStats, http_poster

if TYPE_CHECKING:
    from .spans import GateSpanRecorder

__all__ = ["DEFAULT_ENDPOINT", "ENDPOINT_ENV", "TracingHandle", "setup_tracing"]

logger = logging.getLogger("hitl_langgraph.tracing")

DEFAULT_ENDPOINT = "http://127.0.0.1:6006"
ENDPOINT_ENV = "PHOENIX_COLLECTOR_ENDPOINT"
_TRACES_PATH = "/v1/traces"
_BATCH_DELAY = 1.0  # seconds between scheduled exports when batch=True


class TracingHandle:
    """What :func:`setup_tracing` returns: the provider plus bounded flush and shutdown.

    A handle whose setup failed is a no-op: its tracers make non-recording spans and
    every method returns immediately. After :meth:`shutdown`, spans made through its
    provider are dropped (and counted in :meth:`stats`).

    Attributes:
        project: The Phoenix project spans are filed under.
        endpoint: The OTLP/HTTP traces URL, or ``None`` when spans go to an injected
            exporter or provider.
        trace_config: The OpenInference masking config used by the instrumentation and
            by :meth:`tracer`.
        error: Why setup failed, for a no-op handle; ``None`` otherwise.
    """

    def __init__(
        self,
        *,
        provider: trace_api.TracerProvider,
        processor: BoundedSpanProcessor | None,
        project: str,
        endpoint: str | None,
        trace_config: TraceConfig,
        shutdown_timeout: float,
        instrumented: bool = False,
        error: str | None = None,
        gate_observers: Sequence[gate_events.GateObserver] = (),
    ) -> None:
        self._provider = provider
        self._processor = processor
        self.project = project
        self.endpoint = endpoint
        self.trace_config = trace_config
        self.error = error
        self._shutdown_timeout = shutdown_timeout
        self._instrumented = instrumented
        self._is_shutdown = error is not None
        self._lock = threading.Lock()
        self._gate_observers: tuple[gate_events.GateObserver, ...] = tuple(gate_observers)
        self._gates_registered = False
        self._tracker: Any = None
        self._spool: SpanSpool | None = None
        if not self._is_shutdown:
            atexit.register(self._at_exit)

    @property
    def gate_observers(self) -> tuple[gate_events.GateObserver, ...]:
        """The observers every gate in the process uses by default (empty with
        ``gates=False``): a :class:`GateSpanRecorder` plus the ``observers`` you gave."""
        return self._gate_observers

    def _register_gates(self) -> None:
        from .spans import current_trace_ids

        gate_events.set_default_observers(self._gate_observers, trace_ids=current_trace_ids)
        self._gates_registered = True

    @property
    def tracer_provider(self) -> trace_api.TracerProvider:
        """The provider spans go through (a no-op provider if setup failed)."""
        return self._provider

    @property
    def enabled(self) -> bool:
        """False if setup failed or the handle was shut down."""
        return not self._is_shutdown

    @property
    def instrumented(self) -> bool:
        """Whether this handle instrumented LangChain (and will uninstrument it)."""
        return self._instrumented

    def tracer(self, name: str, version: str | None = None) -> trace_api.Tracer:
        """An OpenInference tracer: honours ``suppress_tracing`` and ``trace_config``."""
        tracer = self._provider.get_tracer(name, version)
        return cast(trace_api.Tracer, OITracer(tracer, config=self.trace_config))

    def gate_recorder(self, *, record_args: bool = True) -> GateSpanRecorder:
        """A :class:`~hitl_langgraph.tracing.GateSpanRecorder` writing through this handle."""
        from .spans import GateSpanRecorder

        return GateSpanRecorder(self, record_args=record_args)

    def stats(self) -> TracingStats:
        """Span counts: exported, failed, dropped, queued (zeros without our processor)."""
        return self._processor.stats() if self._processor is not None else TracingStats()

    def spool_stats(self) -> SpoolStats:
        """The on-disk span spool: files waiting, spans spooled/re-sent/dropped."""
        return self._spool.stats() if self._spool is not None else SpoolStats()

    def resend_spool(self, timeout: float = 5.0) -> bool:
        """Re-send spooled spans now (it also happens by itself once exports succeed).

        Returns:
            True if the spool is empty afterwards.
        """
        if self._spool is None:
            return True
        self._spool.resend(deadline=time.monotonic() + timeout)
        return not self._spool.has_files()

    def force_flush(self, timeout: float = 2.0) -> bool:
        """Export everything queued, waiting at most ``timeout`` seconds.

        Returns:
            True if everything queued was exported in time.
        """
        if self._is_shutdown:
            return True
        if self._processor is not None:
            return self._processor.flush(timeout)
        provider = self._provider
        flush = getattr(provider, "force_flush", None)
        if flush is None:
            return True
        result: list[bool] = []
        done = _call_bounded(
            lambda: result.append(bool(flush(int(timeout * 1000)))), timeout, "force_flush"
        )
        return done and all(result)

    def shutdown(self, timeout: float = 2.0) -> bool:
        """Flush (within ``timeout`` seconds), stop exporting, uninstrument LangChain.

        Bounded even with the collector unreachable. An injected ``tracer_provider`` is
        not shut down (it is yours); only what this handle added to it is. Idempotent.

        Returns:
            True if no span was lost over the handle's lifetime.
        """
        with self._lock:
            if self._is_shutdown:
                return self.stats().lost == 0
            self._is_shutdown = True
        atexit.unregister(self._at_exit)
        if self._gates_registered:
            self._gates_registered = False
            if gate_events.default_observers() == self._gate_observers:
                gate_events.clear_default_observers()
        if self._instrumented:
            self._instrumented = False
            _uninstrument_langchain()
        ok = True
        deadline = time.monotonic() + timeout
        if self._processor is not None:
            ok = self._processor.close(timeout)
        # then the observers' own outboxes (review requests need their spans in Phoenix
        # first), within what is left of the same bound
        for obs in self._gate_observers:
            flush = getattr(obs, "flush", None)
            if callable(flush):
                left = max(0.0, deadline - time.monotonic())
                try:
                    ok = bool(flush(left)) and ok
                except Exception:
                    logger.exception("hitl_langgraph tracing: flushing %r failed", obs)
                    ok = False
        if self._tracker is not None:
            self._tracker.shutdown()
        _forget(self)
        return ok

    def _at_exit(self) -> None:
        try:
            self.shutdown(self._shutdown_timeout)
        except Exception:  # pragma: no cover - never fail interpreter exit
            logger.exception("hitl_langgraph tracing shutdown at exit failed")

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else f"disabled ({self.error or 'shut down'})"
        return f"TracingHandle(project={self.project!r}, endpoint={self.endpoint!r}, {state})"


@dataclass(frozen=True)
class _Key:
    project: str
    endpoint: str
    instrument_langchain: bool
    batch: bool
    max_queue_size: int
    export_timeout: float
    headers: tuple[tuple[str, str], ...]
    tracer_provider: object
    span_exporter: object
    trace_config: TraceConfig
    set_global: bool
    gates: bool
    observers: tuple[object, ...]
    spool: bool
    spool_dir: str | None
    spool_max_bytes: int


_registry_lock = threading.RLock()
_active: tuple[_Key, TracingHandle] | None = None


def _forget(handle: TracingHandle) -> None:
    global _active
    with _registry_lock:
        if _active is not None and _active[1] is handle:
            _active = None


def setup_tracing(
    project: str = "default",
    endpoint: str | None = None,
    *,
    instrument_langchain: bool = True,
    batch: bool = True,
    max_queue_size: int = 8192,
    export_timeout: float = 2.0,
    headers: Mapping[str, str] | None = None,
    tracer_provider: TracerProvider | None = None,
    span_exporter: SpanExporter | None = None,
    trace_config: TraceConfig | None = None,
    set_global: bool = False,
    gates: bool = True,
    observers: Sequence[gate_events.GateObserver] = (),
    spool: bool = True,
    spool_dir: str | os.PathLike[str] | None = None,
    spool_max_bytes: int = DEFAULT_SPOOL_BYTES,
) -> TracingHandle:
    """Trace LangGraph runs (and gate events) to Phoenix, without risking the app.

    Spans are exported by a :class:`~hitl_langgraph.tracing.BoundedSpanProcessor`: a
    bounded queue and a daemon thread, so ending a span never blocks on the network;
    ``force_flush``/``shutdown`` and process exit (an ``atexit`` hook calls
    ``shutdown(export_timeout)``) return within their timeout even when Phoenix is
    unreachable; lost spans are counted (:meth:`TracingHandle.stats`) and reported in
    rate-limited warnings.

    Calling it again with the same arguments returns the same handle. Calling it with
    different arguments **reconfigures**: the previous handle is shut down (bounded by
    its ``export_timeout``; spans still made through its provider are dropped and
    counted) and a new one is returned. This
    keeps notebooks and test suites simple; keep one handle per process in production.

    Runtime failures (an exporter or instrumentor that fails to start) are logged as a
    warning and give a no-op handle (``handle.enabled`` is False, ``handle.error`` says
    why); they never raise into your code. Invalid arguments raise.

    Args:
        project: Phoenix project; set as the ``openinference.project.name`` resource
            attribute, which is how Phoenix files spans.
        endpoint: Phoenix base URL or OTLP/HTTP traces URL. Defaults to the
            ``PHOENIX_COLLECTOR_ENDPOINT`` environment variable, else
            ``http://127.0.0.1:6006``. ``/v1/traces`` is appended when missing.
        instrument_langchain: Instrument LangChain/LangGraph with OpenInference's
            ``LangChainInstrumentor`` (process-wide; undone by ``shutdown``). If LangChain
            is already instrumented by someone else, it is left alone (with a warning).
        batch: Export in batches every second (True) or as soon as each span ends
            (False; still from the background thread).
        max_queue_size: Spans buffered while the collector is slow or down; beyond that
            they are dropped and counted.
        export_timeout: Seconds one export may take (HTTP timeout plus the exporter's
            retries); also the bound of the shutdown at interpreter exit.
        headers: Extra HTTP headers for the collector. Without them,
            ``PHOENIX_API_KEY`` (if set) is sent as a bearer token.
        tracer_provider: Use this SDK provider instead of creating one. Nothing is
            added to it unless ``span_exporter`` is given too, its resource is kept
            (``project`` is not applied) and ``shutdown`` leaves it running.
        span_exporter: Export to this exporter (for example an ``InMemorySpanExporter``
            in tests) instead of OTLP/HTTP; it still goes through the bounded processor,
            and ``shutdown`` does not shut it down (it is yours).
        trace_config: OpenInference ``TraceConfig`` (masking of inputs, outputs,
            messages); defaults to ``TraceConfig()``, which reads the ``OPENINFERENCE_*``
            environment variables.
        set_global: Also register the provider as the global OpenTelemetry provider
            (possible once per process). Off by default.
        gates: Turn asynchronous oversight on for **every gate in the process**: each
            gate event becomes a GUARDRAIL span, each pause stores the current trace ids
            (so the decision links back to the paused trace), and ``observers`` (say a
            :class:`~hitl_langgraph.review.ReviewSampler`) see every event, with no
            per-gate wiring. A gate keeps its own explicit observers (one of the same
            type replaces the default) and ``trace_ids``; ``GateEngine(tracing=False)``
            opts a gate out. ``shutdown`` removes the defaults.
        observers: More process-wide gate observers (see ``gates``). An observer with a
            ``flush(timeout)`` method is flushed by ``shutdown`` and at exit, after the
            spans and within the same bound: that is how a short script's review
            requests reach Phoenix before the process ends.
        spool: Keep spans the collector did not take (Phoenix down or restarting, or
            still queued at the shutdown deadline) in a bounded on-disk spool and
            re-send them once an export succeeds again, in this process or the next
            one tracing to the same project and endpoint. See ``TracingHandle.stats()``
            (``spooled``) and ``TracingHandle.spool_stats()``. For the OTLP exporter
            only, unless ``spool_dir`` is given (then an injected exporter's failures
            are spooled too, without re-sending).
        spool_dir: The spool's parent directory; defaults to ``HITL_SPAN_SPOOL_DIR``,
            else ``~/.cache/hitl_langgraph/spans``. Files go to a sub-directory per
            project and endpoint.
        spool_max_bytes: Bound on the spool's size; beyond it the oldest spans are
            deleted (and counted in ``spool_stats().dropped``). Default 64 MiB.

    Returns:
        A :class:`TracingHandle`.

    Raises:
        ConfigurationError: An argument is invalid.
        MissingDependencyError: The ``tracing`` extra is not installed.
    """
    global _active
    _validate(project, max_queue_size, export_timeout, tracer_provider, span_exporter)
    for obs in observers:
        if not callable(obs):
            raise ConfigurationError(
                f"observers must be gate observers (callables taking a GateEvent), got {obs!r}"
            )
    resolved = _resolve_endpoint(endpoint)
    config = trace_config if trace_config is not None else TraceConfig()
    key = _Key(
        project=project,
        endpoint=resolved,
        instrument_langchain=instrument_langchain,
        batch=batch,
        max_queue_size=max_queue_size,
        export_timeout=float(export_timeout),
        headers=tuple(sorted((headers or {}).items())),
        tracer_provider=tracer_provider,
        span_exporter=span_exporter,
        trace_config=config,
        set_global=set_global,
        gates=gates,
        observers=tuple(observers),
        spool=spool,
        spool_dir=None if spool_dir is None else os.fspath(spool_dir),
        spool_max_bytes=spool_max_bytes,
    )
    with _registry_lock:
        if _active is not None:
            old_key, old = _active
            if old_key == key and old.enabled:
                return old
            logger.info("hitl_langgraph tracing: reconfiguring (previous handle shut down)")
            old.shutdown(old._shutdown_timeout)
        handle = _build(key, headers)
        if handle.enabled:
            _active = (key, handle)
            if gates:
                handle._register_gates()
        return handle


def _validate(
    project: str,
    max_queue_size: int,
    export_timeout: float,
    tracer_provider: object,
    span_exporter: object,
) -> None:
    if not isinstance(project, str) or not project.strip():
        raise ConfigurationError(f"project must be a non-empty string, got {project!r}")
    if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, int):
        raise ConfigurationError(f"max_queue_size must be an int, got {max_queue_size!r}")
    if max_queue_size < 1:
        raise ConfigurationError(f"max_queue_size must be >= 1, got {max_queue_size}")
    if not isinstance(export_timeout, (int, float)) or not export_timeout > 0:
        raise ConfigurationError(f"export_timeout must be > 0 seconds, got {export_timeout!r}")
    if tracer_provider is not None and not isinstance(tracer_provider, TracerProvider):
        raise ConfigurationError(
            "tracer_provider must be an opentelemetry.sdk.trace.TracerProvider, got "
            f"{type(tracer_provider).__name__}"
        )
    if span_exporter is not None and not isinstance(span_exporter, SpanExporter):
        raise ConfigurationError(
            f"span_exporter must be a SpanExporter, got {type(span_exporter).__name__}"
        )


def _resolve_endpoint(endpoint: str | None) -> str:
    url = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"endpoint must be an http(s) URL (OTLP over HTTP), got {url!r}")
    return url if url.endswith(_TRACES_PATH) else url + _TRACES_PATH


def _build(key: _Key, headers: Mapping[str, str] | None) -> TracingHandle:
    """Create provider, processor and instrumentation; a no-op handle on failure."""
    processor: BoundedSpanProcessor | None = None
    provider: TracerProvider | None = None
    exporter_endpoint: str | None = None
    try:
        provider = cast("TracerProvider | None", key.tracer_provider)
        exporter = cast("SpanExporter | None", key.span_exporter)
        if provider is None and exporter is None:
            exporter = _otlp_exporter(key.endpoint, key.export_timeout, headers)
            exporter_endpoint = key.endpoint
        if provider is None:
            provider = TracerProvider(
                resource=Resource.create({PROJECT_NAME: key.project}), shutdown_on_exit=False
            )
        span_spool = _make_spool(key, exporter_endpoint, headers)
        if exporter is not None:
            processor = BoundedSpanProcessor(
                exporter,
                max_queue_size=key.max_queue_size,
                schedule_delay=_BATCH_DELAY if key.batch else 0.0,
                shutdown_timeout=key.export_timeout,
                description=exporter_endpoint or type(exporter).__name__,
                close_exporter=key.span_exporter is None,  # an injected exporter is yours
                spool=span_spool,
            )
            provider.add_span_processor(processor)
        tracker = None
        if exporter is not None or key.tracer_provider is None:
            from .spans import RootSpanTracker

            tracker = RootSpanTracker()
            provider.add_span_processor(tracker)
        instrumented = False
        if key.instrument_langchain:
            instrumented = _instrument_langchain(provider, key.trace_config)
        if key.set_global:
            trace_api.set_tracer_provider(provider)
        if exporter_endpoint:  # notebook cards link paused requests to this Phoenix
            from ..notebook.display import configure

            configure(phoenix_url=exporter_endpoint.removesuffix(_TRACES_PATH), project=key.project)
        handle = TracingHandle(
            provider=provider,
            processor=processor,
            project=key.project,
            endpoint=exporter_endpoint,
            trace_config=key.trace_config,
            shutdown_timeout=key.export_timeout,
            instrumented=instrumented,
        )
        if key.gates:
            from .spans import GateSpanRecorder

            handle._gate_observers = (
                GateSpanRecorder(handle),
                *cast("tuple[gate_events.GateObserver, ...]", key.observers),
            )
        handle._tracker = tracker
        handle._spool = span_spool
        return handle
    except Exception as exc:
        logger.warning(
            "hitl_langgraph tracing disabled: setup failed (%s: %s); the graph runs untraced",
            type(exc).__name__,
            exc,
            exc_info=True,
        )
        if processor is not None:
            processor.close(0.1)
        return TracingHandle(
            provider=trace_api.NoOpTracerProvider(),
            processor=None,
            project=key.project,
            endpoint=None,
            trace_config=key.trace_config,
            shutdown_timeout=key.export_timeout,
            error=f"{type(exc).__name__}: {exc}",
        )


def _make_spool(
    key: _Key, endpoint: str | None, headers: Mapping[str, str] | None
) -> SpanSpool | None:
    if not key.spool or (endpoint is None and key.spool_dir is None):
        return None
    import hashlib
    import re

    root = key.spool_dir or os.environ.get(SPOOL_DIR_ENV)
    base = os.path.expanduser(root or os.path.join("~", ".cache", "hitl_langgraph", "spans"))
    where = endpoint or "exporter"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", key.project)[:60]
    name += "-" + hashlib.sha256(where.encode()).hexdigest()[:8]
    poster = None
    if endpoint is not None:
        poster = http_poster(endpoint, _auth_headers(headers), key.export_timeout)
    return SpanSpool(os.path.join(base, name), max_bytes=key.spool_max_bytes, poster=poster)


def _auth_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    sent = dict(headers or {})
    api_key = os.environ.get("PHOENIX_API_KEY")
    if not sent and api_key:
        sent["authorization"] = f"Bearer {api_key}"
    return sent


def _otlp_exporter(
    endpoint: str, timeout: float, headers: Mapping[str, str] | None
) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise missing_dependency("opentelemetry-exporter-otlp-proto-http", "tracing", exc) from exc
    sent = _auth_headers(headers)
    return cast(SpanExporter, OTLPSpanExporter(endpoint=endpoint, timeout=timeout, headers=sent))


def _langchain_instrumentor() -> Any:
    try:
        from openinference.instrumentation.langchain import LangChainInstrumentor
    except ImportError as exc:
        raise missing_dependency("openinference-instrumentation-langchain", "tracing", exc) from exc
    return LangChainInstrumentor()


def _instrument_langchain(provider: TracerProvider, config: TraceConfig) -> bool:
    instrumentor = _langchain_instrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        logger.warning(
            "hitl_langgraph tracing: LangChain is already instrumented elsewhere; its spans "
            "keep going to that tracer provider. Call "
            "LangChainInstrumentor().uninstrument() first, or pass instrument_langchain=False."
        )
        return False
    instrumentor.instrument(tracer_provider=provider, config=config, skip_dep_check=True)
    return True


def _uninstrument_langchain() -> None:
    try:
        instrumentor = _langchain_instrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    except Exception:
        logger.warning("hitl_langgraph tracing: uninstrumenting LangChain failed", exc_info=True)
