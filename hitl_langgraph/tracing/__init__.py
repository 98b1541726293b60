"""Tracing to Phoenix: LangGraph runs plus one GUARDRAIL span per gate event.

Layer 7: may import ``gates.events``, ``policy`` and the foundation; ``notebook`` for links.

Needs the ``tracing`` extra (``pip install "hitl-langgraph[tracing]"``); importing this
package without it raises :class:`~hitl_langgraph.errors.MissingDependencyError`. It
never imports the ``phoenix`` package.

Typical use::

    from hitl_langgraph.tracing import setup_tracing

    # Phoenix at 127.0.0.1:6006; every gate in the process now records GUARDRAIL spans,
    # links decisions to the paused trace and feeds the observers given here
    tracing = setup_tracing("support-agent", observers=[review_sampler])
    ...
    tracing.stats()        # exported / failed / dropped / spooled span counts
    tracing.spool_stats()  # spans kept on disk while Phoenix was unreachable
"""

from __future__ import annotations

from . import attributes
from ._processor import BoundedSpanProcessor, TracingStats
from .setup import DEFAULT_ENDPOINT, ENDPOINT_ENV, TracingHandle, setup_tracing
from .spans import (
    GateSpanRecorder,
    RootSpanTracker,
    current_span,
    current_trace_ids,
    span_attributes,
    tracing_suppressed,
)
from .spool import SpanSpool, SpoolStats

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "BoundedSpanProcessor",
    "GateSpanRecorder",
    "RootSpanTracker",
    "SpanSpool",
    "SpoolStats",
    "TracingHandle",
    "TracingStats",
    "attributes",
    "current_span",
    "current_trace_ids",
    "setup_tracing",
    "span_attributes",
    "tracing_suppressed",
]
