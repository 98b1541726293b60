"""``ReviewerFeedback``: put the active guidance into a prompt, three ways, traceably.

* ``feedback.apply(system_prompt, node=..., input=...)`` for a hand-written node: fills
  a ``{reviewer_guidance}`` / ``{{reviewer_guidance}}`` slot if the prompt has one,
  otherwise appends the block after a blank line. Nothing else in the prompt changes.
* ``feedback.variables(node=..., input=...)`` returns ``{"reviewer_guidance": block}`` for
  a langchain-core ``ChatPromptTemplate`` or a Phoenix MUSTACHE template; ``guided()``
  adds the slot to a template's system message and refuses a result that lost a
  variable.
* ``feedback.middleware()`` is an ``AgentMiddleware`` for ``langchain.agents.create_agent``
  whose ``wrap_model_call`` adds the block to the system message of every model call.

Each use records the guidance version on the current span with OpenInference's prompt
template attributes (``llm.prompt_template.template`` / ``.version`` / ``.variables``)
plus ``hitl.guidance.*`` (item ids, reviewed span ids), and the middleware wraps the
model call in ``using_prompt_template`` so the LLM span carries them too.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from langchain_core.messages import SystemMessage

from ..store.base import ApprovalStore
from ._messages import last_user_input, message_text
from .guidance import GuidanceSet
from .render import HEADER, RenderedGuidance, render_guidance
from .sources import GuidanceSource, StaticGuidance, StoreGuidance
from .templates import (
    GUIDANCE_VARIABLE,
    check_variables,
    fill_fstring_slot,
    has_slot,
    mustache_variables,
    render_mustache,
)

__all__ = [
    "GUIDANCE_ITEMS",
    "GUIDANCE_SPANS",
    "GUIDANCE_VERSION",
    "PROMPT_VERSION_ID",
    "ReviewerFeedback",
    "last_user_input",
    "message_text",
]

logger = logging.getLogger("hitl_langgraph.feedback")

GUIDANCE_VERSION = "hitl.guidance.version"
GUIDANCE_ITEMS = "hitl.guidance.items"
GUIDANCE_SPANS = "hitl.guidance.reviewed_span_ids"
PROMPT_VERSION_ID = "hitl.prompt.version_id"
_TEMPLATE = "llm.prompt_template.template"
_TEMPLATE_VERSION = "llm.prompt_template.version"
_TEMPLATE_VARIABLES = "llm.prompt_template.variables"
_SLOT = "{{" + GUIDANCE_VARIABLE + "}}"


class ReviewerFeedback:
    """Renders reviewer guidance for one prompt and injects it (see the module docstring).

    Args:
        source: A :class:`GuidanceSource` (``StoreGuidance``, ``PhoenixGuidance``,
            ``StaticGuidance``), a fixed :class:`GuidanceSet`, or an approval store (read
            through :class:`StoreGuidance`).
        budget: Maximum block length in characters.
        examples: Include corrected examples when they fit.
        header: First line of the block.
        record_spans: Record the guidance version on the current span.
    """

    def __init__(
        self,
        source: GuidanceSource | GuidanceSet | ApprovalStore,
        *,
        budget: int = 1200,
        examples: bool = True,
        header: str = HEADER,
        record_spans: bool = True,
    ) -> None:
        if isinstance(source, GuidanceSet):
            source = StaticGuidance(source)
        elif isinstance(source, ApprovalStore):
            source = StoreGuidance(source)
        self.source: GuidanceSource = source
        self.budget = budget
        self.examples = examples
        self.header = header
        self.record_spans = record_spans

    # -- rendering ---------------------------------------------------------------------
    def guidance(self) -> GuidanceSet:
        """The source's current set."""
        return self.source.current()

    def render(
        self,
        *,
        node: str | None,
        input: str | None = None,
        tools: Iterable[str] | None = None,
        tenant: str | None = None,
        guidance: GuidanceSet | None = None,
    ) -> RenderedGuidance:
        """The block for this prompt (see :func:`render_guidance`)."""
        return render_guidance(
            guidance or self.guidance(),
            node=node,
            tools=tools,
            tenant=tenant,
            input=input,
            budget=self.budget,
            examples=self.examples,
            header=self.header,
        )

    def apply(
        self,
        system_prompt: str,
        *,
        node: str | None,
        input: str | None = None,
        tools: Iterable[str] | None = None,
        tenant: str | None = None,
    ) -> str:
        """``system_prompt`` with the guidance block in its slot (or appended).

        With no applicable guidance the prompt is returned unchanged (an empty slot is
        filled with "").
        """
        rendered = self.render(node=node, input=input, tools=tools, tenant=tenant)
        text, template = self._combine(system_prompt, rendered.text)
        self.record(rendered, template=template)
        return text

    def _combine(self, base: str, block: str) -> tuple[str, str]:
        if GUIDANCE_VARIABLE in mustache_variables(base):
            return render_mustache(base, {GUIDANCE_VARIABLE: block}, strict=False), base
        if has_slot(base):
            return fill_fstring_slot(base, GUIDANCE_VARIABLE, block), base
        template = f"{base}\n\n{_SLOT}"
        return (f"{base}\n\n{block}" if block else base), template

    def variables(
        self,
        *,
        node: str | None,
        input: str | None = None,
        tools: Iterable[str] | None = None,
        tenant: str | None = None,
        template: str = "",
    ) -> dict[str, str]:
        """``{"reviewer_guidance": block}`` for a template (and records it on the span)."""
        rendered = self.render(node=node, input=input, tools=tools, tenant=tenant)
        self.record(rendered, template=template)
        return {GUIDANCE_VARIABLE: rendered.text}

    def guided(self, template: Any) -> Any:
        """A copy of a ``ChatPromptTemplate`` with a ``{reviewer_guidance}`` slot.

        The slot is appended to the first system message (or a system message is
        prepended). Templates that already have the slot are returned as they are.

        Raises:
            TemplateVariableError: the result lost a variable of ``template``.
        """
        from langchain_core.prompts import ChatPromptTemplate, SystemMessagePromptTemplate

        if not isinstance(template, ChatPromptTemplate):
            raise TypeError(f"guided() takes a ChatPromptTemplate, got {type(template).__name__}")
        if GUIDANCE_VARIABLE in template.input_variables:
            return template
        messages: list[Any] = list(template.messages)
        slot = "\n\n{" + GUIDANCE_VARIABLE + "}"
        for i, msg in enumerate(messages):
            if isinstance(msg, SystemMessagePromptTemplate):
                prompt = cast(Any, msg.prompt)
                messages[i] = SystemMessagePromptTemplate.from_template(
                    prompt.template + slot, template_format=prompt.template_format
                )
                break
        else:
            messages.insert(0, SystemMessagePromptTemplate.from_template(slot.strip()))
        result = ChatPromptTemplate.from_messages(messages)
        if template.partial_variables:
            result = result.partial(**template.partial_variables)
        check_variables(template, result, require=[GUIDANCE_VARIABLE], what="guided template")
        return result

    def middleware(
        self,
        *,
        node: str | None = None,
        tenant_of: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """An ``AgentMiddleware`` for ``create_agent`` (needs the ``agents`` extra).

        Args:
            node: The node name guidance is scoped to; default: the running LangGraph
                node (``model`` in ``create_agent``).
            tenant_of: Reads the tenant from the ``ModelRequest``; default: the run
                config's ``configurable["tenant"]``.
        """
        from ._middleware import GuidanceMiddleware

        return GuidanceMiddleware(self, node=node, tenant_of=tenant_of)

    # -- tracing -----------------------------------------------------------------------
    def attributes(self, rendered: RenderedGuidance, *, template: str = "") -> dict[str, Any]:
        """The span attributes that tie a prompt to its guidance version."""
        attrs: dict[str, Any] = {
            _TEMPLATE: template or _SLOT,
            _TEMPLATE_VERSION: rendered.version,
            _TEMPLATE_VARIABLES: json.dumps({GUIDANCE_VARIABLE: rendered.text}, ensure_ascii=False),
            GUIDANCE_VERSION: rendered.version,
            GUIDANCE_ITEMS: list(rendered.item_ids),
            GUIDANCE_SPANS: list(rendered.span_ids),
        }
        version_id = getattr(self.source, "prompt_version", None)
        if version_id:  # link the span to the Phoenix prompt version it ran on
            attrs[PROMPT_VERSION_ID] = version_id
            attrs[_TEMPLATE_VERSION] = version_id
        return attrs

    def record(self, rendered: RenderedGuidance, *, template: str = "") -> None:
        """Set :meth:`attributes` on the current span (no-op without tracing)."""
        if not self.record_spans:
            return
        try:
            from ..tracing.spans import current_span
        except ImportError:
            return
        try:
            span = current_span()
            if span is not None and span.is_recording():
                span.set_attributes(self.attributes(rendered, template=template))
        except Exception:  # tracing must never break a prompt
            logger.exception("hitl_langgraph: recording the guidance version on the span failed")

    @contextlib.contextmanager
    def tracing(self, rendered: RenderedGuidance, *, template: str = "") -> Iterator[None]:
        """``using_prompt_template`` for the spans made inside (LLM spans end inside)."""
        self.record(rendered, template=template)
        try:
            from openinference.instrumentation import using_prompt_template
        except ImportError:
            yield
            return
        if not self.record_spans:
            yield
            return
        version_id = getattr(self.source, "prompt_version", None)
        with using_prompt_template(
            template=template or _SLOT,
            version=version_id or rendered.version,
            variables={GUIDANCE_VARIABLE: rendered.text},
        ):
            yield

    def inject_system(
        self, system: SystemMessage | None, rendered: RenderedGuidance
    ) -> tuple[SystemMessage | None, str]:
        """``system`` with ``rendered`` in its slot (or appended), and the template.

        String content keeps the base text unchanged around the block; content blocks
        get one more text block; no system message becomes one holding only the block.
        """
        base = "" if system is None else (message_text(system) or "")
        if not rendered.text:
            return system, _template_of(base)
        if system is None:
            return SystemMessage(rendered.text), _SLOT
        if isinstance(system.content, str):
            text, template = self._combine(system.content, rendered.text)
            return SystemMessage(text), template
        blocks = [*system.content, {"type": "text", "text": rendered.text}]
        return SystemMessage(content=blocks), _template_of(base)

    async def acurrent(self) -> GuidanceSet:
        """:meth:`guidance` without blocking the event loop when the source must read."""
        import asyncio

        if self.source.stale():
            return await asyncio.to_thread(self.source.current)
        return self.source.current()


def _template_of(base: str) -> str:
    return f"{base}\n\n{_SLOT}" if base else _SLOT
