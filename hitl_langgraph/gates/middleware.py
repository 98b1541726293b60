"""``HITLMiddleware``: the gate as an ``AgentMiddleware`` for ``langchain.agents.create_agent``.

A policy-driven superset of LangChain's ``HumanInTheLoopMiddleware``. It takes the same
``interrupt_on`` forms (``True``, ``False``, a dict with ``allowed_decisions``,
``description`` as a string or a callable, ``when``), ``description_prefix``,
``edit_notice`` and ``interrupt_mode``, and/or a :class:`~hitl_langgraph.RiskPolicy`:

* ``interrupt_mode="batched"`` (the default, as in LangChain): after each model turn one
  interrupt lists every gated call of that turn in call order; nothing of the turn runs
  until every decision is in. Resume with ``{"decisions": [...]}`` matched by position
  (LangChain's contract) or by each decision's ``request_id``.
* ``interrupt_mode="per_call"``: each gated call raises its own interrupt as it starts
  (``create_agent`` runs each call as its own task); calls that are not gated run at once.

The policy scores and routes every call; where an ``interrupt_on`` entry and the policy
both apply, the stricter route wins. Unlike LangChain's middleware, an edit is re-scored
by the policy (a cross-tool edit needs the target tool's approval), a decision binds to
the action digest, and an approved call runs once even if two resumes race.

Needs the ``agents`` extra: ``pip install "hitl-langgraph[agents]"``.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any, Literal, cast, get_args

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime, get_runtime
from langgraph.types import Command
from typing_extensions import NotRequired

from ..clock import Clock, utc_now
from ..errors import ConfigurationError, missing_dependency
from ..policy.action import Action
from ..policy.risk import DECISION_TYPES, Assessment, RiskContext, RiskPolicy, Rule
from ..store.aio import AsyncStore
from ..store.base import ApprovalStore
from .engine import GateEngine, Resolution
from .events import GateObserver
from .payload import GateItem
from .tool_node import hitl_markers, resolution_message, validate_tool_args

try:
    from langchain.agents.middleware import AgentMiddleware
    from langchain.agents.middleware.types import AgentState, PrivateStateAttr, ToolCallRequest
    from langgraph.prebuilt.tool_node import ToolRuntime
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise missing_dependency("langchain", "agents", _exc) from _exc

__all__ = ["EDIT_NOTICE", "HITLMiddleware", "InterruptMode", "rules_from_interrupt_on"]

InterruptMode = Literal["batched", "per_call"]

EDIT_NOTICE = (
    "Note: a human reviewer replaced this tool call before it ran. The call recorded in "
    "your message is the one you produced, not the one that executed. This was "
    "intentional and authorized. Do not re-issue your original call."
)
"""LangChain's default text prepended to the result of a call a reviewer edited."""

DEFAULT_PREFIX = "Tool execution requires approval"
_CONFIG_KEYS = frozenset({"allowed_decisions", "description", "args_schema", "when"})
_ROUTE_ORDER = {"auto": 0, "review": 1, "approve": 2, "deny": 3}
_PLAN_KEY = "hitl_gate_plan"

# tool_call_id -> result of the entry's ``when`` predicate for the call being assessed
_WHEN: contextvars.ContextVar[dict[str | None, bool] | None] = contextvars.ContextVar(
    "hitl_interrupt_on_when", default=None
)


class _GateState(AgentState[Any]):
    """State for ``HITLMiddleware``: the batched plan ``after_model`` hands to the tools."""

    hitl_gate_plan: NotRequired[Annotated[dict[str, dict[str, Any]], PrivateStateAttr]]


