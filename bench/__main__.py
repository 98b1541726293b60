"""``python -m bench``: every comparison, side by side, matched, repeated.

    python -m bench                       # full run (~8-10 min on 2 cores), 5 repeats
    python -m bench --quick               # short run (~2 min), 2 repeats
    python -m bench --only gate,scale     # some comparisons
    python -m bench --out DIR             # report.json + report.md (default bench-results/)

Each comparison runs in this one process; within a repeat its variants alternate round
by round (rotating order), so machine noise hits them alike. The table gives the median
of the repeats and the median (min-max) of the per-repeat ratios; the "how matched"
column says what was held equal. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console

from .core import Context, console, machine_meta, make_progress, print_table, write_reports

COMPARISONS: dict[str, str] = {
    "gate": "bench.cmp_gate",
    "middleware": "bench.cmp_middleware",
    "inbox": "bench.cmp_inbox",
    "scale": "bench.cmp_scale",
    "tracing": "bench.cmp_tracing",
    "throughput": "bench.cmp_throughput",
    "feedback": "bench.cmp_feedback",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short run: fewer rounds, sizes, repeats")
    p.add_argument(
        "--repeats", type=int, default=None, help="repeats per comparison (default 5; --quick 2)"
    )
    p.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(COMPARISONS)}"
    )
    p.add_argument("--out", default="bench-results", help="directory for report.json and report.md")
    p.add_argument("--list", action="store_true", help="list the comparisons and exit")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    a = p.parse_args(argv)
    if a.list:
        for name, mod in COMPARISONS.items():
            doc = (importlib.import_module(mod).__doc__ or "").strip().splitlines()[0]
            print(f"{name:<11} {doc}")
        return 0
    chosen = [c.strip() for c in a.only.split(",") if c.strip()] or list(COMPARISONS)
    unknown = [c for c in chosen if c not in COMPARISONS]
    if unknown:
        p.error(f"unknown comparison(s) {', '.join(unknown)}; choose from {', '.join(COMPARISONS)}")
    repeats = a.repeats or (2 if a.quick else 5)
    if repeats < 1:
        p.error("--repeats must be at least 1")
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)
    logging.getLogger("hitl_langgraph").setLevel(logging.ERROR)
    started = time.monotonic()
    failed: list[str] = []
    with make_progress() as progress:
        task = progress.add_task("starting", total=0)
        ctx = Context(repeats=repeats, quick=a.quick, progress=progress, task=task)
        for name in chosen:
            mod = importlib.import_module(COMPARISONS[name])
            parts = getattr(mod, "PARTS", 1)
            progress.update(task, total=(progress.tasks[0].total or 0) + parts)
            t0 = time.monotonic()
            try:
                mod.run(ctx)
            except Exception:
                failed.append(name)
                console.print(f"[red]{name} failed:[/red]\n{traceback.format_exc()}")
            ctx.log(f"{name}: {time.monotonic() - t0:.0f} s")
        progress.update(task, description="done")
        from .phoenix import stop

        stop()
    elapsed = time.monotonic() - started
    summaries = [ctx.rows[k].summary() for k in ctx.order]
    meta = machine_meta(argv, repeats, elapsed)
    meta["skipped"] = [{"comparison": c, "why": w} for c, w in ctx.skipped]
    meta["failed"] = failed
    j, m = write_reports(Path(a.out), summaries, meta)
    if a.json:
        print(j.read_text())
    else:
        print_table(summaries, Console(width=None if sys.stdout.isatty() else 200))
    for c, w in ctx.skipped:
        console.print(f"[yellow]skipped[/yellow] {c}: {w}")
    console.print(f"{len(summaries)} rows in {elapsed:.0f} s; wrote {j} and {m}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
