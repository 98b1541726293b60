"""Run an approved action to completion even when the task awaiting it is cancelled.

The Agent Server cancels a run (``multitask_strategy`` ``interrupt`` or ``rollback``,
a client cancel) by cancelling its asyncio task. A sync tool keeps running in its
worker thread regardless, so releasing the execution claim at that moment would let
the next run start the same tool a second time. :func:`run_to_completion` instead
runs the action in its own task behind :func:`asyncio.shield`: the caller sees the
``CancelledError`` at once, while the action finishes and its outcome is recorded
(``on_result``) or its failure settled (``on_error``) exactly when it really ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["in_flight", "run_to_completion"]

logger = logging.getLogger("hitl_langgraph")

T = TypeVar("T")

_IN_FLIGHT: set[asyncio.Future[Any]] = set()


def in_flight() -> int:
    """How many shielded actions are still running in this process."""
    return len(_IN_FLIGHT)


def _forget(task: asyncio.Future[Any]) -> None:
    _IN_FLIGHT.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # retrieved here so an orphaned task (its caller was cancelled) is not reported
        # as "never retrieved"; the caller, if still waiting, gets it too
        logger.debug("shielded action ended with %r", task.exception())


async def run_to_completion(
    execute: Callable[[], Awaitable[T]],
    *,
    on_result: Callable[[T], Awaitable[None]],
    on_error: Callable[[BaseException], Awaitable[Any]],
) -> T:
    """``await execute()``, then ``await on_result(result)``; ``on_error(exc)`` if it raises.

    Cancelling the caller does not cancel the action or its bookkeeping: they finish in
    the background (the task is kept referenced until then)."""

    async def complete() -> T:
        try:
            result = await execute()
        except BaseException as exc:
            await on_error(exc)
            raise
        await on_result(result)
        return result

    task = asyncio.ensure_future(complete())
    _IN_FLIGHT.add(task)
    task.add_done_callback(_forget)
    return await asyncio.shield(task)
