"""Oversight simulator: all-sync / all-async / hybrid oversight on a virtual clock, real RiskPolicy.
It may import the policy layer, errors and the store's public read API; nothing from cli.

* :class:`Workload`, :class:`ReviewerPool`, :class:`Dist` describe the scenario;
* :func:`compare` runs all-sync, all-async and hybrid modes on one task stream;
* :func:`sweep` answers "how many reviewers, which threshold, for this SLA";
* :func:`load_history` replays a store's request history instead of a synthetic stream.

Everything runs on a virtual clock (no wall clock, no threads) and is deterministic for a
seed. ``hitl simulate`` is the command-line front end (:mod:`hitl_langgraph.sim.cli`).
"""

from __future__ import annotations

from .engine import ModeResult, simulate
from .model import SLA, Dist, ReviewerPool, Task, Tool, Workload, generate_tasks
from .modes import Mode, async_mode, hybrid_mode, route_tasks, sync_mode
from .replay import History, load_history
from .run import Comparison, SweepCell, SweepResult, compare, sweep

__all__ = [
    "SLA",
    "Comparison",
    "Dist",
    "History",
    "Mode",
    "ModeResult",
    "ReviewerPool",
    "SweepCell",
    "SweepResult",
    "Task",
    "Tool",
    "Workload",
    "async_mode",
    "compare",
    "generate_tasks",
    "hybrid_mode",
    "load_history",
    "route_tasks",
    "simulate",
    "sweep",
    "sync_mode",
]
