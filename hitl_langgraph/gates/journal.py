"""The execution journal's rules, shared by the engine (running) and the inbox (recovering).

One row per gated action, keyed by its request id::

    (none) --claim--> running --start--> started --finish--> done | failed
                         |                  |
         released (never called the tool)   held for a human: ``hitl recover``

* ``running`` is a claim: the tool has not been called. When its worker is gone (its
  process no longer exists on this host) or the claim is older than the engine's
  ``claim_grace``, the next resume or reconcile releases it and applies the approval
  again. ``start_execution`` is a compare-and-set on the claimer, so a worker whose
  claim was taken over never calls the tool: exactly one caller starts it.
* ``started`` is written just before the tool is called. If the worker dies before
  ``finish``, nothing can tell whether the side effect happened, so nothing runs it
  again on its own: :class:`~hitl_langgraph.errors.ExecutionHeld` names the command
  that settles it (``hitl recover REQUEST_ID --rerun | --mark-done | --mark-failed``).

Tools can make a deliberate re-run safe: the gate passes an idempotency key derived from
the request id in the tool's config (``config["configurable"]["hitl_idempotency_key"]``,
also visible as ``runtime.config`` on a ``ToolRuntime``); read it with
:func:`idempotency_key`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import ToolMessage

__all__ = [
    "IDEMPOTENCY_KEY",
    "REQUEST_ID_KEY",
    "SETTLED_TEXT",
    "idempotency_key",
    "idempotency_key_for",
    "settled_message",
    "worker_alive",
]

IDEMPOTENCY_KEY = "hitl_idempotency_key"
"""``config["configurable"]`` key holding the idempotency key of the gated call."""
REQUEST_ID_KEY = "hitl_request_id"
"""``config["configurable"]`` key holding the request id of the gated call."""


def idempotency_key_for(request_id: str) -> str:
    """The idempotency key of a gated action: stable across replays, re-runs and hosts."""
    return f"hitl-{request_id}"


def idempotency_key(config_or_runtime: Any) -> str | None:
    """The idempotency key the gate passed to this tool call, or ``None`` (not gated by a
    journaled gate). Accepts the tool's ``RunnableConfig`` or its ``ToolRuntime``."""
    config = getattr(config_or_runtime, "config", config_or_runtime)
    if not isinstance(config, Mapping):
        return None
    conf = config.get("configurable") or {}
    key = conf.get(IDEMPOTENCY_KEY) if isinstance(conf, Mapping) else None
    return None if key is None else str(key)


def pass_idempotency_key(config: Mapping[str, Any], request_id: str) -> None:
    """Put the key (and request id) into the call's own ``configurable`` dict, which is
    the dict the tool is invoked with (LangGraph copies it per tool call)."""
    conf = config.get("configurable")
    if isinstance(conf, dict):
        conf[IDEMPOTENCY_KEY] = idempotency_key_for(request_id)
        conf[REQUEST_ID_KEY] = request_id


def worker_alive(worker: str) -> bool | None:
    """Whether the process of a worker id (``host:pid:...``) still exists.

    ``None`` when it cannot be told (another host, or an id of another shape).
    """
    parts = worker.split(":")
    host = socket.gethostname()
    at = next((i for i in (0, 1) if i < len(parts) and parts[i] == host), None)
    if at is None or at + 1 >= len(parts):
        return None
    try:
        pid = int(parts[at + 1])
    except ValueError:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A killed child not yet reaped still answers ``kill(pid, 0)``; it is dead."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return True
    tail = stat.rsplit(")", 1)[-1].split()
    return not (tail and tail[0] in ("Z", "X"))


SETTLED_TEXT = "hitl-settled-text"
"""``result_type`` of a result a human gave with ``hitl recover --mark-done``: the
engine turns it into the tool's ``ToolMessage`` when the thread resumes."""


def settled_message(
    *, tool: str, tool_call_id: str, state: str, text: str | None, by: str | None = None
) -> ToolMessage:
    """The tool's output after a human settled a held execution, or after it failed."""
    who = f" by {by}" if by else ""
    if state == "done":
        content = (
            text
            if text is not None
            else (
                f"{tool} completed (marked done{who} after an interrupted run; no result recorded)"
            )
        )
        return ToolMessage(content, name=tool, tool_call_id=tool_call_id)
    content = text if text is not None else f"{tool} failed"
    if not content.startswith(tool):
        content = f"{tool} failed: {content}"
    return ToolMessage(content, name=tool, tool_call_id=tool_call_id, status="error")
