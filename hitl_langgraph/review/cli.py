"""CLI commands of the review queue: ``review pending|submit|collect|sla|setup``, ``sync``
and ``phoenix``.

:func:`register` adds them to an ``argparse`` sub-parser set (the ``hitl`` CLI does);
:func:`run` executes the parsed command. Standalone::

    python -m hitl_langgraph.review.cli --store sqlite:///hitl.db review pending
    python -m hitl_langgraph.review.cli review submit 00f067aa0ba902b7 correct --as alice
    python -m hitl_langgraph.review.cli review collect
    python -m hitl_langgraph.review.cli sync            # send what the outbox holds
    python -m hitl_langgraph.review.cli phoenix --port 6006 --dir .hitl/phoenix

Options: ``--store`` (env ``HITL_STORE_URL``), ``--phoenix`` (env ``PHOENIX_BASE_URL``
or ``PHOENIX_COLLECTOR_ENDPOINT``, default ``http://127.0.0.1:6006``), ``--project``
(env ``PHOENIX_PROJECT_NAME``; without either, the commands that need a project stop
with exit 2 and list the projects Phoenix has), ``--json``.

Exit codes as in ``hitl``: 0 ok, 1 error (Phoenix unreachable included), 2 usage or
configuration error, 3 refused (an invalid verdict).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import ConfigurationError, HitlError
from .errors import InvalidVerdict

__all__ = ["main", "register", "run"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
_KEY = "hitl_review_command"


def _common(p: argparse.ArgumentParser) -> None:
    s = argparse.SUPPRESS  # leave values given to a parent parser (hitl --store ...) alone
    p.add_argument("--store", metavar="URL", default=s, help="store URL (env HITL_STORE_URL)")
    p.add_argument("--phoenix", metavar="URL", default=s, help="Phoenix base URL")
    p.add_argument("--project", default=s, help="Phoenix project (env PHOENIX_PROJECT_NAME)")
    p.add_argument("--json", action="store_true", default=s, help="JSON output")


def register(subparsers: Any) -> None:
    """Add ``review``, ``sync`` and ``phoenix`` to ``parser.add_subparsers()``'s result."""
    review = subparsers.add_parser(
        "review", help="the sampled review queue", description="the sampled review queue"
    )
    rsub = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)

    def leaf(parent: Any, name: str, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        _common(p)
        p.set_defaults(**{_KEY: name if parent is subparsers else f"review {name}"})
        return p

    p = leaf(rsub, "pending", "sampled runs waiting for review, oldest due first")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--no-details", action="store_true", help="do not read traces from Phoenix")
    p = leaf(rsub, "submit", "record a verdict on a span (validated, then mirrored)")
    p.add_argument("span_id", metavar="SPAN_ID")
    p.add_argument("verdict", metavar="VERDICT", help="correct, incorrect or unsafe")
    p.add_argument("--as", dest="reviewer", required=True, metavar="REVIEWER")
    p.add_argument("--explanation", "-m")
    p.add_argument("--guidance", help="what the agent should do differently")
    p = leaf(rsub, "collect", "pull verdicts made in the Phoenix UI into the store")
    p.add_argument("--all", action="store_true", help="re-read reviewed items too (edits)")
    leaf(rsub, "sla", "oldest unreviewed item and items past due")
    p = leaf(rsub, "setup", "create the annotation configs and assign them to the project")
    p.add_argument("--update", action="store_true", help="replace configs defined differently")
    p.add_argument(
        "--create", action="store_true", help="create the project if Phoenix does not have it"
    )
    users = rsub.add_parser(
        "users", help="reviewers as Phoenix users", description="reviewers as Phoenix users"
    )
    usub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = leaf(usub, "add", "create a Phoenix user and map it to a reviewer with roles")
    p.set_defaults(**{_KEY: "review users add"})
    p.add_argument("name", metavar="NAME", help="the reviewer id (and Phoenix username)")
    p.add_argument("--role", dest="roles", action="append", default=[], metavar="ROLE",
                   help="a reviewer role for the authority rules (repeatable)")  # fmt: skip
    p.add_argument("--email", help="default NAME@reviewers.invalid")
    p.add_argument("--password", help="initial password (default: generated and printed)")
    p.add_argument("--phoenix-role", default="MEMBER", help="MEMBER (default), ADMIN, VIEWER")
    p = leaf(usub, "list", "reviewers mapped to Phoenix users")
    p.set_defaults(**{_KEY: "review users list"})
    p = leaf(subparsers, "sync", "send spooled review requests and verdicts to Phoenix")
    p.add_argument("--force", action="store_true", help="ignore retry backoff")
    p = leaf(subparsers, "phoenix", "run a local Phoenix server (phoenix serve)")
    p.add_argument("--port", type=int, default=6006)
    p.add_argument("--grpc-port", type=int, default=None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--data", "--dir", dest="dir", default=os.path.join(".hitl", "phoenix"),
        metavar="DIR", help="data folder (Phoenix's working directory; default .hitl/phoenix)",
    )  # fmt: skip


def _opt(args: argparse.Namespace, name: str, env: str | None, default: str | None) -> str | None:
    value = getattr(args, name, None)
    if value is None and env:
        value = os.environ.get(env)
    return value or default


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)


