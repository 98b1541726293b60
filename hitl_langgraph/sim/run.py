"""Mode comparisons and the planning sweep on top of the engine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigurationError
from .engine import ModeResult, simulate
from .model import SLA, ReviewerPool, Task, Workload, generate_tasks
from .modes import Mode, async_mode, hybrid_mode, route_tasks, sync_mode

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Comparison",
    "SweepCell",
    "SweepResult",
    "compare",
    "default_modes",
    "sweep",
]

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.85)


def default_modes(
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    review: float = 0.3,
    deny: float | None = None,
    which: Sequence[str] = ("sync", "async", "hybrid"),
) -> list[Mode]:
    """All-sync, all-async and one hybrid per threshold (those named in ``which``)."""
    unknown = set(which) - {"sync", "async", "hybrid"}
    if unknown:
        raise ConfigurationError(
            f"unknown mode(s) {sorted(unknown)}: choose from sync, async, hybrid, all"
        )
    modes: list[Mode] = []
    if "sync" in which:
        modes.append(sync_mode())
    if "async" in which:
        modes.append(async_mode())
    if "hybrid" in which:
        if not thresholds:
            raise ConfigurationError("hybrid mode needs thresholds, e.g. --thresholds 0.5,0.7")
        modes += [hybrid_mode(t, review=review, deny=deny) for t in thresholds]
    return modes


@dataclass
class Comparison:
    """Every mode on the same task stream, and whether hybrid gets the best of both."""

    workload: Workload
    pool: ReviewerPool
    seed: int
    rows: list[ModeResult]
    factor: float = 3.0

    def row(self, kind: str) -> ModeResult | None:
        return next((r for r in self.rows if r.kind == kind), None)

    def verdicts(self) -> list[dict[str, Any]]:
        """Per hybrid row: does it let through no more irreversible high-risk errors than
        all-sync, and keep at least 1/``factor`` of all-async throughput?"""
        sync, asyn = self.row("sync"), self.row("async")
        out = []
        for r in self.rows:
            if r.kind != "hybrid":
                continue
            safe = (
                None
                if sync is None
                else (r.high_risk_irreversible_reached <= sync.high_risk_irreversible_reached)
            )
            ratio = None if asyn is None else r.throughput_per_hour / asyn.throughput_per_hour
            fast = None if ratio is None else ratio >= 1.0 / self.factor
            out.append(
                {
                    "mode": r.mode,
                    "threshold": r.threshold,
                    "as_safe_as_sync": safe,
                    "throughput_vs_async": ratio,
                    "within_factor": fast,
                    "best_of_both": bool(safe and fast),
                }
            )
        return out

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "workload": _describe(self.workload),
            "reviewers": _describe(self.pool),
            "factor": self.factor,
            "rows": [r.to_dict(series=series) for r in self.rows],
            "verdicts": self.verdicts(),
        }


def _describe(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.__dict__.items():
        if k == "tools":
            out[k] = [
                {"name": t.name, "weight": t.weight, "irreversible": t.irreversible} for t in v
            ]
        elif isinstance(v, (int, float, str, bool, type(None))):
            out[k] = v
        else:
            out[k] = str(v) if not isinstance(v, tuple) else list(v)
    return out


def compare(
    workload: Workload,
    pool: ReviewerPool,
    modes: Sequence[Mode] | None = None,
    *,
    seed: int = 0,
    tasks: Sequence[Task] | None = None,
    factor: float = 3.0,
) -> Comparison:
    """Run each mode (default: :func:`default_modes`) on the same tasks."""
    stream = list(tasks) if tasks is not None else generate_tasks(workload, pool, seed)
    rows = [
        simulate(
            stream,
            route_tasks(m.policy, stream),
            workload,
            pool,
            mode=m.name,
            kind=m.kind,
            threshold=m.threshold,
        )
        for m in (modes if modes is not None else default_modes())
    ]
    return Comparison(workload, pool, seed, rows, factor)


@dataclass
class SweepCell:
    reviewers: int
    mode: str
    threshold: float | None
    result: ModeResult
    misses: list[str]

    @property
    def meets(self) -> bool:
        return not self.misses


@dataclass
class SweepResult:
    """Every (reviewers, mode) cell and the cheapest that meets the SLA.

    Cheapest: fewest reviewers; among those, fewest irreversible errors reaching the
    world, then the lowest p95 latency added.
    """

    sla: SLA
    cells: list[SweepCell] = field(default_factory=list)

    @property
    def best(self) -> SweepCell | None:
        ok = [c for c in self.cells if c.meets]
        if not ok:
            return None
        return min(
            ok,
            key=lambda c: (
                c.reviewers,
                c.result.irreversible_reached,
                c.result.latency_p95_s,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "sla": {k: v for k, v in self.sla.__dict__.items() if v is not None},
            "best": None
            if best is None
            else {"reviewers": best.reviewers, "mode": best.mode, "threshold": best.threshold},
            "cells": [
                {
                    "reviewers": c.reviewers,
                    "mode": c.mode,
                    "threshold": c.threshold,
                    "meets": c.meets,
                    "misses": c.misses,
                    **{
                        k: v
                        for k, v in c.result.to_dict().items()
                        if k not in ("mode", "reviewers", "threshold")
                    },
                }
                for c in self.cells
            ],
        }


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        job = bar.add_task("simulating", total=total)
        yield lambda: bar.advance(job)


def sweep(
    workload: Workload,
    pool: ReviewerPool,
    reviewers: Sequence[int],
    modes: Sequence[Mode],
    sla: SLA,
    *,
    seed: int = 0,
    tasks: Sequence[Task] | None = None,
    progress: bool = False,
) -> SweepResult:
    """Simulate every reviewer count with every mode; see :attr:`SweepResult.best`.

    The task stream and each mode's routes are computed once and shared by all cells."""
    if not reviewers or any(r < 1 for r in reviewers):
        raise ConfigurationError(f"--reviewers needs counts >= 1, got {list(reviewers)}")
    if not modes:
        raise ConfigurationError("a sweep needs at least one mode")
    stream = list(tasks) if tasks is not None else generate_tasks(workload, pool, seed)
    routed = [(m, route_tasks(m.policy, stream)) for m in modes]
    result = SweepResult(sla)
    with _progress(len(reviewers) * len(routed), progress) as advance:
        for count in reviewers:
            staffed = replace(pool, count=count)
            for mode, routes in routed:
                row = simulate(
                    stream,
                    routes,
                    workload,
                    staffed,
                    mode=mode.name,
                    kind=mode.kind,
                    threshold=mode.threshold,
                )
                result.cells.append(
                    SweepCell(count, mode.name, mode.threshold, row, sla.misses(row.to_dict()))
                )
                advance()
    return result
