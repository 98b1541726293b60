"""The review package's errors; they live in :mod:`hitl_langgraph.errors` with the rest."""

from __future__ import annotations

from ..errors import (
    InvalidVerdict,
    PhoenixConflict,
    PhoenixError,
    PhoenixNotFound,
    PhoenixUnavailable,
)

__all__ = [
    "InvalidVerdict",
    "PhoenixConflict",
    "PhoenixError",
    "PhoenixNotFound",
    "PhoenixUnavailable",
]
