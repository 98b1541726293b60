"""The feedback loop: reviewer verdicts become versioned, traceable guidance and remediation.

Layer 9: may import ``review``, ``tracing``, ``store``, ``policy`` and the foundation.

Collected reviews (``hitl_langgraph.review``) are turned, deterministically, into:

* **guidance** (:func:`derive_guidance`, :class:`GuidanceSet`): instructions with the
  corrected example, scope, reviewers and reviewed spans behind them, active after
  enough concurring reviews (or one by an owner), conflicts flagged and not applied;
* **prompts that carry it** (:class:`ReviewerFeedback`): a bounded block, most relevant
  first, injected by middleware for ``create_agent``, by ``feedback.apply()`` for a
  hand-written node, or as a ``{reviewer_guidance}`` template variable; the base prompt
  is never rewritten and the guidance version is recorded on the span;
* **Phoenix prompt versions** (:class:`PromptRegistry`): ``candidate`` / ``production``
  tags, promotion and rollback as tag moves, a short-TTL cache for running agents;
* **adaptive risk** (:class:`AdaptiveRisk`): a :class:`~hitl_langgraph.RiskPolicy`
  adjuster that raises action classes reviews keep finding wrong, bounded and explained;
* **remediation** (:func:`compensate`, :class:`CompensationRunner`): a tool's
  compensating action runs once when a review marks an executed action wrong.

:class:`FeedbackLoop` runs all of it in one call (``run_once``). Needs the ``tracing``
extra (httpx) for Phoenix; the ``agents`` extra for the middleware.
"""

from __future__ import annotations

from .adaptive import (
    ActionClass,
    AdaptiveConfig,
    AdaptiveRisk,
    ClassPrior,
    PriorsSnapshot,
    amount_bands,
    review_delta,
)
from .compensate import CompensationRequest, Compensations, compensate, default_compensations
from .context import PhoenixContextResolver, ReviewContext, StoreContextResolver
from .derive import derive_guidance
from .distill import ChatModelDistiller, RecordedDistiller
from .errors import (
    CompensationFailed,
    CompensationNotRegistered,
    FeedbackError,
    PromptNotFound,
    TemplateVariableError,
)
from .guidance import (
    GUIDANCE_NAME,
    VERDICT_NAME,
    CorrectedExample,
    GuidanceConfig,
    GuidanceItem,
    GuidanceSet,
    Scope,
    normalize_instruction,
)
from .inject import ReviewerFeedback
from .loop import FeedbackLoop, LoopReport, PromptUpdate
from .prompts import GuidedPromptVersion, PhoenixGuidance, PromptRegistry, PromptTemplate
from .remediate import CompensationOutcome, CompensationRunner
from .render import RenderedGuidance, render_guidance
from .sources import GuidanceSource, StaticGuidance, StoreGuidance
from .templates import GUIDANCE_VARIABLE, check_variables, render_mustache, template_variables

__all__ = [
    "GUIDANCE_NAME",
    "GUIDANCE_VARIABLE",
    "VERDICT_NAME",
    "ActionClass",
    "AdaptiveConfig",
    "AdaptiveRisk",
    "ChatModelDistiller",
    "ClassPrior",
    "CompensationFailed",
    "CompensationNotRegistered",
    "CompensationOutcome",
    "CompensationRequest",
    "CompensationRunner",
    "Compensations",
    "CorrectedExample",
    "FeedbackError",
    "FeedbackLoop",
    "GuidanceConfig",
    "GuidanceItem",
    "GuidanceSet",
    "GuidanceSource",
    "GuidedPromptVersion",
    "LoopReport",
    "PhoenixContextResolver",
    "PhoenixGuidance",
    "PriorsSnapshot",
    "PromptNotFound",
    "PromptRegistry",
    "PromptTemplate",
    "PromptUpdate",
    "RecordedDistiller",
    "RenderedGuidance",
    "ReviewContext",
    "ReviewerFeedback",
    "Scope",
    "StaticGuidance",
    "StoreContextResolver",
    "StoreGuidance",
    "TemplateVariableError",
    "amount_bands",
    "check_variables",
    "compensate",
    "default_compensations",
    "derive_guidance",
    "normalize_instruction",
    "render_guidance",
    "render_mustache",
    "review_delta",
    "template_variables",
]