def _check_interrupt_on(
    interrupt_on: Mapping[str, bool | Mapping[str, Any]], tools: Iterable[str] | None
) -> dict[str, dict[str, Any]]:
    """LangChain's accepted forms, normalised; anything else is a ``ConfigurationError``."""
    known = None if tools is None else set(tools)
    resolved: dict[str, dict[str, Any]] = {}
    for tool, cfg in interrupt_on.items():
        if known is not None and tool not in known and not any(c in tool for c in "*?["):
            raise ConfigurationError(
                f"interrupt_on names tool {tool!r}, which the agent does not have "
                f"(tools: {', '.join(sorted(known))})"
            )
        if isinstance(cfg, bool):
            if cfg:
                resolved[tool] = {"allowed_decisions": list(DECISION_TYPES)}
            continue
        if not isinstance(cfg, Mapping):
            raise ConfigurationError(
                f"interrupt_on[{tool!r}] must be True, False or a dict with allowed_decisions, "
                f"got {cfg!r}"
            )
        unknown = sorted(set(cfg) - _CONFIG_KEYS)
        if unknown:
            raise ConfigurationError(
                f"interrupt_on[{tool!r}] has unknown key(s) {unknown}; allowed keys: "
                f"{sorted(_CONFIG_KEYS)}"
            )
        allowed = cfg.get("allowed_decisions")
        if not allowed:
            raise ConfigurationError(
                f"Invalid `interrupt_on` config for tool '{tool}': `allowed_decisions` must be "
                "a non-empty list of decision types (e.g. ['approve', 'reject']). Got config "
                f"with keys {sorted(cfg)} and allowed_decisions={allowed!r}."
            )
        bad = [d for d in allowed if d not in DECISION_TYPES]
        if bad:
            raise ConfigurationError(
                f"interrupt_on[{tool!r}]: unknown decision type(s) {bad}; "
                f"expected some of {list(DECISION_TYPES)}"
            )
        description = cfg.get("description")
        if description is not None and not (isinstance(description, str) or callable(description)):
            raise ConfigurationError(
                f"interrupt_on[{tool!r}]['description'] must be a string or a callable"
            )
        when = cfg.get("when")
        if when is not None and not callable(when):
            raise ConfigurationError(f"interrupt_on[{tool!r}]['when'] must be callable")
        resolved[tool] = dict(cfg)
    return resolved


def _when_allows(action: Action, context: RiskContext) -> bool:
    results = _WHEN.get() or {}
    return results.get(action.tool_call_id, True)


def rules_from_interrupt_on(interrupt_on: Mapping[str, bool | Mapping[str, Any]]) -> list[Rule]:
    """Translate LangChain's ``interrupt_on`` mapping into rules.

    An entry with ``when`` matches only the calls its predicate let through (the
    middleware evaluates the predicate per call before the policy is asked).
    """
    rules: list[Rule] = []
    for tool, cfg in interrupt_on.items():
        name = f"interrupt_on:{tool}"
        if cfg is True:
            rules.append(Rule(tool=tool, score=1.0, route="approve", name=name))
        elif cfg is False:
            rules.append(Rule(tool=tool, score=0.0, route="auto", name=name))
        elif isinstance(cfg, Mapping):
            rules.append(
                Rule(
                    tool=tool,
                    score=1.0,
                    route="approve",
                    name=name,
                    when=_when_allows if cfg.get("when") is not None else None,
                    reason=f"interrupt_on[{tool!r}] asks for a human decision",
                    allowed_decisions=tuple(cfg.get("allowed_decisions") or DECISION_TYPES),
                )
            )
        else:
            raise ConfigurationError(
                f"interrupt_on[{tool!r}] must be True, False or a dict with allowed_decisions, "
                f"got {cfg!r}"
            )
    return rules


class _StricterOf(RiskPolicy):
    """The user's policy and the ``interrupt_on`` rules: where both apply, the stricter
    route wins (on a tie at ``approve``: the decisions both allow, the policy's roles)."""

    def __init__(self, base: RiskPolicy, switches: RiskPolicy) -> None:
        super().__init__(
            rules=[*switches.rules, *base.rules],
            scorers=base.scorers,
            adjusters=base.adjusters,
            thresholds=base.thresholds,
            unmatched=base.unmatched,
        )
        self.base = base
        self.switches = switches

    def assess(
        self, action: Action, *, state: Any = None, config: Mapping[str, Any] | None = None
    ) -> Assessment:
        base = self.base.assess(action, state=state, config=config)
        switch = self.switches.assess(action, state=state, config=config)
        if switch.rule is None:  # no interrupt_on entry applies to this call
            return replace(base, policy_version=self.version)
        a, b = _ROUTE_ORDER[switch.route], _ROUTE_ORDER[base.route]
        reasons = (*switch.reasons, *base.reasons)
        if a > b:
            return replace(switch, reasons=reasons, policy_version=self.version)
        if b > a or base.route != "approve":
            return replace(
                base, reasons=(*base.reasons, *switch.reasons), policy_version=self.version
            )
        both = tuple(d for d in switch.allowed_decisions if d in base.allowed_decisions)
        return replace(
            base,
            score=max(base.score, switch.score),
            reasons=reasons,
            allowed_decisions=both or switch.allowed_decisions,
            policy_version=self.version,
        )


