"""Optional distillation of reviewer notes into instructions, recorded for determinism.

By default a reviewer's note *is* the instruction (verbatim; identical notes merge).
With a :class:`ChatModelDistiller` (any langchain-core chat model you configure), each
new note is rewritten once into a short imperative instruction; the model is shown the
instructions already known for the same scope and asked to return one of them verbatim
when the note means the same, so paraphrases merge. Every distillation is recorded in
the audit trail (stream ``hitl_feedback:distill``, event ``guidance_distilled``) and
replayed from there, so deriving guidance again gives the same result without calling
the model again, and a person can see which note became which sentence.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from langchain_core.messages import HumanMessage, SystemMessage

from ..store.base import ApprovalStore
from ..store.records import AuditEvent
from ._streams import DISTILL_STREAM, content_hash, utc_now
from .guidance import Scope, normalize_instruction

__all__ = ["DISTILL_PROMPT", "ChatModelDistiller", "Distiller", "RecordedDistiller"]

logger = logging.getLogger("hitl_langgraph.feedback")

DISTILL_PROMPT = (
    "You turn a human reviewer's note about an AI agent's mistake into ONE short imperative "
    "instruction for the agent's system prompt (at most 30 words). Keep every concrete "
    "condition, amount and name from the note; add nothing the note does not say. If one of "
    "the existing instructions already says the same thing, answer with that instruction "
    "exactly. Answer with the instruction only."
)


class Distiller(Protocol):
    """Rewrites one reviewer note into an instruction."""

    def __call__(self, text: str, *, scope: Scope, existing: Sequence[str]) -> str: ...


class ChatModelDistiller:
    """A :class:`Distiller` backed by a chat model.

    Args:
        model: A langchain-core chat model (``invoke(messages) -> AIMessage``).
        prompt: The system prompt.
        max_chars: Longer answers are rejected (the note is kept verbatim).
    """

    def __init__(self, model: Any, *, prompt: str = DISTILL_PROMPT, max_chars: int = 300) -> None:
        self.model = model
        self.prompt = prompt
        self.max_chars = max_chars

    @property
    def name(self) -> str:
        return str(
            getattr(self.model, "model_name", None)
            or getattr(self.model, "_llm_type", type(self.model).__name__)
        )

    def __call__(self, text: str, *, scope: Scope, existing: Sequence[str]) -> str:
        known = "\n".join(f"- {e}" for e in existing) or "(none)"
        question = (
            f"Scope: {scope.describe()}\nExisting instructions:\n{known}\n\n"
            f"Reviewer's note:\n{text}"
        )
        reply = self.model.invoke([SystemMessage(self.prompt), HumanMessage(question)])
        answer = str(getattr(reply, "text", None) or getattr(reply, "content", "")).strip()
        answer = answer.splitlines()[0].strip() if answer else ""
        if not answer or len(answer) > self.max_chars:
            return text
        return answer


class RecordedDistiller:
    """Wraps a distiller: record each distillation once, replay it afterwards.

    Args:
        store: Where distillations are recorded (audit trail).
        distiller: The distiller to call for notes not seen before.
        clock: Injectable wall clock.
    """

    def __init__(
        self,
        store: ApprovalStore,
        distiller: Distiller,
        *,
        clock: Callable[[], datetime] = utc_now,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.distiller = distiller
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:distill"
        self._known: dict[str, str] = {}
        self._by_scope: dict[str, list[str]] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self.calls = 0

    def _sync(self) -> None:
        for ev in self.store.list_audit(request_id=DISTILL_STREAM, after_seq=self._seq):
            self._seq = max(self._seq, ev.seq or 0)
            if ev.event == "guidance_distilled":
                self._remember(
                    str(ev.data["key"]), str(ev.data["scope_key"]), str(ev.data["instruction"])
                )

    def _remember(self, key: str, scope_key: str, instruction: str) -> None:
        self._known[key] = instruction
        known = self._by_scope.setdefault(scope_key, [])
        if normalize_instruction(instruction) not in {normalize_instruction(k) for k in known}:
            known.append(instruction)

    def __call__(self, text: str, scope: Scope) -> str:
        """The instruction for ``text`` in ``scope`` (recorded, or distilled now)."""
        scope_key = content_hash(scope.key(), "s", 12)
        key = content_hash([scope.key(), normalize_instruction(text)], "d", 16)
        with self._lock:
            self._sync()
            if key in self._known:
                return self._known[key]
            try:
                self.calls += 1
                instruction = self.distiller(
                    text, scope=scope, existing=list(self._by_scope.get(scope_key, []))
                )
            except Exception:
                logger.exception(
                    "hitl_langgraph: distilling a reviewer note failed; keeping it verbatim"
                )
                return text
            self.store.append_audit(
                AuditEvent(
                    event="guidance_distilled",
                    at=self.clock(),
                    request_id=DISTILL_STREAM,
                    actor=self.worker_id,
                    data={
                        "key": key,
                        "scope_key": scope_key,
                        "scope": scope.key(),
                        "text": text,
                        "instruction": instruction,
                        "distiller": str(
                            getattr(self.distiller, "name", type(self.distiller).__name__)
                        ),
                    },
                )
            )
            self._sync()
            return self._known.get(key, instruction)
