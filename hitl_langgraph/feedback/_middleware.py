"""``GuidanceMiddleware``: reviewer guidance in every ``create_agent`` model call.

Needs the ``agents`` extra (``langchain``). Built by
:meth:`~hitl_langgraph.feedback.ReviewerFeedback.middleware`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import missing_dependency

try:
    from langchain.agents.middleware import AgentMiddleware, ModelRequest
except ImportError as _exc:  # pragma: no cover - exercised without the extra
    raise missing_dependency("langchain", "agents", _exc) from _exc

from ._messages import last_user_input

__all__ = ["GuidanceMiddleware"]


def _run_config() -> dict[str, Any]:
    try:
        from langgraph.config import get_config

        return dict(get_config())
    except RuntimeError:  # outside a runnable context
        return {}


def _tool_names(tools: Any) -> list[str] | None:
    if tools is None:
        return None
    names: list[str] = []
    for t in tools:
        if isinstance(t, dict):
            name = t.get("name") or (t.get("function") or {}).get("name")
        else:
            name = getattr(t, "name", None)
        if name:
            names.append(str(name))
    return names


class GuidanceMiddleware(AgentMiddleware):
    """Adds the guidance block to the system message of each model call.

    The node is ``node`` if given, else the running LangGraph node (``model`` inside
    ``create_agent``); the tools are the request's; the input is the last human message.
    The base system prompt is kept as it is; the block fills its ``reviewer_guidance``
    slot or follows it after a blank line.
    """

    def __init__(
        self,
        feedback: Any,  # a ReviewerFeedback (typed loosely: inject imports this module)
        *,
        node: str | None = None,
        tenant_of: Callable[[ModelRequest], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.feedback = feedback
        self.node = node
        self.tenant_of = tenant_of

    def _prepare(self, request: ModelRequest, guidance: Any) -> tuple[ModelRequest, Any, str]:
        config = _run_config()
        node = self.node or (config.get("metadata") or {}).get("langgraph_node")
        if self.tenant_of is not None:
            tenant = self.tenant_of(request)
        else:
            tenant = (config.get("configurable") or {}).get("tenant")
        rendered = self.feedback.render(
            node=node,
            input=last_user_input(request.messages),
            tools=_tool_names(request.tools),
            tenant=None if tenant is None else str(tenant),
            guidance=guidance,
        )
        system, template = self.feedback.inject_system(request.system_message, rendered)
        if system is not request.system_message:
            request = request.override(system_message=system)
        return request, rendered, template

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        """Render, inject, and run the model call under ``using_prompt_template``."""
        new, rendered, template = self._prepare(request, self.feedback.guidance())
        with self.feedback.tracing(rendered, template=template):
            return handler(new)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]
    ) -> Any:
        """Async twin of :meth:`wrap_model_call` (store reads happen off the loop)."""
        guidance = await self.feedback.acurrent()
        new, rendered, template = self._prepare(request, guidance)
        with self.feedback.tracing(rendered, template=template):
            return await handler(new)
