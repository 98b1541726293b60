"""The review package's errors; they live in :mod:`hitl_langgraph.errors` with the rest."""

from __future__ import annotations

from ..errors import (
    ConfigurationError,
    InvalidVerdict,
    PhoenixConflict,
    PhoenixError,
    PhoenixNotFound,
    PhoenixUnavailable,
)

__all__ = [
    "InvalidVerdict",
    "UnknownProject",
    "UnknownSpan",
    "PhoenixConflict",
    "PhoenixError",
    "PhoenixNotFound",
    "PhoenixUnavailable",
]


class UnknownProject(ConfigurationError):
    """The Phoenix project does not exist (or holds no span): a typo, most likely.

    ``projects`` lists the names that do exist.
    """

    def __init__(self, message: str, *, projects: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.projects = projects


class UnknownSpan(ConfigurationError):
    """Phoenix holds no span with this id in the project: nothing was stored."""
