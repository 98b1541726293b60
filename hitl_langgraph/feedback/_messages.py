"""Reading text out of LangChain messages (the last user input, a message's text)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

__all__ = ["last_user_input", "message_text"]


def message_text(message: BaseMessage | None) -> str | None:
    """The text of a message (text blocks joined), or ``None``."""
    if message is None:
        return None
    return message.text or None


def last_user_input(messages: Sequence[Any]) -> str | None:
    """The text of the last human message, or ``None``."""
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return message_text(m)
    return None
