"""Tracing to Phoenix: LangGraph runs plus one GUARDRAIL span per gate event.

Layer 7: may import ``gates.events``, ``policy`` and the foundation; ``notebook`` for links.

Needs the ``tracing`` extra (``pip install "hitl-langgraph[tracing]"``); importing this
package without it raises :class:`~hitl_langgraph.errors.MissingDependencyError`. It
never imports the ``phoenix`` package.

Typical use::

    from hitl_langgraph.tracing import GateSpanRecorder, current_trace_ids, setup_tracing

    tracing = setup_tracing("support-agent")          # Phoenix at 127.0.0.1:6006
    engine = GateEngine(..., observers=[GateSpanRecorder(tracing)],
                        trace_ids=current_trace_ids)
    ...
    tracing.stats()   # exported / failed / dropped span counts
"""

from __future__ import annotations

from . import attributes
from ._processor import BoundedSpanProcessor, TracingStats
from .setup import DEFAULT_ENDPOINT, ENDPOINT_ENV, TracingHandle, setup_tracing
from .spans import (
    GateSpanRecorder,
    current_span,
    current_trace_ids,
    span_attributes,
    tracing_suppressed,
)

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "BoundedSpanProcessor",
    "GateSpanRecorder",
    "TracingHandle",
    "TracingStats",
    "attributes",
    "current_span",
    "current_trace_ids",
    "setup_tracing",
    "span_attributes",
    "tracing_suppressed",
]