@contextmanager
def _when_results(results: dict[str | None, bool]) -> Iterator[None]:
    token = _WHEN.set(results)
    try:
        yield
    finally:
        _WHEN.reset(token)


def answer_message(res: Resolution) -> ToolMessage | None:
    """LangChain's message for a rejected or answered call (same content and markers),
    with our ``response_metadata["hitl"]``; a policy denial keeps the gate's wording."""
    call = res.tool_call
    if res.outcome not in ("reject", "respond"):
        return resolution_message(res)
    call = res.item.tool_call
    name, call_id = str(call["name"]), call.get("id")
    if res.outcome == "respond":
        content = res.message or ""
    elif res.message:
        content = f"User rejected the tool call for `{name}` with reason: {res.message}"
    else:
        content = (
            f"User rejected the tool call for `{name}` with id {call_id}. The tool was not "
            "executed. Do not retry this tool call unless the user explicitly requests it."
        )
    msg = ToolMessage(
        content,
        name=name,
        tool_call_id=call_id or "",
        status="success" if res.outcome == "respond" else "error",
    )
    return hitl_markers(msg, res)


class HITLMiddleware(AgentMiddleware[Any, Any, Any]):
    """Gate ``create_agent`` tool calls with a risk policy and/or LangChain's switches.

    Args:
        policy: the risk policy. With only ``interrupt_on``, unlisted tools run.
        store: the approval store.
        interrupt_on: LangChain's per-tool switches (every form LangChain accepts).
            Where an entry and the policy both apply to a call, the stricter route wins.
        interrupt_mode: ``"batched"`` (default): one interrupt per model turn listing
            every gated call; ``"per_call"``: one interrupt per gated call.
        description_prefix: the reviewer's text for an entry without ``description``
            (``"{prefix}\\n\\nTool: {name}\\nArgs: {args}"``, as in LangChain).
        edit_notice: prepended to the result of a call a reviewer edited (``None``: no
            notice); LangChain's text by default.
        tools: the agent's tool names; when given, an ``interrupt_on`` entry naming
            another tool is a ``ConfigurationError``.
        engine, clock, observers, default_expiry: as for ``GatedToolNode``.
    """

    state_schema = _GateState

    def __init__(
        self,
        policy: RiskPolicy | None = None,
        *,
        store: ApprovalStore | None = None,
        interrupt_on: Mapping[str, bool | Mapping[str, Any]] | None = None,
        interrupt_mode: InterruptMode = "batched",
        description_prefix: str = DEFAULT_PREFIX,
        edit_notice: str | None = EDIT_NOTICE,
        tools: Iterable[Any] | None = None,
        engine: GateEngine | None = None,
        clock: Clock = utc_now,
        observers: Sequence[GateObserver] = (),
        default_expiry: timedelta | None = None,
        require_recorded_decisions: bool = False,
    ) -> None:
        super().__init__()
        if interrupt_mode not in (modes := get_args(InterruptMode)):
            allowed = " or ".join(repr(m) for m in modes)
            raise ConfigurationError(f"`interrupt_mode` must be {allowed}, got {interrupt_mode!r}.")
        names = None if tools is None else [getattr(t, "name", t) for t in tools]
        self.interrupt_on: dict[str, dict[str, Any]] = _check_interrupt_on(
            interrupt_on or {}, names
        )
        self.interrupt_mode: InterruptMode = interrupt_mode
        self.description_prefix = description_prefix
        self.edit_notice = edit_notice
        if engine is None:
            if store is None:
                raise ConfigurationError("HITLMiddleware needs store= (or engine=)")
            if policy is None and interrupt_on is None:
                raise ConfigurationError("HITLMiddleware needs policy= or interrupt_on=")
            switches = RiskPolicy(rules_from_interrupt_on(interrupt_on or {}), unmatched="auto")
            if policy is None:
                policy = switches
            elif switches.rules:
                policy = _StricterOf(policy, switches)
            engine = GateEngine(
                policy,
                store,
                clock=clock,
                observers=observers,
                default_expiry=default_expiry,
                require_recorded_decisions=require_recorded_decisions,
            )
        self.engine = engine

    # -- what the reviewer reads -------------------------------------------------------
    def _entry(self, name: str) -> dict[str, Any] | None:
        return self.interrupt_on.get(name)

    def _description(self, call: Mapping[str, Any], state: Any, runtime: Any) -> str | None:
        entry = self._entry(str(call["name"]))
        if entry is None:
            return None  # gated by the policy alone: the gate's own description
        value = entry.get("description")
        if callable(value):
            return str(value(call, state, runtime))
        if value is not None:
            return str(value)
        return f"{self.description_prefix}\n\nTool: {call['name']}\nArgs: {call.get('args')}"

    # -- conditional entries and ids ---------------------------------------------------
    def _refuse_missing_id(self, call: Mapping[str, Any], state: Any, config: Any) -> None:
        if call.get("id") is not None:
            return
        action = Action(str(call["name"]), dict(call.get("args") or {}))
        if self.engine.policy.assess(action, state=state, config=config).route == "approve":
            raise ValueError(
                f"Tool call `{call['name']}` has no ID, so its result can't be matched to it. "
                "Make sure the chat model returns tool call IDs."
            )

    def _when_for_turn(
        self, calls: Sequence[ToolCall], state: Any, runtime: Runtime[Any]
    ) -> dict[str | None, bool]:
        results: dict[str | None, bool] = {}
        for call in calls:
            entry = self._entry(call["name"])
            when = None if entry is None else entry.get("when")
            if when is None:
                continue
            try:
                config: RunnableConfig = get_config()
            except RuntimeError:
                config = {}
            tool_runtime = ToolRuntime(
                state=state,
                context=runtime.context,
                config=config,
                stream_writer=runtime.stream_writer,
                tool_call_id=call["id"],
                store=runtime.store,
                execution_info=runtime.execution_info,
                server_info=runtime.server_info,
            )
            req = ToolCallRequest(tool_call=call, tool=None, state=state, runtime=tool_runtime)
            results[call["id"]] = bool(when(req))
        return results

    # -- batched: one interrupt per model turn -----------------------------------------
    def after_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        if self.interrupt_mode != "batched":
            return None
        messages = state.get("messages") or []
        last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        if last is None or not last.tool_calls:
            return {_PLAN_KEY: {}} if state.get(_PLAN_KEY) else None
        config = get_config()
        calls = list(last.tool_calls)
        whens = self._when_for_turn(calls, state, runtime)
        with _when_results(whens):
            for call in calls:
                self._refuse_missing_id(call, state, config)
            resolutions = self.engine.resolve(
                [dict(c) for c in calls],
                node="tools",
                state=state,
                config=config,
                describe=lambda call: self._description(call, state, runtime),
            )
        plan: dict[str, dict[str, Any]] = {}
        answers: list[ToolMessage] = []
        for call, res in zip(calls, resolutions, strict=True):
            msg = answer_message(res)
            if msg is not None:
                answers.append(msg)
                continue
            if call["id"] is not None:
                plan[call["id"]] = {
                    "request_id": res.request_id,
                    "index": int(res.item.key.split(":", 1)[0]),
                    "asked": {"name": call["name"], "args": call["args"]},
                    "run": {"name": res.tool_call["name"], "args": res.tool_call["args"]},
                    "edited": res.edited,
                    "journal": res.journal,
                    "decision": res.decision,
                }
        update: dict[str, Any] = {_PLAN_KEY: plan}
        if answers:
            update["messages"] = [last, *answers]
        return update

    async def aafter_model(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        # the policy, store and interrupt() run on the store's threads, off the loop
        return await AsyncStore.of(self.engine.store).run(self.after_model, state, runtime)

    def _planned(self, request: ToolCallRequest) -> Resolution | None:
        """The resolution ``after_model`` recorded for this exact call, if any."""
        call = request.tool_call
        plan = (request.state or {}).get(_PLAN_KEY) if isinstance(request.state, Mapping) else None
        entry = (plan or {}).get(call.get("id") or "")
        if entry is None or entry["asked"] != {"name": call["name"], "args": call["args"]}:
            return None
        config = request.runtime.config if request.runtime is not None else {}
        action = Action(str(call["name"]), dict(call["args"] or {}), tool_call_id=call.get("id"))
        assessment = self.engine.policy.assess(action, state=request.state, config=config)
        item = GateItem(
            key=f"{entry['index']}:{call.get('id')}",
            request_id=entry["request_id"],
            tool_call=dict(call),
            assessment=assessment,
        )
        run = {**call, **entry["run"]}
        return Resolution(
            item, "run", bool(entry["journal"]), run, None, entry["decision"], entry["edited"]
        )

    # -- per call ------------------------------------------------------------------------
    def _resolve_one(self, request: ToolCallRequest) -> Resolution:
        call = request.tool_call
        tools = {t.name: t for t in (getattr(request.runtime, "tools", None) or [])}
        if request.tool is not None:
            tools.setdefault(request.tool.name, request.tool)
        config = request.runtime.config
        entry = self._entry(call["name"])
        when = None if entry is None else entry.get("when")
        whens = {} if when is None else {call.get("id"): bool(when(request))}
        with _when_results(whens):
            self._refuse_missing_id(call, request.state, config)
            return self.engine.resolve(
                [dict(call)],
                node="tools",
                state=request.state,
                config=config,
                tool_names=frozenset(tools) if tools else None,
                arg_validator=partial_validator(tools),
                describe=lambda c: self._description(c, request.state, _graph_runtime()),
            )[0]

    def _prepare(self, request: ToolCallRequest) -> tuple[Resolution, ToolMessage | None]:
        res = self._planned(request) if self.interrupt_mode == "batched" else None
        if res is None:
            # per_call mode, or a call after_model did not see: gate it on its own
            res = self._resolve_one(request)
        return res, answer_message(res)

    def _edited_request(self, request: ToolCallRequest, res: Resolution) -> ToolCallRequest:
        if not res.edited:
            return request
        call = cast(ToolCall, {**request.tool_call, **res.tool_call})
        if call["name"] == request.tool_call["name"]:
            return request.override(tool_call=call)
        available = list(getattr(request.runtime, "tools", None) or [])
        tool = next((t for t in available if t.name == call["name"]), None)
        if tool is None:
            names = ", ".join(sorted(t.name for t in available))
            raise ValueError(
                f"Reviewer edited tool call {request.tool_call['id']!r} to {call['name']!r}, "
                f"which is not an available tool. Available tools: {names}."
            )
        return request.override(tool_call=call, tool=tool)

    def _annotate(self, res: Resolution, result: Any, request: ToolCallRequest) -> Any:
        if not res.edited or not self.edit_notice:
            return result
        if isinstance(result, ToolMessage):
            return self._prepend(result, res)
        if isinstance(result, Command) and isinstance(result.update, dict):
            messages = result.update.get("messages")
            if isinstance(messages, list):
                call_id = request.tool_call.get("id")
                return replace(
                    result,
                    update={
                        **result.update,
                        "messages": [
                            self._prepend(m, res)
                            if isinstance(m, ToolMessage) and m.tool_call_id == call_id
                            else m
                            for m in messages
                        ],
                    },
                )
        return result

    def _prepend(self, message: ToolMessage, res: Resolution) -> ToolMessage:
        notice = (
            f"{self.edit_notice} Executed instead: {res.tool_call['name']} with arguments "
            f"{json.dumps(res.tool_call['args'], default=str)}."
        )
        if message.content:
            notice += "\n\nTool response:"
        content: Any
        if isinstance(message.content, str):
            if notice in message.content:
                return message
            content = f"{notice}\n{message.content}" if message.content else notice
        else:
            if any(notice in str(block) for block in message.content):
                return message
            head: Any = (
                notice
                if message.content and all(isinstance(b, str) for b in message.content)
                else {"type": "text", "text": notice}
            )
            content = [head, *message.content]
        return message.model_copy(update={"content": content})

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolMessage | Command[Any]],
    ) -> ToolMessage | Command[Any]:
        res, msg = self._prepare(request)
        if msg is not None:
            return msg
        req = self._edited_request(request, res)
        result = self.engine.run_once(res, lambda: handler(req), config=request.runtime.config)
        return cast("ToolMessage | Command[Any]", self._annotate(res, result, req))

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        # the policy, store and interrupt() run on the store's threads, off the loop
        res, msg = await AsyncStore.of(self.engine.store).run(self._prepare, request)
        if msg is not None:
            return msg
        req = self._edited_request(request, res)
        result = await self.engine.arun_once(
            res, lambda: handler(req), config=request.runtime.config
        )
        return cast("ToolMessage | Command[Any]", self._annotate(res, result, req))


def partial_validator(tools: Mapping[str, Any]) -> Callable[[str, dict[str, Any]], None]:
    def check(name: str, args: dict[str, Any]) -> None:
        validate_tool_args(tools, name, args)

    return check


def _graph_runtime() -> Any:
    try:
        return get_runtime()
    except RuntimeError:  # outside a graph
        return None
