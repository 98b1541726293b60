"""Asynchronous oversight: a risk-sampled review queue on top of Phoenix.

Layer 8: may import ``tracing``, ``gates.events``, ``store``, ``policy`` and the foundation.

Agents on moderate-risk work run without waiting; actions routed ``review`` are sampled
for later human review with a probability that grows with their risk score. Reviewers
work in the Phoenix UI or from code; their verdicts flow back into the store.

Nothing is lost when Phoenix is down: sampling decisions, review requests and verdicts
are written to the store first and mirrored to Phoenix from a durable outbox
(``hitl sync``, a background thread, or the next run), exactly once per annotation key.

Typical use::

    from hitl_langgraph.review import ReviewQueue, ReviewSampler, ReviewSampling
    from hitl_langgraph.tracing import setup_tracing

    sampler = ReviewSampler(store, project="support-agent", client="http://127.0.0.1:6006",
                            sampling=ReviewSampling(thresholds=policy.thresholds))
    # one call: every gate in the process records spans and feeds the sampler
    tracing = setup_tracing("support-agent", observers=[sampler])
    tools = GatedToolNode(tools, policy=policy, store=store)      # no per-gate wiring

    queue = ReviewQueue("http://127.0.0.1:6006", project="support-agent", store=store)
    queue.setup()                       # annotation configs, assigned to the project
    for item in queue.pending():        # oldest due first, with input/output and a link
        queue.submit(item.span_id, "correct", reviewer="alice")
    queue.collect()                     # verdicts made in the Phoenix UI
    queue.sla()                         # oldest unreviewed item, items past due

Needs ``httpx`` (in the ``tracing`` extra). Never imports the ``phoenix`` package.
"""

from __future__ import annotations

from .configs import (
    CODE_IDENTIFIER,
    DEFAULT_VERDICT_LABELS,
    GUIDANCE_NAME,
    REVIEW_REQUEST_NAME,
    VERDICT_NAME,
    ConfigsReport,
    ReviewOptions,
    ensure_annotation_configs,
    human_identifier,
)
from .errors import (
    InvalidVerdict,
    PhoenixConflict,
    PhoenixError,
    PhoenixNotFound,
    PhoenixUnavailable,
    UnknownProject,
    UnknownSpan,
)
from .items import CollectReport, ReviewItem, SlaReport, ToolCall
from .observer import ReviewSampler, review_request_entry
from .phoenix_client import PhoenixClient, resolve_base_url
from .queue import AWAITING_REVIEW_FILTER, PendingItems, ReviewQueue
from .reviewers import ANONYMOUS, PhoenixReviewer, ReviewerDirectory, add_reviewer
from .sampling import (
    ReviewBudget,
    ReviewSampling,
    SamplingCurve,
    SamplingDecision,
    constant_rate,
    linear_curve,
    uniform_draw,
)
from .spool import BackgroundSync, Spool, SyncReport

__all__ = [
    "ANONYMOUS",
    "AWAITING_REVIEW_FILTER",
    "CODE_IDENTIFIER",
    "DEFAULT_VERDICT_LABELS",
    "GUIDANCE_NAME",
    "REVIEW_REQUEST_NAME",
    "VERDICT_NAME",
    "BackgroundSync",
    "CollectReport",
    "ConfigsReport",
    "InvalidVerdict",
    "PendingItems",
    "PhoenixClient",
    "PhoenixConflict",
    "PhoenixError",
    "PhoenixNotFound",
    "PhoenixReviewer",
    "PhoenixUnavailable",
    "ReviewBudget",
    "ReviewItem",
    "ReviewOptions",
    "ReviewQueue",
    "ReviewSampler",
    "ReviewSampling",
    "ReviewerDirectory",
    "SamplingCurve",
    "SamplingDecision",
    "SlaReport",
    "Spool",
    "SyncReport",
    "ToolCall",
    "UnknownProject",
    "UnknownSpan",
    "add_reviewer",
    "constant_rate",
    "ensure_annotation_configs",
    "human_identifier",
    "linear_curve",
    "resolve_base_url",
    "review_request_entry",
    "uniform_draw",
]
