"""Rich-display hooks: lower layers ask for HTML, the notebook layer answers.

Foundation layer: imports only ``hitl_langgraph.errors``. ``hitl_langgraph.notebook.display``
registers its renderers here when the package is imported, so ``policy``, ``store``,
``gates`` and ``inbox`` objects render in Jupyter without importing the notebook layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigurationError

__all__ = ["html_for", "make_widget", "register_html", "register_widget"]

_HTML: dict[str, Callable[..., str]] = {}
_WIDGET: list[Callable[..., Any]] = []


def register_html(kind: str, renderer: Callable[..., str]) -> None:
    """Render objects of ``kind`` (``"assessment"``, ``"record"``, ...) with ``renderer``."""
    _HTML[kind] = renderer


def html_for(kind: str, *args: Any, **kwargs: Any) -> str | None:
    """HTML for ``kind`` from the registered renderer; ``None`` (plain repr) without one."""
    renderer = _HTML.get(kind)
    return renderer(*args, **kwargs) if renderer is not None else None


def register_widget(factory: Callable[..., Any]) -> None:
    """The factory behind ``Inbox.widget()`` (the notebook layer's ``ApprovalWidget``)."""
    _WIDGET[:] = [factory]


def make_widget(*args: Any, **kwargs: Any) -> Any:
    """Build the approval widget through the registered factory."""
    if not _WIDGET:  # pragma: no cover - the package import registers it
        raise ConfigurationError("no notebook widget registered; import hitl_langgraph first")
    return _WIDGET[0](*args, **kwargs)
