"""``hitl feedback run | status | promote | rollback``: the feedback loop from a shell.

* ``run`` — one :meth:`~hitl_langgraph.feedback.FeedbackLoop.run_once`: collect UI
  verdicts from Phoenix, derive guidance, publish it, push a candidate prompt version
  per ``--prompt`` (``--promote`` moves ``production`` to it);
* ``status`` — every guidance item with its state and, for one that is not active, why
  ("1 of 2 reviewers", a conflict, expiry), plus each prompt's production and candidate;
* ``promote`` / ``rollback`` — move a prompt's ``production`` tag (audited).

``--prompt NAME[:NODE]`` names a Phoenix prompt and the graph node whose prompt it is.
Options shared with ``hitl review``: ``--store`` (``HITL_STORE_URL``), ``--phoenix``,
``--project`` (``PHOENIX_PROJECT_NAME``), ``--json``. Exit codes: 0 ok, 1 error
(Phoenix unreachable, a step failed), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import ConfigurationError, HitlError

__all__ = ["main", "register", "run"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
_KEY = "hitl_feedback_command"


def _common(p: argparse.ArgumentParser) -> None:
    s = argparse.SUPPRESS
    p.add_argument("--store", metavar="URL", default=s, help="store URL (env HITL_STORE_URL)")
    p.add_argument("--phoenix", metavar="URL", default=s, help="Phoenix base URL")
    p.add_argument("--project", default=s, help="Phoenix project (env PHOENIX_PROJECT_NAME)")
    p.add_argument("--json", action="store_true", default=s, help="JSON output")


def register(subparsers: Any) -> None:
    """Add ``feedback`` to ``parser.add_subparsers()``'s result."""
    fb = subparsers.add_parser(
        "feedback", help="reviewer guidance and prompt versions",
        description="reviewer guidance and prompt versions",
    )  # fmt: skip
    sub = fb.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)

    def leaf(name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
        _common(p)
        p.set_defaults(**{_KEY: name})
        return p

    for name, help in (
        ("run", "collect verdicts, derive guidance, publish it, push prompt candidates"),
        ("status", "guidance items (and why one is not active) and prompt versions"),
    ):
        p = leaf(name, help)
        p.add_argument("--prompt", action="append", default=[], metavar="NAME[:NODE]")
        p.add_argument("--min-reviews", type=int, default=2, help="distinct reviewers needed")
        p.add_argument(
            "--owner", action="append", default=[], help="reviewer whose one verdict suffices"
        )
        if name == "run":
            p.add_argument(
                "--promote", action="store_true", help="move production to the new version"
            )
            p.add_argument(
                "--no-collect", action="store_true", help="do not read Phoenix annotations"
            )
    for name, help in (
        ("promote", "move a prompt's production tag to a version (default: the candidate)"),
        ("rollback", "move a prompt's production tag back (default: to its parent)"),
    ):
        p = leaf(name, help)
        p.add_argument("prompt", metavar="PROMPT")
        p.add_argument("version", nargs="?", metavar="VERSION_ID")
        p.add_argument("--as", dest="actor", default=None, metavar="WHO")


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)


class _Session:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        from ..review.phoenix_client import PhoenixClient, resolve_base_url
        from ..store.url import open_store

        url = getattr(args, "store", None) or os.environ.get("HITL_STORE_URL")
        if not url:
            raise ConfigurationError("no store: pass --store URL or set HITL_STORE_URL")
        self.args = args
        self.out = out
        self.json = bool(getattr(args, "json", False))
        self.project: str | None = getattr(args, "project", None) or os.environ.get(
            "PHOENIX_PROJECT_NAME"
        )
        self.store = open_store(url)
        self.client = PhoenixClient(resolve_base_url(getattr(args, "phoenix", None)))

    def need_project(self) -> str:
        if not self.project:
            raise ConfigurationError("no project: pass --project NAME or set PHOENIX_PROJECT_NAME")
        return self.project

    def registries(self) -> list[Any]:
        from .prompts import PromptRegistry

        out = []
        for spec in getattr(self.args, "prompt", []) or []:
            name, _, node = str(spec).partition(":")
            out.append(
                PromptRegistry(name, phoenix=self.client, node=node or None, store=self.store)
            )
        return out

    def loop(self, *, collect: bool) -> Any:
        from ..review.queue import ReviewQueue
        from .context import PhoenixContextResolver
        from .guidance import GuidanceConfig
        from .loop import FeedbackLoop

        project = self.need_project()
        queue = ReviewQueue(self.client, project=project, store=self.store)
        return FeedbackLoop(
            self.store,
            project=project,
            collect=(lambda: queue.collect(include_reviewed=True)) if collect else None,
            resolver=PhoenixContextResolver(self.store, self.client, project),
            guidance=GuidanceConfig(
                min_reviews=self.args.min_reviews, owners=frozenset(self.args.owner)
            ),
            prompts=self.registries(),
            auto_promote=bool(getattr(self.args, "promote", False)),
            mirror=queue.sync,
        )

    def emit(self, data: Any, text: str) -> None:
        self.out.write((_dumps(data) if self.json else text) + "\n")

    def close(self) -> None:
        self.client.close()
        self.store.close()


