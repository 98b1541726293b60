"""The feedback loop's errors; they live in :mod:`hitl_langgraph.errors` with the rest."""

from __future__ import annotations

from ..errors import (
    CompensationFailed,
    CompensationNotRegistered,
    FeedbackError,
    PromptNotFound,
    TemplateVariableError,
)

__all__ = [
    "CompensationFailed",
    "CompensationNotRegistered",
    "FeedbackError",
    "PromptNotFound",
    "TemplateVariableError",
]
