"""pytest plugin (``-p hitl_swap_hitl``): LangChain's ``HumanInTheLoopMiddleware`` name
constructs a :class:`hitl_langgraph.HITLMiddleware` with the same arguments.

``HITL_ECOSYSTEM_MODE=stock`` leaves LangChain's class alone. The white-box tests that
are deselected live in ``tests/ecosystem/test_langchain_hitl.py`` (one list, with
reasons), not here.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import langchain.agents
import langchain.agents.middleware  # noqa: F401
import langchain.agents.middleware.human_in_the_loop as _hitl

MODE = os.environ.get("HITL_ECOSYSTEM_MODE", "stock")
ORIGINAL = _hitl.HumanInTheLoopMiddleware
REPLACEMENT: Any = None
SWAPPED: list[str] = []

if MODE == "gated":
    from hitl_langgraph import HITLMiddleware, open_store

    class HumanInTheLoopMiddleware(HITLMiddleware):
        """LangChain's constructor signature, our middleware (memory store)."""

        def __init__(self, interrupt_on: Any, **kwargs: Any) -> None:
            super().__init__(interrupt_on=interrupt_on, store=open_store("memory://"), **kwargs)

    REPLACEMENT = HumanInTheLoopMiddleware
    for name, module in list(sys.modules.items()):
        if name.startswith("langchain") and getattr(
            module, "HumanInTheLoopMiddleware", None
        ) is ORIGINAL:
            module.HumanInTheLoopMiddleware = REPLACEMENT  # type: ignore[attr-defined]
            SWAPPED.append(name)
elif MODE != "stock":
    raise RuntimeError(f"unknown HITL_ECOSYSTEM_MODE {MODE!r}")


def pytest_report_header() -> str:
    cls = REPLACEMENT or ORIGINAL
    return f"hitl-ecosystem: mode={MODE} HumanInTheLoopMiddleware={cls.__module__}." + (
        f"{cls.__qualname__} swapped in {','.join(sorted(SWAPPED))}" if SWAPPED else
        f"{cls.__qualname__} not swapped"
    )
