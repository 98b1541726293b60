"""``GatedToolNode``: a drop-in for ``langgraph.prebuilt.ToolNode`` with risk-routed gates.

Same contract as ``ToolNode`` (messages in, ``ToolMessage`` s out, parallel tool calls,
``Send`` inputs, injected state, error handling). Before any tool runs, every call is
assessed: ``auto`` and ``review`` calls run, ``deny`` calls return an error
``ToolMessage``, ``approve`` calls wait for a human at a LangGraph interrupt.

How interrupts map to calls:

* When each tool call is its own task (``create_agent``, or :func:`route_tool_calls`
  instead of ``tools_condition``), each gated call raises its own interrupt and is
  resumed by that interrupt's id, independently of the others.
* When one task receives an AI message with several gated calls (plain
  ``tools_condition`` routing), LangGraph allows one open interrupt per task, so the node
  raises one interrupt listing every undecided gated call. Answer any subset by naming
  each decision's ``request_id``; the calls left undecided are asked again at once (under
  a new interrupt id), and nothing already decided or run is repeated.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Literal, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolRuntime
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from pydantic import BaseModel

from ..clock import Clock, utc_now
from ..policy.risk import RiskPolicy
from ..store.base import ApprovalStore
from .engine import GateEngine, Resolution
from .events import GateObserver

__all__ = [
    "GatedToolNode",
    "annotate_edit",
    "hitl_markers",
    "resolution_message",
    "route_tool_calls",
    "validate_tool_args",
]

_R = TypeVar("_R")

_RESOLUTIONS: contextvars.ContextVar[dict[str, Resolution] | None] = contextvars.ContextVar(
    "hitl_resolutions", default=None
)

EDIT_NOTICE = (
    "Note: a human reviewer replaced this tool call before it ran; it executed as {name}"
    "({args}). This was intentional and authorized. Do not re-issue your original call."
)


def hitl_markers(msg: ToolMessage, res: Resolution) -> ToolMessage:
    """Mark a message the gate wrote in place of a tool result.

    Reject and respond messages carry LangChain's markers (``additional_kwargs``
    ``lc_source="hitl_interrupt_decision"``, ``lc_data={"decision": ...}``, as its
    ``HumanInTheLoopMiddleware`` sets them); every gate message also carries ours in
    ``response_metadata["hitl"]`` (request id and outcome).
    """
    extra: dict[str, Any] = {}
    if res.outcome in ("reject", "respond"):
        extra["additional_kwargs"] = {
            **msg.additional_kwargs,
            "lc_source": "hitl_interrupt_decision",
            "lc_data": {"decision": res.outcome},
        }
    extra["response_metadata"] = {
        **msg.response_metadata,
        "hitl": {"request_id": res.request_id, "outcome": res.outcome},
    }
    return msg.model_copy(update=extra)


def resolution_message(res: Resolution) -> ToolMessage | None:
    """The ``ToolMessage`` for a call that must not run (deny, reject, respond)."""
    call = res.tool_call
    tool = res.item.tool
    call_id = call.get("id") or ""
    if res.outcome == "deny":
        reasons = "; ".join(res.item.assessment.reasons)
        content = (
            f"The call to {tool} was denied by policy and was not executed ({reasons}). "
            "Do not retry it; tell the user it needs a different approach."
        )
        msg = ToolMessage(content, name=tool, tool_call_id=call_id, status="error")
    elif res.outcome == "reject":
        why = res.message or "no reason given"
        content = (
            f"A human reviewer rejected the call to {tool}; it was not executed. Reason: {why}. "
            "Do not retry the same call unless the user asks for it."
        )
        msg = ToolMessage(content, name=tool, tool_call_id=call_id, status="error")
    elif res.outcome == "respond":
        msg = ToolMessage(res.message or "", name=tool, tool_call_id=call_id, status="success")
    else:
        return None
    return hitl_markers(msg, res)


def annotate_edit(res: Resolution, result: _R) -> _R:
    """Prefix the result of a reviewer-edited call with the notice the model needs."""
    if res.edited and isinstance(result, ToolMessage):
        notice = EDIT_NOTICE.format(name=res.tool_call["name"], args=res.tool_call["args"])
        return result.model_copy(update={"content": f"{notice}\n\n{result.content}"})
    return result


class GatedToolNode(ToolNode):
    """``ToolNode`` whose calls go through the risk policy first.

    Args:
        tools: the tools, as for ``ToolNode``.
        policy: routes each call (auto / review / approve / deny).
        store: the approval store (see :func:`~hitl_langgraph.open_store`).
        clock, worker_id, observers, default_expiry, require_recorded_decisions,
            trace_ids: passed to :class:`GateEngine`.
        engine: use an existing engine instead (shared with other gates).
        **kwargs: every other ``ToolNode`` argument (``name``, ``handle_tool_errors``,
            ``messages_key``, ...). ``wrap_tool_call`` wrappers run inside the gate.
    """

    def __init__(
        self,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        policy: RiskPolicy | None = None,
        store: ApprovalStore | None = None,
        engine: GateEngine | None = None,
        clock: Clock = utc_now,
        worker_id: str | None = None,
        observers: Sequence[GateObserver] = (),
        default_expiry: timedelta | None = None,
        require_recorded_decisions: bool = False,
        trace_ids: Callable[[], tuple[str, str] | None] | None = None,
        **kwargs: Any,
    ) -> None:
        # No wrapper of our own: ToolNode's error handling and wrapper dispatch (sync
        # wrappers under ainvoke, handle_tool_errors types) stay exactly as given. The
        # gate sits in _run_one/_arun_one, outside the caller's wrappers.
        super().__init__(tools, **kwargs)
        if engine is None:
            if policy is None or store is None:
                from ..errors import ConfigurationError

                raise ConfigurationError(
                    "GatedToolNode needs policy= and store= (or engine=); e.g. "
                    "GatedToolNode(tools, policy=RiskPolicy(rules=[...]), store=open_store('memory://'))"
                )
            engine = GateEngine(
                policy,
                store,
                clock=clock,
                worker_id=worker_id,
                observers=observers,
                default_expiry=default_expiry,
                require_recorded_decisions=require_recorded_decisions,
                trace_ids=trace_ids,
            )
        self.engine = engine

    # -- validation used while the resume value is checked -------------------------
    def _validate_args(self, name: str, args: dict[str, Any]) -> None:
        validate_tool_args(self.tools_by_name, name, args)

    def _resolve_args(
        self, input: Any, config: RunnableConfig
    ) -> tuple[list[ToolCall], dict[str, Any]]:
        """The tool calls and the ``GateEngine.resolve`` arguments for this input."""
        tool_calls, _ = self._parse_input(input)
        kwargs = {
            "node": self.name or "tools",
            "state": self._extract_state(input, config),
            "config": config,
            "tool_names": frozenset(self.tools_by_name),
            "arg_validator": self._validate_args,
        }
        return tool_calls, kwargs

    @staticmethod
    def _early(decided: list[Resolution]) -> tuple[list[dict[str, Any]], dict[str, Resolution]]:
        """Approved calls to run now (journaled; the final pass reuses their results)."""
        calls = [{**r.item.tool_call, "type": "tool_call"} for r in decided if r.outcome == "run"]
        return calls, {_key(r.item.tool_call, i): r for i, r in enumerate(decided)}

    @staticmethod
    def _by_call(calls: list[ToolCall], resolutions: list[Resolution]) -> dict[str, Resolution]:
        return {_key(c, i): r for i, (c, r) in enumerate(zip(calls, resolutions, strict=True))}

    def _func(
        self,
        input: list[AnyMessage] | dict[str, Any] | BaseModel,
        config: RunnableConfig,
        runtime: Runtime,
    ) -> Any:
        def run_early(decided: list[Resolution]) -> None:
            calls, plan = self._early(decided)
            if calls:
                with _planned(plan):
                    super(GatedToolNode, self)._func(calls, config, runtime)  # type: ignore[arg-type]

        tool_calls, kwargs = self._resolve_args(input, config)
        resolutions = self.engine.resolve(
            [dict(c) for c in tool_calls], run_early=run_early, **kwargs
        )
        with _planned(self._by_call(tool_calls, resolutions)):
            return super()._func(input, config, runtime)

    async def _afunc(
        self,
        input: list[AnyMessage] | dict[str, Any] | BaseModel,
        config: RunnableConfig,
        runtime: Runtime,
    ) -> Any:
        async def run_early(decided: list[Resolution]) -> None:
            calls, plan = self._early(decided)
            if calls:
                with _planned(plan):
                    await super(GatedToolNode, self)._afunc(calls, config, runtime)  # type: ignore[arg-type]

        tool_calls, kwargs = self._resolve_args(input, config)
        resolutions = await self.engine.aresolve(
            [dict(c) for c in tool_calls], run_early=run_early, **kwargs
        )
        with _planned(self._by_call(tool_calls, resolutions)):
            return await super()._afunc(input, config, runtime)

    def _prepare(self, call: ToolCall) -> tuple[Resolution | None, ToolMessage | None, ToolCall]:
        """The call's resolution, the message to return instead of running it (if any),
        and the call to run (the reviewer's, if they edited it)."""
        plan = _RESOLUTIONS.get() or {}
        res = _lookup(plan, call)
        if res is None:  # not planned (should not happen): fail closed
            return (
                None,
                ToolMessage(
                    f"The call to {call['name']} was not assessed by the gate "
                    "and was not executed.",
                    name=call["name"],
                    tool_call_id=call["id"] or "",
                    status="error",
                ),
                call,
            )
        msg = resolution_message(res)
        if msg is not None or not res.edited:
            return res, msg, call
        edited: ToolCall = {**call, **res.tool_call}  # type: ignore[typeddict-item]
        return res, None, edited

    def _run_one(
        self,
        call: ToolCall,
        input_type: Literal["list", "dict", "tool_calls"],
        tool_runtime: ToolRuntime,
    ) -> ToolMessage | Command[Any] | list[Command[Any] | ToolMessage]:
        res, msg, to_run = self._prepare(call)
        if res is None or msg is not None:
            return msg  # type: ignore[return-value]
        parent = super()._run_one

        def run() -> ToolMessage | Command[Any] | list[Command[Any] | ToolMessage]:
            return parent(to_run, input_type, tool_runtime)

        result = self.engine.run_once(res, run, config=tool_runtime.config)
        return annotate_edit(res, result)

    async def _arun_one(
        self,
        call: ToolCall,
        input_type: Literal["list", "dict", "tool_calls"],
        tool_runtime: ToolRuntime,
    ) -> ToolMessage | Command[Any] | list[Command[Any] | ToolMessage]:
        res, msg, to_run = self._prepare(call)
        if res is None or msg is not None:
            return msg  # type: ignore[return-value]
        parent = super()._arun_one

        async def run() -> ToolMessage | Command[Any] | list[Command[Any] | ToolMessage]:
            return await parent(to_run, input_type, tool_runtime)

        result = await self.engine.arun_once(res, run, config=tool_runtime.config)
        return annotate_edit(res, result)


def validate_tool_args(tools: Mapping[str, Any], name: str, args: Mapping[str, Any]) -> None:
    """Check ``args`` against tool ``name``'s call schema (pydantic ``ValidationError``).

    A tool that is unknown or has no pydantic schema is not checked here.
    """
    schema = getattr(tools.get(name), "tool_call_schema", None)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema.model_validate(dict(args))


@contextmanager
def _planned(plan: dict[str, Resolution]) -> Iterator[None]:
    """Make ``plan`` visible to the per-call wrappers (ToolNode runs them in threads)."""
    token = _RESOLUTIONS.set(plan)
    try:
        yield
    finally:
        _RESOLUTIONS.reset(token)


def _key(call: ToolCall | dict[str, Any], index: int) -> str:
    return str(call.get("id") or f"#{index}")


def _lookup(plan: dict[str, Resolution], call: ToolCall) -> Resolution | None:
    if call.get("id") and call["id"] in plan:
        return plan[call["id"]]
    for res in plan.values():
        if res.item.tool_call.get("id") == call.get("id") and res.item.tool_call.get(
            "args"
        ) == call.get("args"):
            return res
    return None


def route_tool_calls(
    state: list[AnyMessage] | dict[str, Any] | BaseModel,
    *,
    tools_node: str = "tools",
    messages_key: str = "messages",
) -> list[Send] | Literal["__end__"]:
    """A drop-in for ``tools_condition`` that sends each tool call as its own task.

    Each gated call then raises its own interrupt and resumes independently::

        graph.add_conditional_edges("agent", route_tool_calls, ["tools", END])
    """
    if isinstance(state, list):
        messages = state
    elif isinstance(state, dict):
        messages = state.get(messages_key, [])
    else:
        messages = getattr(state, messages_key, [])
    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    if last is None or not last.tool_calls:
        return "__end__"
    return [Send(tools_node, [call]) for call in last.tool_calls]