class _Session:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        from ..store.url import open_store
        from .phoenix_client import PhoenixClient, resolve_base_url

        url = _opt(args, "store", "HITL_STORE_URL", None)
        if not url:
            raise ConfigurationError("no store: pass --store URL or set HITL_STORE_URL")
        self.out = out
        self.json = bool(getattr(args, "json", False))
        self._project = _opt(args, "project", "PHOENIX_PROJECT_NAME", None)
        self.store = open_store(url)
        self.client = PhoenixClient(resolve_base_url(getattr(args, "phoenix", None)))

    @property
    def project(self) -> str:
        """``--project`` or ``PHOENIX_PROJECT_NAME``; else a usage error listing projects."""
        if self._project:
            return self._project
        names = self.project_names()
        raise ConfigurationError(
            "no project: pass --project NAME or set PHOENIX_PROJECT_NAME. Phoenix has: "
            + (", ".join(names) if names else "(no project, or Phoenix is unreachable)")
        )

    def project_names(self) -> list[str]:
        from .phoenix_client import PhoenixError

        try:
            return sorted(str(p["name"]) for p in self.client.list_projects())
        except PhoenixError:
            return []

    def check_project(self) -> None:
        """Refuse a project Phoenix does not have and the store has no samples of."""
        from .errors import UnknownProject
        from .phoenix_client import PhoenixError

        project = self.project
        if self.store.list_review_samples(project, sampled=None, reviewed=None, limit=1):
            return
        try:
            found = self.client.get_project(project)
        except PhoenixError:
            return  # unreachable: the queue says so itself
        if found is None:
            names = self.project_names()
            raise UnknownProject(
                f"Phoenix has no project {project!r} and the store no samples of it. "
                f"Existing projects: {', '.join(names) or '(none)'}",
                projects=tuple(names),
            )

    def queue(self) -> Any:
        from .queue import ReviewQueue

        return ReviewQueue(self.client, project=self.project, store=self.store)

    def emit(self, data: Any, text: str) -> None:
        self.out.write((_dumps(data) if self.json else text) + "\n")

    def close(self) -> None:
        self.client.close()
        self.store.close()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _pending(s: _Session, args: argparse.Namespace) -> int:
    s.check_project()
    q = s.queue()
    items = q.pending(args.limit, details=not args.no_details)
    sla = q.sla()
    lines = [
        f"{sla.pending} pending, {sla.past_due} past due, oldest {_age(sla.oldest_age_seconds)}"
        f" in project {s.project}"
    ]
    if items.url:
        lines.append(f"review them in Phoenix: {items.url}")
    for it in items:
        sm = it.sample
        late = "LATE " if it.overdue else ""
        lines.append(
            f"{late}due {sm.due_at:%Y-%m-%d %H:%M}Z  p{sm.priority}  risk {sm.score:.2f}  "
            f"{sm.tool}  span {sm.span_id or '-'}  {it.url or ''}".rstrip()
        )
    s.emit(
        {"sla": sla.to_dict(), "items": [it.to_dict() for it in items], "url": items.url},
        "\n".join(lines),
    )
    return EXIT_OK


