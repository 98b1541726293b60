"""Test doubles for users of hitl-langgraph (and for its own examples and tests).

* :class:`ScriptedChatModel` — a langchain-core chat model that answers from a script
  (a list of messages, or a function of the conversation). It supports ``bind_tools``,
  so it drops into ``create_agent`` and hand-written agents alike. No network.
* :class:`FrozenClock` — a settable clock for deterministic timestamps and deadlines.
* :func:`tool_call` — build an ``AIMessage`` that calls tools.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

__all__ = ["FrozenClock", "ScriptedChatModel", "tool_call"]

Script = Sequence[BaseMessage] | Callable[[list[BaseMessage]], BaseMessage]

_ids = itertools.count(1)


def tool_call(
    *calls: tuple[str, dict[str, Any]], content: str = "", id_prefix: str = "call"
) -> AIMessage:
    """An ``AIMessage`` with one tool call per ``(name, args)`` pair (ids are unique)."""
    return AIMessage(
        content=content,
        tool_calls=[
            {"name": name, "args": args, "id": f"{id_prefix}_{next(_ids)}", "type": "tool_call"}
            for name, args in calls
        ],
    )


class ScriptedChatModel(BaseChatModel):
    """Answers with the next scripted message, or with ``script(messages)`` if callable.

    When a list runs out, it answers ``"(script finished)"``. ``calls`` records the
    conversations it was given, so a test can check what the model saw.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any
    _cursor: Iterator[BaseMessage] | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    calls: list[list[BaseMessage]] = []

    def model_post_init(self, __context: Any) -> None:
        self.calls = []
        if not callable(self.script):
            self._cursor = iter(list(self.script))

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _next(self, messages: list[BaseMessage]) -> BaseMessage:
        with self._lock:
            self.calls.append(list(messages))
            if callable(self.script):
                return self.script(list(messages))  # type: ignore[no-any-return]
            assert self._cursor is not None
            return next(self._cursor, AIMessage("(script finished)"))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        msg = self._next(messages)
        if not isinstance(msg, AIMessage):
            msg = AIMessage(content=msg.content)
        return ChatResult(generations=[ChatGeneration(message=msg.model_copy())])


class FrozenClock:
    """A clock that stands still until moved: ``clock()``, ``clock.advance(seconds=60)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        with self._lock:
            self.now = self.now + (delta or timedelta(**kwargs))
            return self.now

    def set(self, when: datetime) -> None:
        with self._lock:
            self.now = when
