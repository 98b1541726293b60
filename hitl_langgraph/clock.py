"""The clock type every component accepts, and the default one (light: no LangGraph import)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]
"""Returns the current timezone-aware datetime; inject a fixed one in tests."""


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(timezone.utc)