def _submit(s: _Session, args: argparse.Namespace) -> int:
    q = s.queue()
    r = q.submit(
        args.span_id,
        args.verdict,
        reviewer=args.reviewer,
        explanation=args.explanation,
        guidance=args.guidance,
    )
    left = s.store.count_outbox(project=s.project)
    text = f"recorded {r.label!r} by {r.reviewer} on span {r.span_id}"
    text += f"; {left} write(s) wait for `hitl sync`" if left else "; mirrored to Phoenix"
    s.emit({"review_id": r.review_id, "label": r.label, "pending_mirror": left}, text)
    return EXIT_OK


def _collect(s: _Session, args: argparse.Namespace) -> int:
    s.check_project()
    rep = s.queue().collect(include_reviewed=args.all)
    text = (
        f"read {rep.annotations} annotation(s) on {rep.spans} span(s): {rep.changed} new or "
        f"changed, {rep.closed} item(s) reviewed, {rep.invalid} invalid, "
        f"{rep.protected} machine write(s) kept apart from a human verdict"
    )
    s.emit(vars(rep), text)
    return EXIT_OK


def _sla(s: _Session, args: argparse.Namespace) -> int:
    sla = s.queue().sla()
    text = (
        f"{sla.pending} pending ({sla.past_due} past due), oldest waiting "
        f"{_age(sla.oldest_age_seconds)}; {sla.reviewed}/{sla.sampled} sampled items reviewed"
    )
    s.emit(sla.to_dict(), text)
    return EXIT_OK


def _setup(s: _Session, args: argparse.Namespace) -> int:
    if not args.create:
        s.check_project()
    rep = s.queue().setup(update=args.update)
    text = (
        f"project {rep.project}: created {rep.created or '-'}, existing {rep.existing or '-'}, "
        f"updated {rep.updated or '-'}, assigned {rep.assigned or '-'}"
    )
    s.emit(vars(rep), text)
    return EXIT_OK


def _users_add(s: _Session, args: argparse.Namespace) -> int:
    from .reviewers import add_reviewer

    mapped, generated = add_reviewer(
        s.client, s.store, args.name, args.roles, email=args.email, password=args.password,
        phoenix_role=args.phoenix_role,
    )  # fmt: skip
    text = (
        f"reviewer {mapped.name} ({', '.join(sorted(mapped.roles)) or 'no roles'}) is Phoenix "
        f"user {mapped.phoenix_user_id} ({mapped.phoenix_role}, {mapped.email})"
    )
    if generated:
        text += f"\ninitial password: {generated} (Phoenix asks for a new one at first login)"
    s.emit({**mapped.to_dict(), "initial_password": generated}, text)
    return EXIT_OK


def _users_list(s: _Session, args: argparse.Namespace) -> int:
    from .reviewers import ReviewerDirectory

    rows = ReviewerDirectory(s.store).all()
    width = max([len(r.name) for r in rows] + [8])
    lines = [f"{'REVIEWER':<{width}}  ROLES                 PHOENIX USER            EMAIL"]
    for r in rows:
        roles = ",".join(sorted(r.roles)) or "-"
        lines.append(f"{r.name:<{width}}  {roles:<20}  {r.phoenix_user_id:<22}  {r.email}")
    if not rows:
        lines = ["no reviewers mapped; add one with `hitl review users add NAME --role ROLE`"]
    s.emit([r.to_dict() for r in rows], "\n".join(lines))
    return EXIT_OK


