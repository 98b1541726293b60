"""Oversight modes as real :class:`~hitl_langgraph.RiskPolicy` objects, and routing tasks.

The simulator never re-implements thresholds: each task becomes an
:class:`~hitl_langgraph.Action` (its tool name, ``args={"risk": ..., "irreversible": ...}``)
and the mode's policy assesses it, so rules, forced routes, ``deny`` and the strict
"score above the threshold" semantics are the package's own. Any policy works: pass
``Mode("mine", my_policy)`` and its rules see the task's tool and args.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..policy import Action, RiskPolicy, Rule, Thresholds
from .model import Task

__all__ = ["Mode", "async_mode", "hybrid_mode", "risk_score", "route_tasks", "sync_mode"]


def risk_score(args: Mapping[str, Any]) -> float:
    """The rule score of a simulated action: its true risk (``args["risk"]``)."""
    return float(args["risk"])


@dataclass(frozen=True)
class Mode:
    """A named oversight mode: ``kind`` is ``sync``, ``async``, ``hybrid`` or ``custom``;
    ``threshold`` the approve threshold of a hybrid (for tables and plots)."""

    name: str
    policy: RiskPolicy
    kind: str = "custom"
    threshold: float | None = None


def sync_mode() -> Mode:
    """Every action waits at a blocking gate (a rule forces route ``approve``)."""
    rule = Rule(tool="*", score=risk_score, route="approve", name="sync: gate every action")
    return Mode("all-sync", RiskPolicy([rule]), "sync")


def async_mode() -> Mode:
    """Every action runs at once; a sample is reviewed later (forced route ``review``)."""
    rule = Rule(tool="*", score=risk_score, route="review", name="async: review afterwards")
    return Mode("all-async", RiskPolicy([rule]), "async")


def hybrid_mode(threshold: float, *, review: float = 0.3, deny: float | None = None) -> Mode:
    """Risk routing: above ``threshold`` blocks, above ``review`` runs and is reviewed
    later, the rest runs unreviewed; above ``deny`` (if given) never runs."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigurationError(f"a hybrid threshold must be in [0, 1], got {threshold!r}")
    thresholds = Thresholds(review=min(review, threshold), approve=threshold, deny=deny)
    policy = RiskPolicy([Rule(tool="*", score=risk_score, name="risk")], thresholds=thresholds)
    name = f"hybrid >{threshold:g}" + ("" if deny is None else f" deny>{deny:g}")
    return Mode(name, policy, "hybrid", threshold)


def route_tasks(policy: RiskPolicy, tasks: Sequence[Task]) -> list[str]:
    """The route ``policy`` gives each task (``auto``, ``review``, ``approve``, ``deny``)."""
    return [policy.assess(Action(tool=t.tool, args=t.args)).route for t in tasks]
