"""``hitl simulate``: compare oversight modes, plan staffing, replay a store's history.

::

    hitl simulate                                  # the seed: 20 s gate, 1 reviewer, saturated
    hitl simulate --rate 600 --hours 9-17 --decision lognormal:45:0.6
    hitl simulate --sweep --reviewers 4 --sla p95=5m,irreversible=2 --plot plan.png
    hitl simulate --replay sqlite:///hitl.db --irreversible 'transfer_*' --thresholds 0.6,0.8
    hitl simulate --json

:func:`register` adds the command to ``hitl``'s sub-parsers; :func:`run` executes it.
Exit codes as in ``hitl``: 0 ok, 1 error (or: no swept configuration meets the SLA),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["main", "register", "run"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add ``simulate`` to ``parser.add_subparsers()``'s result."""
    text = "simulate sync / async / hybrid oversight; plan reviewers and thresholds"
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help=text,
        description=text,
        epilog="exit codes: 0 ok, 1 error or SLA not met by any swept configuration, 2 usage",
    )
    w = p.add_argument_group("workload")
    w.add_argument("--tasks", type=int, default=10_000, help="tasks to simulate (10000)")
    w.add_argument(
        "--rate",
        metavar="PER_HOUR",
        default="saturated",
        help="Poisson arrivals per hour, or 'saturated' (default: a backlog)",
    )
    w.add_argument("--agents", type=int, default=8, help="parallel agents; 0 = unlimited (8)")
    w.add_argument(
        "--work",
        default="exp:20",
        metavar="DIST",
        help="agent time per task: 20, fixed:20, exp:20, lognormal:20:0.5 (exp:20)",
    )
    w.add_argument("--risk", default="2,5", metavar="A,B", help="Beta(A, B) of risk (2,5)")
    w.add_argument(
        "--errors",
        default="0.01,0.5",
        metavar="LOW,HIGH",
        help="error probability at risk 0 and at risk 1 (0.01,0.5)",
    )
    w.add_argument(
        "--high-risk",
        type=float,
        default=0.7,
        metavar="SCORE",
        help="risk above this counts as high-risk in the report (0.7)",
    )
    r = p.add_argument_group("reviewers")
    r.add_argument(
        "--reviewers",
        default="1",
        metavar="N[,N...]",
        help="reviewer count; with --sweep, N means 1..N, or list counts (1)",
    )
    r.add_argument("--hours", default="24h", help="working hours: 24h or START-END, e.g. 9-17")
    r.add_argument("--weekdays", action="store_true", help="no reviews on weekends")
    r.add_argument(
        "--decision", default="fixed:20", metavar="DIST", help="time to decide one gate (fixed:20)"
    )
    r.add_argument(
        "--batch-item",
        default="fixed:6",
        metavar="DIST",
        help="time per item of batched deferred review (fixed:6)",
    )
    r.add_argument("--batch-size", type=int, default=20, help="items per review batch (20)")
    r.add_argument(
        "--recall", type=float, default=0.9, help="chance a reviewer notices a wrong action (0.9)"
    )
    r.add_argument(
        "--sample-rate",
        type=float,
        default=0.25,
        help="share of review-routed actions sampled for a human (0.25)",
    )
    r.add_argument(
        "--expiry",
        type=float,
        default=72.0,
        metavar="HOURS",
        help="drop deferred items unreviewed this long; 0 = never (72)",
    )
    m = p.add_argument_group("modes")
    m.add_argument("--mode", default="all", help="sync, async, hybrid or all (comma list)")
    m.add_argument(
        "--thresholds",
        default="0.5,0.7,0.85",
        metavar="T[,T...]",
        help="hybrid approve thresholds (0.5,0.7,0.85)",
    )
    m.add_argument(
        "--review-threshold",
        type=float,
        default=0.3,
        metavar="SCORE",
        help="hybrid: above this (and not gated) runs with deferred review (0.3)",
    )
    m.add_argument(
        "--deny",
        type=float,
        default=None,
        metavar="SCORE",
        help="hybrid: deny actions scored above this",
    )
    m.add_argument(
        "--factor",
        type=float,
        default=3.0,
        help="hybrid must keep 1/FACTOR of all-async throughput (3)",
    )
    o = p.add_argument_group("planning, replay, output")
    o.add_argument("--sweep", action="store_true", help="sweep reviewers x modes")
    o.add_argument(
        "--sla",
        metavar="SPEC",
        help="with --sweep: p95=5m,throughput=1000,irreversible=2,unreviewed=50",
    )
    o.add_argument("--plot", metavar="FILE.png", help="save a plot (needs hitl-langgraph[sim])")
    o.add_argument("--replay", metavar="STORE_URL", help="replay this store's request history")
    o.add_argument(
        "--irreversible",
        action="append",
        default=[],
        metavar="GLOB",
        help="replay: irreversible tools (repeat; default: every tool)",
    )
    o.add_argument("--seed", type=int, default=0, help="random seed (0)")
    o.add_argument("--series", action="store_true", help="--json: include hourly queue series")
    o.add_argument("--no-progress", action="store_true", help="no progress bar on sweeps")
    o.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable JSON output",
    )
    p.set_defaults(hitl_sim=True)


