"""``hitl bench``: run the benchmark suite (``python -m bench``) from a source checkout.

The suite lives in ``bench/`` next to the ``hitl_langgraph`` package in the repository;
it is not part of the installed wheel. Every argument after ``bench`` is passed on.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["register", "run"]

EXIT_ERROR = 1


def register(subparsers: Any) -> None:
    """Add ``bench`` to ``parser.add_subparsers()``'s result."""
    text = "run the benchmark suite (python -m bench) from a source checkout"
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help=text,
        description=text + "; try 'hitl bench --help-bench' for its options",
        epilog="examples: hitl bench --quick; hitl bench --only gate,scale --out results/",
    )
    p.add_argument("--help-bench", action="store_true", help="show the benchmark's own options")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for python -m bench")


def checkout() -> Path | None:
    """The repository root holding ``bench/__main__.py`` beside this package, if any."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "bench" / "__main__.py").is_file() else None


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute a parsed ``bench`` command; returns the exit code."""
    argv = list(args.bench_args or [])
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return run_argv(["--help"] if args.help_bench else argv, out=out, err=err)


def run_argv(argv: list[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``hitl bench ARGS...``: ``python -m bench ARGS...`` from the checkout."""
    err = err or sys.stderr
    root = checkout()
    if root is None:
        err.write(
            "error: hitl bench needs a source checkout: the benchmarks (bench/) are not "
            "installed with the package. Clone the repository, install it with "
            "'pip install -e \".[dev]\"' and run 'python -m bench' (or 'hitl bench') there.\n"
        )
        return EXIT_ERROR
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    spec = importlib.util.find_spec("bench.__main__")
    if spec is None or spec.origin is None or Path(spec.origin).resolve().parent != root / "bench":
        err.write(
            f"error: cannot import the benchmark package from {root / 'bench'} (another "
            "module named 'bench' is first on sys.path); run 'python -m bench' in the "
            f"checkout {root} instead.\n"
        )
        return EXIT_ERROR
    from bench.__main__ import main as bench_main  # type: ignore[import-not-found,unused-ignore]

    try:
        return int(bench_main(argv))
    except SystemExit as exc:  # argparse inside the bench
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_ERROR
