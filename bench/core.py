"""The benchmark runner: repeats, interleaving helpers, aggregation, tables, reports.

A comparison is a function ``run(ctx)`` that sets up once, then for each repeat
(``for rep in ctx.repeats(name)``) times its variants interleaved round by round and
records one sample per row with :meth:`Context.record`. The runner aggregates every
row's samples into median and min-max of each value and of the ratio, prints one rich
table, and writes ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(stderr=True)


@dataclass
class Row:
    comparison: str
    name: str
    ours: str
    baseline: str | None
    unit: str
    how: str
    ours_values: list[float] = field(default_factory=list)
    base_values: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    ratio_label: str = "ours / baseline"
    note: str = ""

    def summary(self) -> dict[str, Any]:
        def agg(xs: list[float]) -> dict[str, float] | None:
            if not xs:
                return None
            return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}

        return {
            "comparison": self.comparison,
            "row": self.name,
            "ours": self.ours,
            "baseline": self.baseline,
            "unit": self.unit,
            "how_matched": self.how,
            "ratio_label": self.ratio_label,
            "note": self.note,
            "repeats": len(self.ours_values),
            "ours_value": agg(self.ours_values),
            "baseline_value": agg(self.base_values),
            "ratio": agg(self.ratios),
            "samples": {
                "ours": self.ours_values,
                "baseline": self.base_values,
                "ratio": self.ratios,
            },
        }


class Context:
    def __init__(self, *, repeats: int, quick: bool, progress: Progress, task: Any) -> None:
        self.n_repeats = repeats
        self.quick = quick
        self.rows: dict[tuple[str, str], Row] = {}
        self.order: list[tuple[str, str]] = []
        self.progress = progress
        self.task = task
        self.skipped: list[tuple[str, str]] = []

    def repeats(self, comparison: str, n: int | None = None) -> Iterator[int]:
        n = self.n_repeats if n is None else n
        for rep in range(n):
            self.progress.update(self.task, description=f"{comparison}: repeat {rep + 1}/{n}")
            yield rep
        self.progress.advance(self.task)

    def log(self, msg: str) -> None:
        self.progress.console.print(f"[dim]{msg}[/dim]")

    def skip(self, comparison: str, why: str) -> None:
        self.skipped.append((comparison, why))
        self.log(f"{comparison}: skipped - {why}")

    def record(
        self,
        comparison: str,
        name: str,
        *,
        ours: float,
        base: float | None = None,
        ours_label: str,
        base_label: str | None = None,
        unit: str = "ms",
        how: str = "",
        ratio: float | None = None,
        ratio_label: str = "ours / baseline",
        note: str = "",
    ) -> None:
        key = (comparison, name)
        row = self.rows.get(key)
        if row is None:
            row = Row(comparison, name, ours_label, base_label, unit, how, ratio_label=ratio_label)
            self.rows[key] = row
            self.order.append(key)
        if note:
            row.note = note
        row.ours_values.append(ours)
        if base is not None:
            row.base_values.append(base)
        if ratio is None and base:
            ratio = ours / base
        if ratio is not None:
            row.ratios.append(ratio)


def interleave(
    variants: dict[str, Callable[[], Any]], rounds: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Time each variant ``rounds`` times, one call of each per round, rotating the order
    every round so drift and noise hit all alike; seconds per call."""
    names = list(variants)
    for _ in range(warmup):
        for n in names:
            variants[n]()
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t0 = time.perf_counter()
            variants[n]()
            out[n].append(time.perf_counter() - t0)
    return out


def med_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000.0


def timed_median(fn: Callable[[], Any], reps: int) -> float:
    """Median seconds of ``reps`` calls."""
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# -- output ------------------------------------------------------------------------------
def _num(v: float, unit: str) -> str:
    if unit in ("ms", "s", "runs/s", "µs"):
        if v >= 100:
            return f"{v:,.0f} {unit}"
        if v >= 10:
            return f"{v:.1f} {unit}"
        return f"{v:.2f} {unit}"
    return f"{v:,.3g} {unit}"


def _r(x: float) -> str:
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def _cells(s: dict[str, Any]) -> tuple[str, str, str]:
    ov, bv, r = s["ours_value"], s["baseline_value"], s["ratio"]
    ours = _num(ov["median"], s["unit"]) if ov else "-"
    base = _num(bv["median"], s["unit"]) if bv else "-"
    ratio = f"{_r(r['median'])}× ({_r(r['min'])}–{_r(r['max'])})" if r else "-"
    return ours, base, ratio


def print_table(summaries: list[dict[str, Any]], out: Console) -> None:
    table = Table(title="hitl-langgraph benchmark (median of repeats; ratio median (min–max))")
    for col in ("comparison", "row", "ours", "baseline", "ratio", "n", "how matched"):
        table.add_column(col, overflow="fold")
    for s in summaries:
        ours, base, ratio = _cells(s)
        what = f"{s['ours']} vs {s['baseline']}" if s["baseline"] else s["ours"]
        how = s["how_matched"] + (f" [{s['ratio_label']}]" if s["ratio"] else "")
        if s["note"]:
            how += f" NOTE: {s['note']}"
        table.add_row(
            s["comparison"],
            f"{s['row']}\n[dim]{what}[/dim]",
            ours,
            base,
            ratio,
            str(s["repeats"]),
            how,
        )
    out.print(table)


def markdown(summaries: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured with `{meta['command']}` on {meta['machine']} ({meta['cpus']} cores), "
        f"{meta['date']}, {meta['repeats']} repeats, {meta['elapsed_s']:.0f} s in all. "
        "Values are medians over repeats; the ratio is the median (min–max) of the "
        "per-repeat ratios.",
        "",
        "| comparison | row | ours | baseline | ratio | how matched |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        ours, base, ratio = _cells(s)
        what = f"{s['ours']} vs {s['baseline']}" if s["baseline"] else s["ours"]
        how = s["how_matched"] + (f" (ratio: {s['ratio_label']})" if s["ratio"] else "")
        if s["note"]:
            how += f" **{s['note']}**"
        cells = [s["comparison"], f"{s['row']}<br><sub>{what}</sub>", ours, base, ratio, how]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_reports(
    out_dir: Path, summaries: list[dict[str, Any]], meta: dict[str, Any]
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    j = out_dir / "report.json"
    m = out_dir / "report.md"
    j.write_text(json.dumps({"meta": meta, "rows": summaries}, indent=2, default=str))
    m.write_text(markdown(summaries, meta))
    return j, m


def machine_meta(argv: list[str], repeats: int, elapsed: float) -> dict[str, Any]:
    return {
        "command": "python -m bench " + " ".join(argv),
        "machine": f"{platform.system()} {platform.machine()}, Python {sys.version.split()[0]}",
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "repeats": repeats,
        "elapsed_s": elapsed,
    }


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} comparisons"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
