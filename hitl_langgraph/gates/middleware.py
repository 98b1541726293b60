"""``HITLMiddleware``: the gate as an ``AgentMiddleware`` for ``langchain.agents.create_agent``.

A policy-driven superset of LangChain's ``HumanInTheLoopMiddleware``: it accepts the same
``interrupt_on={"tool": True | False | {"allowed_decisions": [...]}}`` mapping and/or a
:class:`~hitl_langgraph.RiskPolicy`. ``create_agent`` runs each tool call as its own task,
so every gated call raises its own interrupt (like LangChain's ``per_call`` mode) and the
payload is the ``HITLRequest`` shape. Unlike LangChain's middleware, an edit is re-scored
by the policy (a cross-tool edit needs the target tool's approval), a decision binds to
the action digest, and an approved call runs once even if two resumes race.

Needs the ``agents`` extra: ``pip install "hitl-langgraph[agents]"``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, cast

from langchain_core.messages import ToolCall, ToolMessage
from langgraph.types import Command

from ..clock import Clock, utc_now
from ..errors import ConfigurationError, missing_dependency
from ..policy.risk import DECISION_TYPES, RiskPolicy, Rule
from ..store.base import ApprovalStore
from .engine import GateEngine, Resolution
from .events import GateObserver
from .tool_node import annotate_edit, resolution_message, validate_tool_args

try:
    from langchain.agents.middleware import AgentMiddleware
    from langchain.agents.middleware.types import ToolCallRequest
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise missing_dependency("langchain", "agents", _exc) from _exc

__all__ = ["HITLMiddleware", "rules_from_interrupt_on"]


def rules_from_interrupt_on(interrupt_on: Mapping[str, bool | Mapping[str, Any]]) -> list[Rule]:
    """Translate LangChain's ``interrupt_on`` mapping into rules."""
    rules: list[Rule] = []
    for tool, cfg in interrupt_on.items():
        if cfg is True:
            rules.append(Rule(tool=tool, score=1.0, route="approve", name=f"interrupt_on:{tool}"))
        elif cfg is False:
            rules.append(Rule(tool=tool, score=0.0, route="auto", name=f"interrupt_on:{tool}"))
        elif isinstance(cfg, Mapping):
            allowed = tuple(cfg.get("allowed_decisions", DECISION_TYPES))
            rules.append(
                Rule(
                    tool=tool,
                    score=1.0,
                    route="approve",
                    name=f"interrupt_on:{tool}",
                    reason=cfg.get("description")
                    if isinstance(cfg.get("description"), str)
                    else None,
                    allowed_decisions=allowed,
                )
            )
        else:
            raise ConfigurationError(
                f"interrupt_on[{tool!r}] must be True, False or a dict with allowed_decisions, "
                f"got {cfg!r}"
            )
    return rules


class HITLMiddleware(AgentMiddleware):
    """Gate ``create_agent`` tool calls with a risk policy.

    Args:
        policy: the risk policy. With only ``interrupt_on``, unlisted tools run.
        store: the approval store.
        interrupt_on: LangChain-style per-tool switches; they take precedence over the
            policy's rules for the tools they name.
        engine, clock, observers, default_expiry: as for ``GatedToolNode``.
    """

    def __init__(
        self,
        policy: RiskPolicy | None = None,
        *,
        store: ApprovalStore | None = None,
        interrupt_on: Mapping[str, bool | Mapping[str, Any]] | None = None,
        engine: GateEngine | None = None,
        clock: Clock = utc_now,
        observers: Sequence[GateObserver] = (),
        default_expiry: timedelta | None = None,
        require_recorded_decisions: bool = False,
    ) -> None:
        super().__init__()
        if engine is None:
            if store is None:
                raise ConfigurationError("HITLMiddleware needs store= (or engine=)")
            if policy is None and interrupt_on is None:
                raise ConfigurationError("HITLMiddleware needs policy= or interrupt_on=")
            extra = rules_from_interrupt_on(interrupt_on or {})
            if policy is None:
                policy = RiskPolicy(rules=extra, unmatched="auto")
            elif extra:
                policy = RiskPolicy(
                    rules=[*extra, *policy.rules],
                    scorers=policy.scorers,
                    adjusters=policy.adjusters,
                    thresholds=policy.thresholds,
                    unmatched=policy.unmatched,
                )
            engine = GateEngine(
                policy,
                store,
                clock=clock,
                observers=observers,
                default_expiry=default_expiry,
                require_recorded_decisions=require_recorded_decisions,
            )
        self.engine = engine

    def _resolve(self, request: ToolCallRequest) -> Resolution:
        tools = {t.name: t for t in (request.runtime.tools or [])}
        if request.tool is not None:
            tools.setdefault(request.tool.name, request.tool)

        return self.engine.resolve(
            [dict(request.tool_call)],
            node="tools",
            state=request.state,
            config=request.runtime.config,
            tool_names=frozenset(tools) if tools else None,
            arg_validator=partial(validate_tool_args, tools),
        )[0]

    def _edited_request(self, request: ToolCallRequest, res: Resolution) -> ToolCallRequest:
        if not res.edited:
            return request
        call = cast(ToolCall, {**request.tool_call, **res.tool_call})
        tool = next((t for t in (request.runtime.tools or []) if t.name == call["name"]), None)
        tool = tool or request.tool
        if tool is None:
            return request.override(tool_call=call)
        return request.override(tool_call=call, tool=tool)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        res = self._resolve(request)
        msg = resolution_message(res)
        if msg is not None:
            return msg
        req = self._edited_request(request, res)
        result = self.engine.run_once(res, lambda: handler(req), config=request.runtime.config)
        return annotate_edit(res, result)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        res = self._resolve(request)
        msg = resolution_message(res)
        if msg is not None:
            return msg
        req = self._edited_request(request, res)
        result = await self.engine.arun_once(
            res, lambda: handler(req), config=request.runtime.config
        )
        return annotate_edit(res, result)
