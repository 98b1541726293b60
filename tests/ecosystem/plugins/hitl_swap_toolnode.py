"""pytest plugin (loaded with ``-p hitl_swap_toolnode`` in a subprocess): replace
``langgraph.prebuilt.ToolNode`` under every name it is imported by.

``HITL_ECOSYSTEM_MODE``:

* ``stock``: nothing is replaced;
* ``control``: a do-nothing ``ToolNode`` subclass (proves the swap itself breaks nothing);
* ``gated``: a ``GatedToolNode`` whose policy routes every call ``auto`` (memory store).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import langgraph.prebuilt
import langgraph.prebuilt.chat_agent_executor  # noqa: F401  (holds its own ToolNode name)
import langgraph.prebuilt.tool_node as _tool_node

MODE = os.environ.get("HITL_ECOSYSTEM_MODE", "stock")
ORIGINAL = _tool_node.ToolNode


def _replacement() -> type | None:
    if MODE == "stock":
        return None
    if MODE == "control":

        class ControlToolNode(ORIGINAL):  # type: ignore[misc,valid-type]
            """Changes nothing."""

        return ControlToolNode
    if MODE == "gated":
        from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store

        class AllAutoGatedToolNode(GatedToolNode):
            """A ``GatedToolNode`` whose policy lets every call run."""

            def __init__(self, tools: Any, **kwargs: Any) -> None:
                super().__init__(
                    tools,
                    policy=RiskPolicy(rules=[Rule(tool="*", score=0.0)]),
                    store=open_store("memory://"),
                    **kwargs,
                )

        return AllAutoGatedToolNode
    raise RuntimeError(f"unknown HITL_ECOSYSTEM_MODE {MODE!r}")


REPLACEMENT = _replacement()
SWAPPED: list[str] = []
if REPLACEMENT is not None:
    for name, module in list(sys.modules.items()):
        if (name == "langgraph" or name.startswith(("langgraph.", "langchain."))) and getattr(
            module, "ToolNode", None
        ) is ORIGINAL:
            module.ToolNode = REPLACEMENT  # type: ignore[attr-defined]
            SWAPPED.append(name)


def pytest_report_header() -> str:
    cls = REPLACEMENT or ORIGINAL
    return f"hitl-ecosystem: mode={MODE} ToolNode={cls.__module__}.{cls.__qualname__} " + (
        f"swapped in {','.join(sorted(SWAPPED))}" if SWAPPED else "not swapped"
    )


def pytest_collection_finish(session: Any) -> None:
    # the test modules are imported now: each must see the replacement
    if REPLACEMENT is None:
        return
    for name, module in sys.modules.items():
        if getattr(module, "ToolNode", None) is ORIGINAL and name.startswith("tests"):
            raise RuntimeError(f"{name} still holds the stock ToolNode")
