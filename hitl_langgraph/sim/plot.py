"""PNG plots of a sweep or a comparison (needs the ``sim`` extra: matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, missing_dependency
from .run import Comparison, SweepResult

__all__ = ["plot_comparison", "plot_sweep"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise missing_dependency("matplotlib", "sim", exc) from exc
    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ConfigurationError(f"--plot {str(path)!r}: write a .png file, e.g. plan.png")
    try:
        fig.savefig(out, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise ConfigurationError(f"--plot: cannot write {out}: {exc}") from exc
    return out


def plot_sweep(result: SweepResult, path: str | Path) -> Path:
    """p95 latency added and irreversible errors per 1k, against reviewers, one line per
    mode; the SLA as a dashed line and the chosen cell circled."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    modes = list(dict.fromkeys(c.mode for c in result.cells))
    for mode in modes:
        cells = [c for c in result.cells if c.mode == mode]
        xs = [c.reviewers for c in cells]
        ax1.plot(xs, [max(c.result.latency_p95_s, 0.1) for c in cells], marker="o", label=mode)
        ax2.plot(xs, [c.result.to_dict()["irreversible_per_1k"] for c in cells], marker="o")
    if result.sla.latency_p95 is not None:
        ax1.axhline(result.sla.latency_p95, ls="--", color="grey", label="SLA p95")
    if result.sla.max_irreversible is not None:
        ax2.axhline(result.sla.max_irreversible, ls="--", color="grey")
    best = result.best
    if best is not None:
        ax1.plot(
            best.reviewers,
            max(best.result.latency_p95_s, 0.1),
            "o",
            ms=16,
            mfc="none",
            mec="red",
            label=f"chosen: {best.mode}, {best.reviewers} reviewer(s)",
        )
    counts = sorted({c.reviewers for c in result.cells})
    ax1.set_xticks(counts)
    ax2.set_xticks(counts)
    ax1.set_yscale("log")
    ax1.set_xlabel("reviewers")
    ax1.set_ylabel("latency added per task, p95 (s)")
    ax2.set_xlabel("reviewers")
    ax2.set_ylabel("irreversible errors reaching the world / 1k tasks")
    ax1.legend(fontsize=8)
    fig.suptitle(f"planning sweep — SLA: {result.sla}")
    return _save(fig, path)


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Gate queue and deferred-review queue over time, one line per mode."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for row in comparison.rows:
        hours = [s[0] for s in row.series]
        ax1.plot(hours, [s[1] for s in row.series], label=row.mode)
        ax2.plot(hours, [s[2] for s in row.series], label=row.mode)
    ax1.set_xlabel("hour")
    ax1.set_ylabel("actions waiting at a gate")
    ax2.set_xlabel("hour")
    ax2.set_ylabel("items waiting for deferred review")
    ax1.legend(fontsize=8)
    fig.suptitle(f"queues over time — {comparison.pool.count} reviewer(s), seed {comparison.seed}")
    return _save(fig, path)