def _sync(s: _Session, args: argparse.Namespace) -> int:
    from .spool import Spool

    project = getattr(args, "project", None) or os.environ.get("PHOENIX_PROJECT_NAME")
    rep = Spool(s.store, s.client, project=project).sync(force=args.force)
    parked = s.store.list_outbox(status="failed", project=project, limit=1000)
    text = (
        f"mirrored {rep.mirrored}, retrying {rep.retrying}, failed {rep.failed}; "
        f"{rep.pending} pending" + (" (Phoenix unreachable)" if rep.unavailable else "")
    )
    if parked:
        text += f"\n{len(parked)} parked (never retried; fix and re-submit):"
        for e in parked:
            text += f"\n  {e.project}  {e.name} on span {e.span_id}: {e.last_error}"
    data = {
        **vars(rep),
        "parked": [
            {"entry_id": e.entry_id, "project": e.project, "span_id": e.span_id, "name": e.name,
             "reason": e.last_error}
            for e in parked
        ],
    }  # fmt: skip
    s.emit(data, text)
    return EXIT_ERROR if rep.unavailable or rep.failed or parked else EXIT_OK


class _Stop(Exception):
    """SIGTERM/SIGINT while ``hitl phoenix`` runs (or starts)."""


def _phoenix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import signal

    from ..tracing._server import PhoenixServer, PhoenixStartError, phoenix_command

    if phoenix_command() is None:
        err.write(
            "hitl: error: the Phoenix server is not installed (the `tracing` and `all` "
            "extras bring only its client): pip install 'hitl-langgraph[phoenix-server]'\n"
        )
        return EXIT_USAGE
    server = PhoenixServer(
        port=args.port, grpc_port=args.grpc_port, host=args.host, workdir=args.dir
    )

    def stop(signum: int, frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            server.start()
        except PhoenixStartError as exc:
            err.write(f"hitl: error: {exc}\n")
            return EXIT_ERROR
        out.write(
            f"Phoenix is running at {server.url} (data in {server.workdir}); "
            f"trace to {server.otlp_endpoint}. Ctrl-C stops it.\n"
        )
        out.flush()
        while server.running:
            time.sleep(0.5)
        err.write(f"hitl: error: Phoenix exited; log {server.log_path}:\n{server.log_tail()}\n")
        return EXIT_ERROR
    except (_Stop, KeyboardInterrupt):
        return EXIT_OK
    finally:
        for sig in previous:  # a second signal during the stop must not interrupt it
            signal.signal(sig, signal.SIG_IGN)
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_HANDLERS = {
    "review pending": _pending,
    "review submit": _submit,
    "review collect": _collect,
    "review sla": _sla,
    "review setup": _setup,
    "review users add": _users_add,
    "review users list": _users_list,
    "sync": _sync,
}


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Execute a command parsed by a parser :func:`register` extended; the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    command = getattr(args, _KEY, None)
    if command == "phoenix":
        return _phoenix(args, out, err)
    handler = _HANDLERS.get(str(command))
    if handler is None:
        err.write(f"hitl: usage error: unknown review command {command!r}\n")
        return EXIT_USAGE
    session: _Session | None = None
    try:
        session = _Session(args, out)
        return handler(session, args)
    except InvalidVerdict as exc:
        return _fail(err, "refused", exc, EXIT_REFUSED)
    except ConfigurationError as exc:
        return _fail(err, "usage error", exc, EXIT_USAGE)
    except HitlError as exc:
        return _fail(err, "error", exc, EXIT_ERROR)
    finally:
        if session is not None:
            session.close()


def _fail(err: TextIO, label: str, exc: BaseException, code: int) -> int:
    err.write(f"hitl: {label}: {exc}\n")
    return code


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``python -m hitl_langgraph.review.cli``: the review commands on their own."""
    parser = argparse.ArgumentParser(prog="hitl", description="hitl-langgraph review queue")
    _common(parser)
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return run(parser.parse_args(argv), out=out, err=err)


if __name__ == "__main__":
    sys.exit(main())