def _floats(text: str, what: str, n: int | None = None) -> list[float]:
    from ..errors import ConfigurationError

    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigurationError(f"{what} {text!r}: write numbers separated by commas") from None
    if not values or (n is not None and len(values) != n):
        count = "some" if n is None else str(n)
        raise ConfigurationError(f"{what} {text!r}: expected {count} comma-separated numbers")
    return values


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


class _Setup:
    """Parsed arguments as model objects (every check raises ConfigurationError)."""

    def __init__(self, a: argparse.Namespace) -> None:
        from ..errors import ConfigurationError
        from .model import Dist, ReviewerPool, Workload
        from .run import default_modes

        counts = [int(x) for x in _floats(a.reviewers, "--reviewers")]
        if a.sweep and len(counts) == 1:
            counts = list(range(1, counts[0] + 1))
        if not a.sweep and len(counts) > 1:
            raise ConfigurationError(
                f"--reviewers {a.reviewers}: several counts need --sweep (or give one count)"
            )
        if a.sla and not a.sweep:
            raise ConfigurationError("--sla applies to a sweep: add --sweep")
        self.counts = counts
        rate = None if a.rate.strip().lower() == "saturated" else _floats(a.rate, "--rate", 1)[0]
        alpha, beta = _floats(a.risk, "--risk", 2)
        low, high = _floats(a.errors, "--errors", 2)
        self.workload = Workload(
            tasks=a.tasks,
            arrivals_per_hour=rate,
            agents=a.agents or None,
            work=Dist.parse(a.work, "--work"),
            risk_alpha=alpha,
            risk_beta=beta,
            error_low=low,
            error_high=high,
            high_risk=a.high_risk,
        )
        self.pool = ReviewerPool(
            count=counts[0],
            hours=ReviewerPool.parse_hours(a.hours),
            weekdays_only=a.weekdays,
            decision=Dist.parse(a.decision, "--decision"),
            batch_item=Dist.parse(a.batch_item, "--batch-item"),
            batch_size=a.batch_size,
            recall=a.recall,
            sample_rate=a.sample_rate,
            expiry_hours=a.expiry or None,
        )
        which = [x.strip().lower() for x in a.mode.split(",") if x.strip()]
        if "all" in which:
            which = ["sync", "async", "hybrid"]
        self.modes = default_modes(
            _floats(a.thresholds, "--thresholds") if "hybrid" in which else (),
            review=a.review_threshold,
            deny=a.deny,
            which=which,
        )


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute a parsed ``simulate`` command; returns the exit code."""
    from ..errors import ConfigurationError, HitlError

    out = out or sys.stdout
    err = err or sys.stderr
    as_json = bool(getattr(args, "json", False))
    try:
        return _run(args, out, err, as_json)
    except ConfigurationError as exc:
        return _fail(out, err, as_json, exc, EXIT_USAGE)
    except (HitlError, ImportError) as exc:
        return _fail(out, err, as_json, exc, EXIT_ERROR)


def _fail(out: TextIO, err: TextIO, as_json: bool, exc: BaseException, code: int) -> int:
    err.write(f"hitl: {'usage error' if code == EXIT_USAGE else 'error'}: {exc}\n")
    if as_json:
        out.write(_dumps({"error": type(exc).__name__, "message": str(exc), "exit_code": code}))
    return code


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def _run(a: argparse.Namespace, out: TextIO, err: TextIO, as_json: bool) -> int:
    from .replay import load_history
    from .run import compare, sweep

    s = _Setup(a)
    tasks = None
    history = None
    workload = s.workload
    if a.replay:
        history = load_history(a.replay, s.pool, irreversible=a.irreversible or ("*",), seed=a.seed)
        tasks = history.tasks
        workload = history.workload(high_risk=a.high_risk)
    head: dict[str, Any] = {} if history is None else {"replay": history.to_dict()}
    if a.sweep:
        from .model import SLA

        sla = SLA.parse(a.sla) if a.sla else SLA()
        result = sweep(
            workload,
            s.pool,
            s.counts,
            s.modes,
            sla,
            seed=a.seed,
            tasks=tasks,
            progress=not (as_json or a.no_progress),
        )
        if a.plot:
            from .plot import plot_sweep

            plot_sweep(result, a.plot)
        if as_json:
            out.write(_dumps({**head, **result.to_dict(), "plot": a.plot}))
        else:
            _print_sweep(out, result, history, a.plot, workload, s.pool)
        return EXIT_OK if result.best is not None else EXIT_ERROR
    comparison = compare(workload, s.pool, s.modes, seed=a.seed, tasks=tasks, factor=a.factor)
    if a.plot:
        from .plot import plot_comparison

        plot_comparison(comparison, a.plot)
    if as_json:
        out.write(_dumps({**head, **comparison.to_dict(series=a.series), "plot": a.plot}))
    else:
        _print_comparison(out, comparison, history, a.plot)
    return EXIT_OK


# -- terminal output ---------------------------------------------------------------------


def _console(out: TextIO) -> Any:
    from rich.console import Console

    width = shutil.get_terminal_size((200, 24)).columns if out.isatty() else 200
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def _row_cells(r: Any) -> list[str]:
    d = r.to_dict()
    ttc = "-" if not r.caught_after else _duration(r.time_to_catch_median_s)
    return [
        r.mode,
        f"{d['gated_share']:.1%}",
        f"{_duration(r.latency_median_s)} / {_duration(r.latency_p95_s)}",
        f"{r.throughput_per_hour:,.0f}",
        f"{r.human_minutes_per_1k:,.0f}",
        f"{r.utilisation:.0%}",
        f"{r.gate_queue_mean:,.1f} / {r.review_queue_mean:,.1f}",
        f"{r.prevented}",
        f"{r.caught_after} ({ttc})",
        f"{r.missed}",
        f"{r.never_reviewed}",
        f"{r.irreversible_reached} ({r.high_risk_irreversible_reached})",
    ]


_HEADERS = [
    "mode",
    "gated",
    "latency added p50/p95",
    "tasks/h",
    "human min/1k",
    "util",
    "queue gate/review",
    "prevented",
    "caught after (median)",
    "missed",
    "never reviewed",
    "irreversible reached (high-risk)",
]


def _table(title: str, extra: Sequence[str] = ()) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, h in enumerate([*_HEADERS[:1], *extra, *_HEADERS[1:]]):
        table.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
    return table


def _scenario(console: Any, workload: Any, pool: Any, history: Any) -> None:
    if history is not None:
        h = history
        console.print(
            f"replay of {h.url}: {len(h.tasks)} requests over {h.span_hours:.1f}h, recorded "
            f"routes {h.recorded_routes}; known wrong {h.known_wrong}, right {h.known_right}, "
            f"unknown {h.unknown} (simulated as right)"
        )
    else:
        rate = "saturated" if workload.saturated else f"{workload.arrivals_per_hour:g}/h"
        agents = "unlimited" if workload.agents is None else workload.agents
        console.print(
            f"{workload.tasks} tasks, arrivals {rate}, {agents} agents, work {workload.work}, "
            f"risk Beta({workload.risk_alpha:g},{workload.risk_beta:g}), errors "
            f"{workload.error_low:g}..{workload.error_high:g} by risk"
        )
    hours = "24h" if pool.hours is None else f"{pool.hours[0]:g}-{pool.hours[1]:g}"
    console.print(
        f"reviewers: {pool.count}, hours {hours}, gate decision {pool.decision}, batch review "
        f"{pool.batch_item}/item x{pool.batch_size}, recall {pool.recall:g}, "
        f"sampled {pool.sample_rate:.0%} of review-routed"
    )


def _print_comparison(out: TextIO, c: Any, history: Any, plot: str | None) -> None:
    console = _console(out)
    _scenario(console, c.workload, c.pool, history)
    table = _table(f"oversight modes (seed {c.seed})")
    for r in c.rows:
        table.add_row(*_row_cells(r))
    console.print(table)
    sync = c.row("sync")
    for v in c.verdicts():
        row = next(r for r in c.rows if r.mode == v["mode"])
        parts = []
        if v["as_safe_as_sync"] is not None and sync is not None:
            parts.append(
                f"high-risk irreversible errors reaching the world "
                f"{row.high_risk_irreversible_reached} vs all-sync "
                f"{sync.high_risk_irreversible_reached}"
            )
        if v["throughput_vs_async"] is not None:
            parts.append(f"{v['throughput_vs_async']:.0%} of all-async throughput")
        verdict = "best of both" if v["best_of_both"] else "not best of both"
        console.print(f"{v['mode']}: {'; '.join(parts)} -> {verdict}")
    if plot:
        console.print(f"plot saved to {plot}")


def _print_sweep(
    out: TextIO, result: Any, history: Any, plot: str | None, workload: Any, pool: Any
) -> None:
    console = _console(out)
    _scenario(console, workload, pool, history)
    table = _table(f"planning sweep — SLA: {result.sla or 'none'}", ["reviewers", "meets SLA"])
    best = result.best
    for c in result.cells:
        cells = _row_cells(c.result)
        mark = "yes" if c.meets else "no: " + "; ".join(c.misses)
        if c is best:
            cells[0] = f"[bold]{cells[0]} <- cheapest[/bold]"
        table.add_row(cells[0], str(c.reviewers), mark, *cells[1:])
    console.print(table)
    if best is None:
        console.print(
            "no configuration meets the SLA: sweep more reviewers (--reviewers N), lower "
            "thresholds, or relax the SLA"
        )
    else:
        console.print(
            f"cheapest meeting the SLA: {best.reviewers} reviewer(s), {best.mode} "
            f"(p95 added {_duration(best.result.latency_p95_s)}, "
            f"{best.result.throughput_per_hour:,.0f} tasks/h, "
            f"{best.result.irreversible_reached} irreversible errors reached)"
        )
    if plot:
        console.print(f"plot saved to {plot}")


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``python -m hitl_langgraph.sim.cli ...``: the command on its own."""
    parser = argparse.ArgumentParser(prog="hitl", description="hitl-langgraph simulator")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return run(parser.parse_args(argv), out=out, err=err)


if __name__ == "__main__":
    sys.exit(main())
