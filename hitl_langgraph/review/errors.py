"""Errors of the review package (all are :class:`~hitl_langgraph.errors.HitlError`)::

HitlError
├── PhoenixError                 Phoenix refused a request or could not be reached
│   ├── PhoenixUnavailable       no answer (refused, timeout): spooled writes wait
│   ├── PhoenixNotFound          404: project (before its first span), span, config
│   └── PhoenixConflict          409: exists already / config defined differently
└── InvalidVerdict (ValueError)  a label or reviewer the review config does not allow
"""

from __future__ import annotations

from ..errors import HitlError

__all__ = [
    "InvalidVerdict",
    "PhoenixConflict",
    "PhoenixError",
    "PhoenixNotFound",
    "PhoenixUnavailable",
]


class PhoenixError(HitlError):
    """Phoenix refused a request or could not be reached.

    Attributes:
        status_code: The HTTP status, or ``None`` when no answer came back.
        method, url: The request that failed.
        detail: Phoenix's error detail (or the transport error).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str = "",
        url: str = "",
        detail: str = "",
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.url = url
        self.detail = detail
        super().__init__(message)


class PhoenixUnavailable(PhoenixError):
    """No answer from Phoenix (connection refused, timeout). Nothing was written there."""


class PhoenixNotFound(PhoenixError):
    """404: the project (Phoenix creates it with its first span), span or config is missing."""


class PhoenixConflict(PhoenixError):
    """409: the thing exists already (annotation config names are global)."""


class InvalidVerdict(HitlError, ValueError):
    """A verdict label (or reviewer name) the review config does not allow. Nothing was
    written."""
