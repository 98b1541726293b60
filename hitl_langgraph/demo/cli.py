"""``hitl demo``: the command-line face of :func:`~hitl_langgraph.demo.run_demo`.

::

    hitl demo                        # starts Phoenix, asks you to decide each paused transfer
    hitl demo --reviewer auto        # unattended: approve, edit, reject in turn
    hitl demo --reset --data ./hitl-demo --keep-phoenix
    hitl demo --phoenix-url http://127.0.0.1:6006 --model openai:gpt-4o-mini

:func:`register` adds the command to ``hitl``'s sub-parsers; :func:`run` executes it.
Exit codes as in ``hitl``: 0 ok, 1 error (or the audit trail failed verification),
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

__all__ = ["register", "render_summary", "run"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    """Add ``demo`` to ``parser.add_subparsers()``'s result."""
    text = "run a payments agent under both oversight models, end to end (starts Phoenix)"
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help=text, description=text, epilog="exit codes: 0 ok, 1 error, 2 usage"
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("hitl-demo"),
        metavar="DIR",
        help="folder for the store, checkpoints, ledger and Phoenix's data (./hitl-demo)",
    )
    p.add_argument("--reset", action="store_true", help="delete the data folder first")
    p.add_argument(
        "--reviewer",
        choices=["ask", "auto"],
        default="ask",
        help="ask: you decide each paused transfer; auto: approve, edit, reject in turn",
    )
    p.add_argument("--phoenix-url", metavar="URL", help="use this Phoenix instead of starting one")
    p.add_argument(
        "--keep-phoenix", action="store_true", help="leave the Phoenix it started running"
    )
    p.add_argument(
        "--model",
        metavar="PROVIDER:NAME",
        help="a real chat model via init_chat_model (default: an offline scripted model)",
    )
    p.add_argument("--project", default="hitl-demo", help="Phoenix project (hitl-demo)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def run(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    """Execute ``hitl demo``; returns the exit code."""
    from ..errors import ConfigurationError, HitlError
    from .run import DemoOptions, run_demo

    as_json = bool(getattr(args, "json", False))
    console = Console(file=err if as_json else out, highlight=False)
    stdin = sys.stdin

    def ask(question: str, choices: list[str], default: str) -> str:
        hint = (f" [{'/'.join(choices)}]" if choices else "") + (f" ({default})" if default else "")
        while True:
            console.print(escape(question + hint) + " ", end="")
            console.file.flush()
            line = stdin.readline()
            if line == "":  # end of input: nobody is there to answer
                console.print()
                raise EOFError
            answer = line.strip() or default
            if not choices or answer in choices:
                return answer
            console.print(escape(f"please answer one of: {', '.join(choices)}"))

    try:
        options = DemoOptions(
            data=args.data,
            phoenix_url=args.phoenix_url,
            keep_phoenix=args.keep_phoenix,
            reset=args.reset,
            reviewer=args.reviewer,
            model=args.model,
            project=args.project,
        )
        summary = run_demo(options, console=console, ask=ask)
    except ConfigurationError as exc:
        err.write(f"hitl: usage error: {exc}\n")
        return EXIT_USAGE
    except (HitlError, EOFError) as exc:
        what = "no answer on stdin (use --reviewer auto)" if isinstance(exc, EOFError) else exc
        err.write(f"hitl: error: {what}\n")
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("HITL_DEBUG"):
            raise
        err.write(f"hitl: error: {type(exc).__name__}: {exc}\n")
        return EXIT_ERROR
    if as_json:
        out.write(json.dumps(summary.to_dict(), indent=2, default=str) + "\n")
    else:
        render_summary(summary, console)
    return EXIT_OK if summary.audit_ok else EXIT_ERROR


def render_summary(summary: Any, console: Console) -> None:
    """The end-of-run summary as rich tables and lines."""
    console.print()
    console.rule("[bold]hitl demo: summary")
    routes = summary.routes
    ran = summary.ran
    t = Table(title=f"{summary.requests} requests, run {summary.run_id}")
    t.add_column("route")
    t.add_column("requests", justify="right")
    t.add_column("what happened")
    t.add_row("auto", str(routes.get("auto", 0)), "ran unattended")
    t.add_row(
        "review",
        str(routes.get("review", 0)),
        f"ran at once; {summary.sampled} sampled for review in Phoenix",
    )
    t.add_row("approve", str(routes.get("approve", 0)), "waited for a human (below)")
    t.add_row("deny", str(routes.get("deny", 0)), "never ran; the model was told why")
    console.print(t)
    console.print("ran: " + ", ".join(f"{k} x{v}" for k, v in sorted(ran.items())), soft_wrap=True)
    w = Table(title="What waited, and for how long")
    for col in ("tool", "args", "decision", "waited", "outcome"):
        w.add_column(col)
    for row in summary.waited:
        args = json.dumps(row["edited_args"] or row["args"])
        if row["decision"] == "edit":
            args = f"{json.dumps(row['args'])} -> {args}"
        waited = "-" if row["waited_s"] is None else f"{row['waited_s']:.1f} s"
        w.add_row(row["tool"], args, f"{row['decision']} by {row['by']}", waited, row["outcome"])
    console.print(w)
    for d in summary.denied:
        console.print(
            f"denied: {d['tool']} {json.dumps(d['args'])} ({'; '.join(d['reasons'])})",
            soft_wrap=True,
        )
    if summary.verdict:
        v = summary.verdict
        console.print(
            f"review: {v['reviewer']} marked a refund '{v['label']}' in Phoenix; "
            f"{summary.collected} annotation(s) collected back",
            soft_wrap=True,
        )
    guidance = "\n".join(line for line in summary.next_prompt.splitlines() if line.strip())
    console.print(Panel(guidance or "(no prompt)", title="the next run's system prompt"))
    audit = (
        f"audit trail: verified OK ({summary.audit_events} events, hash chain intact)"
        if summary.audit_ok
        else f"audit trail: FAILED verification: {'; '.join(summary.audit_problems)}"
    )
    console.print(audit, soft_wrap=True)
    console.print(f"review list in Phoenix: {summary.review_url}", soft_wrap=True)
    console.print(f"  (filter: {summary.review_filter})", soft_wrap=True, markup=False)
    if summary.left_pending:
        console.print(
            f"left waiting for you: {summary.left_pending} (a 15000 transfer)", soft_wrap=True
        )
    if summary.phoenix_kept:
        console.print(
            f"Phoenix keeps running at {summary.phoenix_url} (pid {summary.phoenix_pid}); "
            f"stop it with: kill {summary.phoenix_pid}",
            soft_wrap=True,
        )
    console.print(f"data folder: {summary.data}", soft_wrap=True)
    console.print(f"next, try: {summary.next_command}", soft_wrap=True)
    console.print(f"finished in {summary.seconds:.1f} s", soft_wrap=True)
