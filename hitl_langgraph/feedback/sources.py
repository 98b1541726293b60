"""Where a running agent reads its guidance from: a static set, the store, or Phoenix.

Every source returns an immutable :class:`~hitl_langgraph.feedback.GuidanceSet`, swapped
whole when a new version arrives, so an agent never sees a partly applied version.

* :class:`StaticGuidance` — a fixed set (tests, notebooks).
* :class:`StoreGuidance` — the latest set the :class:`~hitl_langgraph.feedback.FeedbackLoop`
  published in the audit trail (stream ``hitl_feedback:guidance``); re-read at most
  every ``ttl`` seconds, incrementally. No Phoenix needed in the agent process.
* :class:`~hitl_langgraph.feedback.PhoenixGuidance` (in ``prompts``) — the guidance
  pinned in the Phoenix prompt version tagged ``production``, so promotion and rollback
  are tag moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..store.base import ApprovalStore
from ._streams import GUIDANCE_STREAM, StreamReader, TTLCache
from .guidance import GuidanceSet

__all__ = ["GUIDANCE_EVENT", "GuidanceSource", "StaticGuidance", "StoreGuidance"]

GUIDANCE_EVENT = "guidance_version"
"""The audit event that publishes a guidance set (its data holds the snapshot)."""


@runtime_checkable
class GuidanceSource(Protocol):
    """Anything that returns the current guidance set."""

    def current(self) -> GuidanceSet:
        """The current set (cheap: cached by the source)."""
        ...

    def stale(self) -> bool:
        """Whether the next :meth:`current` will do I/O."""
        ...


class StaticGuidance:
    """A fixed guidance set."""

    prompt_version: str | None = None

    def __init__(self, guidance: GuidanceSet | None = None) -> None:
        self.guidance = guidance or GuidanceSet()

    def current(self) -> GuidanceSet:
        return self.guidance

    def stale(self) -> bool:
        return False


class StoreGuidance:
    """The guidance set last published by the feedback loop into ``store``'s audit trail.

    Args:
        store: The approval store the loop writes to.
        ttl: Seconds between reads of the stream (each read fetches only new events).
        monotonic: Injectable monotonic clock.
    """

    prompt_version: str | None = None

    def __init__(
        self,
        store: ApprovalStore,
        *,
        ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._reader = StreamReader(store, GUIDANCE_STREAM, GUIDANCE_EVENT)
        self._cache: TTLCache[GuidanceSet] = TTLCache(self._load, ttl=ttl, monotonic=monotonic)
        self._seen: tuple[int | None, GuidanceSet] = (None, GuidanceSet())

    def _load(self) -> GuidanceSet:
        ev = self._reader.latest()
        if ev is None:
            return self._seen[1]
        if ev.seq != self._seen[0]:
            self._seen = (ev.seq, GuidanceSet.from_snapshot(ev.data.get("snapshot", {})))
        return self._seen[1]

    def current(self) -> GuidanceSet:
        return self._cache.get()

    def stale(self) -> bool:
        return self._cache.stale()

    def refresh(self) -> GuidanceSet:
        """Read the stream now, ignoring the TTL."""
        self._cache.invalidate()
        return self._cache.get()