def _why(item: Any) -> str:
    if item.status == "active":
        return "owner-backed" if item.owner_backed else f"{item.support} reviewer(s)"
    return str(item.note or item.status)


def _status(s: _Session, args: argparse.Namespace) -> int:
    loop = s.loop(collect=False)
    reviews = loop.reviews()
    guidance = loop.derive(reviews, loop.contexts(reviews))
    _, published, _ = loop.published()
    items = [
        *guidance.active, *guidance.pending, *guidance.conflicts, *guidance.inactive,
    ]  # fmt: skip
    lines = [
        f"guidance {guidance.version} ({len(guidance.active)} active, {len(guidance.pending)} "
        f"pending, {len(guidance.conflicts)} conflict); published: {published.version or '-'}"
    ]
    if items:
        lines.append(f"{'ITEM':<13} {'STATUS':<9} {'WHY':<22} {'REVIEWERS':<20} INSTRUCTION")
    for it in items:
        text = it.instruction if len(it.instruction) <= 60 else it.instruction[:59] + "…"
        lines.append(
            f"{it.id:<13} {it.status:<9} {_why(it):<22} {','.join(it.reviewers):<20} {text}"
        )
    prompts = []
    for reg in s.registries():
        prod, cand = reg.by_tag(reg.production_tag), reg.by_tag(reg.candidate_tag)
        row = {
            "prompt": reg.name,
            "node": reg.node,
            "production": None if prod is None else prod.id,
            "production_guidance": None if prod is None else prod.guidance_version,
            "candidate": None if cand is None else cand.id,
            "candidate_guidance": None if cand is None else cand.guidance_version,
        }
        prompts.append(row)
        lines.append(
            f"prompt {reg.name}: production {row['production'] or '-'} "
            f"({row['production_guidance'] or '-'}), candidate {row['candidate'] or '-'} "
            f"({row['candidate_guidance'] or '-'})"
        )
    data = {
        "version": guidance.version,
        "published": published.version or None,
        "items": [{**it.to_dict(), "why": _why(it)} for it in items],
        "prompts": prompts,
    }
    s.emit(data, "\n".join(lines))
    return EXIT_OK


def _run(s: _Session, args: argparse.Namespace) -> int:
    report = s.loop(collect=not args.no_collect).run_once()
    data = {
        "reviews": report.reviews,
        "deferred": report.deferred,
        "guidance_version": report.guidance.version,
        "previous_version": report.previous_version,
        "published": report.published,
        "activated": report.activated,
        "deactivated": report.deactivated,
        "conflicts": report.conflicts,
        "pending": [{"id": i.id, "why": _why(i)} for i in report.guidance.pending],
        "prompts": [vars(p) for p in report.prompts],
        "errors": [f"{step}: {exc}" for step, exc in report.errors],
    }
    s.emit(data, str(report))
    return EXIT_OK if report.ok else EXIT_ERROR


def _move(s: _Session, args: argparse.Namespace) -> int:
    from .prompts import PromptRegistry

    reg = PromptRegistry(args.prompt, phoenix=s.client, store=s.store)
    command = getattr(args, _KEY)
    if command == "promote":
        v = reg.promote(args.version, actor=args.actor)
    else:
        v = reg.rollback(args.version, actor=args.actor)
    s.emit(
        {"prompt": reg.name, "production": v.id, "guidance_version": v.guidance_version},
        f"prompt {reg.name}: production is now {v.id} (guidance {v.guidance_version})",
    )
    return EXIT_OK


_HANDLERS = {"run": _run, "status": _status, "promote": _move, "rollback": _move}


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute a parsed ``feedback`` command; the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    handler = _HANDLERS.get(str(getattr(args, _KEY, None)))
    if handler is None:
        err.write("hitl: usage error: unknown feedback command\n")
        return EXIT_USAGE
    session: _Session | None = None
    try:
        session = _Session(args, out)
        return handler(session, args)
    except ConfigurationError as exc:
        err.write(f"hitl: usage error: {exc}\n")
        return EXIT_USAGE
    except HitlError as exc:
        err.write(f"hitl: error: {exc}\n")
        return EXIT_ERROR
    finally:
        if session is not None:
            session.close()


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``python -m hitl_langgraph.feedback.cli``."""
    parser = argparse.ArgumentParser(prog="hitl", description="hitl-langgraph feedback loop")
    _common(parser)
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return run(parser.parse_args(argv), out=out, err=err)


if __name__ == "__main__":
    sys.exit(main())
