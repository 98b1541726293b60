"""Old module paths (before the 0.2 layout) keep importing, with a DeprecationWarning.

``import hitl_langgraph.engine`` loads ``hitl_langgraph.gates.engine`` and registers it
under the old name too, so both names are the same module object. Remove in 0.3.
Foundation layer: imports nothing from the package at import time.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

__all__ = ["MOVED", "install"]

MOVED: dict[str, str] = {
    "hitl_langgraph.action": "hitl_langgraph.policy.action",
    "hitl_langgraph.engine": "hitl_langgraph.gates.engine",
    "hitl_langgraph.tool_node": "hitl_langgraph.gates.tool_node",
    "hitl_langgraph.gate": "hitl_langgraph.gates.gate",
    "hitl_langgraph.middleware": "hitl_langgraph.gates.middleware",
    "hitl_langgraph.decisions": "hitl_langgraph.gates.decisions",
    "hitl_langgraph.payload": "hitl_langgraph.gates.payload",
    "hitl_langgraph.events": "hitl_langgraph.gates.events",
    "hitl_langgraph.audit_export": "hitl_langgraph.audit.export",
    "hitl_langgraph.display": "hitl_langgraph.notebook.display",
    "hitl_langgraph.widget": "hitl_langgraph.notebook.widget",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self._new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self._new}; import it from there "
            "(the old path goes away in hitl-langgraph 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self._new)

    def exec_module(self, module: ModuleType) -> None:
        """The module is already executed under its new name."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
