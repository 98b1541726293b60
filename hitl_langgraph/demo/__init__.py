"""``hitl demo``: both oversight models end to end, on a fresh machine, in one command.

Layer: the same as ``cli`` (the top); may import every room below it: ``gates``,
``inbox``, ``store``, ``tracing``, ``review``, ``feedback`` and the foundation. Nothing in
the package imports it except ``cli``.

What it does (see :func:`run_demo`): starts a local ``phoenix serve`` (unless given a
URL), runs a small payments-and-support agent over a batch of customer requests
(lookups run unattended, refunds run and are sampled for review in Phoenix, large
transfers pause for approval, one forbidden action is denied), asks the person at the
terminal (or a deterministic ``auto`` reviewer) to decide the paused transfers, resumes
them from their SQLite checkpoints with a fresh graph object, plays one verdict and one
guidance note through the Phoenix review queue, shows that guidance in the next run's
prompt, and prints a summary (what ran, waited, was denied; the audit check; the Phoenix
review URL; the next command to try).

Modules: :mod:`.agent` (tools, policy, scripted model, graph), :mod:`.run` (the
scenario), :mod:`.cli` (``register``/``run`` for the ``hitl`` parser).
"""

from __future__ import annotations

from .agent import REQUESTS, build_app, demo_policy
from .run import DemoOptions, DemoSummary, run_demo

__all__ = ["REQUESTS", "DemoOptions", "DemoSummary", "build_app", "demo_policy", "run_demo"]
