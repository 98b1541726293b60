"""Errors of the feedback loop, all under :class:`~hitl_langgraph.errors.HitlError`.

Phoenix failures are the review package's ``PhoenixError`` family (the feedback loop
talks to Phoenix through :class:`~hitl_langgraph.review.PhoenixClient`).

The hierarchy::

    HitlError
    └── FeedbackError                       the feedback loop could not do its job
        ├── TemplateVariableError (ConfigurationError)
        │                                   a prompt template would lose a variable, or
        │                                   has no ``reviewer_guidance`` slot where one is needed
        ├── PromptNotFound (review.PhoenixNotFound)
        │                                   no such Phoenix prompt, version or tag
        ├── CompensationFailed              a compensator kept failing; it was reported
        └── CompensationNotRegistered (ConfigurationError)
                                            a compensation was asked for a tool with none
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError, HitlError
from ..review.errors import PhoenixNotFound

__all__ = [
    "CompensationFailed",
    "CompensationNotRegistered",
    "FeedbackError",
    "PromptNotFound",
    "TemplateVariableError",
]


class FeedbackError(HitlError):
    """Base class of the feedback loop's errors."""


class TemplateVariableError(FeedbackError, ConfigurationError):
    """A template would lose variables (``missing``), or lacks a needed slot.

    Raised instead of "repairing" a candidate: a prompt that silently drops
    ``{question}`` still scores well on a metric and fails in production.
    """

    def __init__(self, message: str, *, missing: Sequence[str] = ()) -> None:
        self.missing = tuple(missing)
        super().__init__(message)


class PromptNotFound(FeedbackError, PhoenixNotFound):
    """Phoenix has no such prompt, prompt version, or tag (HTTP 404).

    Other Phoenix failures are the review package's
    :class:`~hitl_langgraph.review.PhoenixError` (``PhoenixUnavailable``, ...).
    """


class CompensationFailed(FeedbackError):
    """A compensator failed on every attempt. It was recorded in the audit log.

    Attributes:
        request_id: The executed action that could not be compensated.
        attempts: How many times the compensator was called.
    """

    def __init__(self, message: str, *, request_id: str, attempts: int) -> None:
        self.request_id = request_id
        self.attempts = attempts
        super().__init__(message)


class CompensationNotRegistered(FeedbackError, ConfigurationError):
    """No compensator is registered for the tool."""
