"""The ``hitl`` command line: list, show, decide, sweep, reconcile, audit.

Layer 11 (top): may import every other room.

Installed as the ``hitl`` console script; also runnable as ``python -m hitl_langgraph.cli``.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
