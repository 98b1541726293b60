"""Jupyter: HTML rendering of requests, assessments and decisions, and the approval widget.

Layer 6: may import ``inbox``, ``gates``, ``store``, ``policy`` and the foundation; lower
layers reach it only through ``hitl_langgraph._display_hooks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._display_hooks import register_widget
from .._lazy import lazy_exports
from . import display as _display  # noqa: F401  (registers the HTML renderers)

if TYPE_CHECKING:
    from .display import configure, trace_url
    from .widget import ApprovalWidget

_NAMES = {"configure": ".display", "trace_url": ".display", "ApprovalWidget": ".widget"}

__getattr__, __dir__ = lazy_exports(__name__, _NAMES, globals())


def _widget(*args: Any, **kwargs: Any) -> Any:
    from .widget import ApprovalWidget  # ipywidgets (the ``notebook`` extra) loads here

    return ApprovalWidget(*args, **kwargs)


register_widget(_widget)

__all__ = ["ApprovalWidget", "configure", "trace_url"]
