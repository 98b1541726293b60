"""Compensating actions: what undoes a tool's effect when a review says it was wrong.

Register one compensator per tool, with the decorator or a mapping::

    @compensate("charge_card", name="refund")
    def refund(req: CompensationRequest) -> str:
        return payments.refund(req.args["charge_id"])

    Compensations({"charge_card": refund})

A compensator gets a :class:`CompensationRequest`: the executed action (tool, args,
recorded result), the verdicts against it, who gave them, and the attempt number. It
should be safe to call again after a crash mid-call (the runner never calls it twice
for one request otherwise). :class:`~hitl_langgraph.feedback.CompensationRunner` (in
``remediate``) decides when to call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import ConfigurationError
from ..store.records import ApprovalRecord
from ..store.review_records import ReviewRecord
from .errors import CompensationNotRegistered

__all__ = [
    "CompensationRequest",
    "Compensations",
    "Compensator",
    "compensate",
    "default_compensations",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CompensationRequest:
    """What a compensator is given: the executed action and the verdicts against it."""

    request_id: str
    tool: str
    args: Mapping[str, Any]
    result: Any
    """The action's recorded result (from the execution journal), or ``None``."""
    verdicts: tuple[ReviewRecord, ...]
    reviewers: tuple[str, ...]
    explanation: str | None
    attempt: int
    record: ApprovalRecord


Compensator = Callable[[CompensationRequest], Any]


@dataclass(frozen=True)
class Registered:
    tool: str
    name: str
    fn: Compensator


class Compensations:
    """Compensators keyed by tool name.

    Args:
        compensators: Initial ``{tool: compensator}``.
    """

    def __init__(self, compensators: Mapping[str, Compensator] | None = None) -> None:
        self._by_tool: dict[str, Registered] = {}
        for tool, fn in (compensators or {}).items():
            self.register(tool, fn)

    def register(
        self, tool: str, fn: Compensator, *, name: str | None = None, replace: bool = False
    ) -> Registered:
        """Register ``fn`` as the compensator of ``tool`` (one per tool)."""
        if not callable(fn):
            raise ConfigurationError(f"the compensator of {tool!r} must be callable, got {fn!r}")
        if tool in self._by_tool and not replace and self._by_tool[tool].fn is not fn:
            raise ConfigurationError(f"{tool!r} already has a compensator; pass replace=True")
        reg = Registered(tool, name or str(getattr(fn, "__name__", type(fn).__name__)), fn)
        self._by_tool[tool] = reg
        return reg

    def compensates(self, tool: str, *, name: str | None = None) -> Callable[[F], F]:
        """Decorator form of :meth:`register`."""

        def deco(fn: F) -> F:
            self.register(tool, fn, name=name)
            return fn

        return deco

    def get(self, tool: str) -> Registered | None:
        return self._by_tool.get(tool)

    def require(self, tool: str) -> Registered:
        reg = self.get(tool)
        if reg is None:
            raise CompensationNotRegistered(f"no compensator registered for tool {tool!r}")
        return reg

    def __contains__(self, tool: object) -> bool:
        return tool in self._by_tool

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_tool))


default_compensations = Compensations()


def compensate(
    tool: str, *, name: str | None = None, registry: Compensations | None = None
) -> Callable[[F], F]:
    """Register the decorated function as ``tool``'s compensator (default registry)."""
    return (registry or default_compensations).compensates(tool, name=name)
