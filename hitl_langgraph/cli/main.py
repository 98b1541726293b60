"""``hitl``: the approval inbox from a terminal or a script.

::

    hitl --store sqlite:///hitl.db pending --tool 'transfer_*'
    hitl show req_0123...
    hitl approve req_0123... --as alice --role finance --reason "invoice checked"
    hitl --graph myapp.agent:graph approve req_0123... --as alice --role finance
    hitl --deployment http://127.0.0.1:2024 --graph-id bank approve req_0123... --as alice
    hitl sweep --escalate 4h:finance-lead   # escalate, then expire overdue ones (cron)
    hitl audit verify --anchor anchors.jsonl   # recompute the chains, check an anchor
    hitl audit anchor --out anchors.jsonl      # publish every stream's head (cron)
    hitl audit evidence req_0123... -o evidence.json --html evidence.html
    hitl audit export --format csv -o evidence.csv
    hitl review pending               # sampled after-the-fact reviews (hitl_langgraph.review)
    hitl simulate --sweep --sla p95=5m  # sync vs async vs hybrid, staffing (hitl_langgraph.sim)
    hitl demo --reviewer auto         # both oversight models end to end (hitl_langgraph.demo)
    hitl bench --quick                # the benchmark suite, from a source checkout

The store comes from ``--store URL`` or ``HITL_STORE_URL``. Resuming a thread needs the
compiled graph: ``--graph module:attribute`` (or ``HITL_GRAPH``) imports it (a callable
attribute is called to build it); without it a decision is only recorded, and a worker
holding the graph applies it (``hitl --graph ... apply``, or ``Inbox.apply_decided``).

The CLI trusts its operator: ``--as`` and ``--role`` name the reviewer, so give access
to it only to people allowed to act under those names. A web service should build the
:class:`~hitl_langgraph.inbox.Reviewer` from its authenticated session instead.

Exit codes: 0 success, 1 error (including a failed audit verification), 2 usage or
configuration error, 3 refused (not authorized, already decided, digest mismatch, not
pending, invalid decision).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TextIO, get_args

from ..clock import utc_now
from ..errors import ConfigurationError, DecisionError, HitlError, InvalidDecision
from ..inbox import EscalationStep, Inbox, Reviewer
from ..policy.risk import Route
from ..store.base import ApprovalStore
from ..store.records import ApprovalRecord, AuditEvent
from ..store.url import open_store
from . import render
from .audit_cmds import add_audit_parsers, run_audit

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "build_parser",
    "escalation_steps",
    "load_graph",
    "main",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
ROUTES = list(get_args(Route))


class _Usage(Exception):
    """A usage error found after parsing (exit 2)."""


def load_graph(spec: str) -> Any:
    """Import ``module:attribute`` (dotted attribute allowed); call it if it is a factory."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise _Usage(f"--graph must look like 'package.module:attribute', got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules in the working directory
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _Usage(f"--graph {spec}: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _Usage(f"--graph {spec}: {module_name} has no attribute {attr!r}") from None
    if not hasattr(obj, "invoke") and callable(obj):
        obj = obj()
    if not (hasattr(obj, "invoke") and hasattr(obj, "get_state")):
        raise _Usage(
            f"--graph {spec} is a {type(obj).__name__}, not a compiled LangGraph graph "
            "(compile it with a checkpointer: builder.compile(checkpointer=...))"
        )
    return obj


# -- argument parsing ------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    d: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--store", metavar="URL", help="approval store URL (env HITL_STORE_URL)", **d)
    p.add_argument(
        "--graph", metavar="MODULE:ATTR", help="compiled graph to resume (env HITL_GRAPH)", **d
    )
    p.add_argument(
        "--deployment",
        metavar="URL",
        help="resume through an Agent Server at URL instead of --graph (env HITL_DEPLOYMENT)",
        **d,
    )
    p.add_argument(
        "--graph-id",
        metavar="ID",
        help="the deployment's graph/assistant id, from langgraph.json (env HITL_GRAPH_ID)",
        **d,
    )
    p.add_argument(
        "--token", metavar="TOKEN", help="bearer token for the deployment (env HITL_TOKEN)", **d
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON output", **d)


def _reviewer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("request_id", metavar="ID")
    p.add_argument(
        "--as",
        dest="reviewer",
        metavar="REVIEWER",
        help="your id (not with --deployment --token: the server authenticates you)",
    )
    p.add_argument(
        "--role",
        dest="roles",
        action="append",
        default=[],
        metavar="ROLE",
        help="a role you hold (repeat for several)",
    )
    p.add_argument("--digest", help="the digest you reviewed (refused if the action changed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hitl",
        description="Review and decide pending approval requests of hitl-langgraph gates.",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 refused",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, top=False)
        return p

    p = cmd("pending", "list pending requests, oldest first")
    p.add_argument("--tool", metavar="GLOB", help="tool name or glob, e.g. 'transfer_*'")
    p.add_argument("--route", choices=ROUTES, help="route (approve)")
    p.add_argument("--min-risk", type=float, metavar="SCORE", help="risk score at least")
    p.add_argument("--thread", metavar="THREAD_ID")
    p.add_argument("--role", metavar="ROLE", help="requests this role may decide")
    p.add_argument("--overdue", action="store_true", help="only requests past their deadline")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--cursor", help="next_cursor of a previous page")

    p = cmd("show", "show one request and its audit trail")
    p.add_argument("request_id", metavar="ID")

    p = cmd("approve", "approve a request (the action runs)")
    _reviewer_args(p)
    p.add_argument("--reason", help="why (recorded in the audit trail)")

    p = cmd("reject", "reject a request (the action does not run)")
    _reviewer_args(p)
    p.add_argument("--reason", "--message", dest="reason", help="why (told to the model)")

    p = cmd("edit", "run a corrected call instead")
    _reviewer_args(p)
    p.add_argument(
        "--args",
        dest="edit_args",
        required=True,
        metavar="JSON",
        help="the args that change, merged over the pending ones (with --graph: "
        "checked against the tool's schema)",
    )
    p.add_argument("--tool", dest="edit_tool", help="another tool (default: the same)")
    p.add_argument("--reason", help="why (recorded)")

    p = cmd("respond", "answer in place of the tool")
    _reviewer_args(p)
    p.add_argument("--message", required=True, help="returned to the model as the result")

    p = cmd("sweep", "escalate waiting requests, expire overdue ones (cron)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument(
        "--escalate",
        action="append",
        default=[],
        metavar="AFTER[:ROLE,...]",
        help="an escalation step, e.g. 4h:finance-lead (repeat; s/m/h/d units)",
    )

    p = cmd("apply", "resume threads of decisions recorded without a graph (needs --graph)")
    p.add_argument("--limit", type=int, default=100)

    p = cmd("reconcile", "repair the request index against the checkpointer (needs --graph)")
    p.add_argument("--thread", dest="threads", action="append", default=[], metavar="ID")
    p.add_argument("--grace", type=float, default=60.0, metavar="SECONDS")

    p = cmd(
        "recover",
        "settle an action whose tool started and never finished (held for a human)",
    )
    p.add_argument("request_id", metavar="ID")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--rerun",
        dest="how",
        action="store_const",
        const="rerun",
        help="run it again (same idempotency key)",
    )
    how.add_argument(
        "--mark-done",
        dest="how",
        action="store_const",
        const="mark_done",
        help="it took effect; resume with --result as the tool's output",
    )
    how.add_argument(
        "--mark-failed",
        dest="how",
        action="store_const",
        const="mark_failed",
        help="it did not take effect; resume with an error as the tool's output",
    )
    p.add_argument("--result", metavar="TEXT", help="the tool's output (--mark-done) or error")
    p.add_argument("--by", default=None, metavar="NAME", help="who settles it (audited)")
    p.add_argument("--thread", metavar="THREAD_ID", help="thread, if the request has no row")
    p.add_argument(
        "--force",
        action="store_true",
        help="settle even though the process that started it still runs",
    )

    audit = sub.add_parser("audit", help="verify, anchor, export the audit trail; evidence")
    _common(audit, top=False)
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    add_audit_parsers(asub, _common)
    _mount_review(sub)
    from ..feedback.cli import register as register_feedback

    register_feedback(sub)
    from ..sim.cli import register as register_simulate

    register_simulate(sub)
    from ..demo.cli import register as register_demo

    register_demo(sub)
    from .bench import register as register_bench

    register_bench(sub)
    return parser


_REVIEW_COMMANDS = ("review", "sync", "phoenix")


def _mount_review(sub: Any) -> None:
    """The sampled-review commands (``review``, ``sync``, ``phoenix``) of
    :mod:`hitl_langgraph.review.cli`, when that module is available."""
    try:
        from ..review.cli import register
    except ImportError:  # pragma: no cover - an install without the review module
        return
    register(sub)


# -- commands ---------------------------------------------------------------------------


class _Ctx:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self._store: ApprovalStore | None = None

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def store(self) -> ApprovalStore:
        if self._store is None:
            url = getattr(self.args, "store", None) or os.environ.get("HITL_STORE_URL")
            if not url:
                raise _Usage("no store: pass --store URL or set HITL_STORE_URL")
            self._store = open_store(url)
        return self._store

    def graph(self, required: bool = False) -> Any:
        deployment = getattr(self.args, "deployment", None) or os.environ.get("HITL_DEPLOYMENT")
        if deployment:
            from ..server.remote import remote_graph

            return remote_graph(
                deployment,
                getattr(self.args, "graph_id", None) or os.environ.get("HITL_GRAPH_ID") or "",
                token=getattr(self.args, "token", None),
            )
        spec = getattr(self.args, "graph", None) or os.environ.get("HITL_GRAPH")
        if not spec:
            if required:
                raise _Usage(
                    f"`hitl {self.args.command}` needs --graph MODULE:ATTR (or HITL_GRAPH)"
                )
            return None
        return load_graph(spec)

    def remote(self) -> Any:
        """The deployment's inbox route when a token is given (``--deployment`` +
        ``--token``/``HITL_TOKEN``): the server then says who the reviewer is."""
        deployment = getattr(self.args, "deployment", None) or os.environ.get("HITL_DEPLOYMENT")
        token = getattr(self.args, "token", None) or os.environ.get("HITL_TOKEN")
        if not (deployment and token):
            return None
        from ..server.client import InboxClient

        return InboxClient(deployment, token)

    def inbox(self, graph_required: bool = False) -> Inbox:
        return Inbox(self.store(), self.graph(graph_required))

    def emit(self, data: Any, text: str) -> None:
        self.out.write((render.dumps(data) if self.json else text) + "\n")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _records(items: list[dict[str, Any]]) -> list[ApprovalRecord]:
    from pydantic import TypeAdapter

    return TypeAdapter(list[ApprovalRecord]).validate_python(items)


def _remote_pending(ctx: _Ctx, client: Any) -> int:
    a = ctx.args
    data = client.pending(
        tool=a.tool,
        route=a.route,
        min_risk=a.min_risk,
        thread=a.thread,
        role=a.role,
        overdue=a.overdue,
        limit=a.limit,
        cursor=a.cursor,
    )
    text = render.pending_table(_records(data["items"]), utc_now())
    if data.get("next_cursor"):
        text += f"\n(more: --cursor {data['next_cursor']})"
    ctx.emit(data, text)
    return EXIT_OK


def _remote_show(ctx: _Ctx, client: Any) -> int:
    from pydantic import TypeAdapter

    data = client.show(ctx.args.request_id)
    rec = _records([data["request"]])[0]
    history = TypeAdapter(list[AuditEvent]).validate_python(data["audit"])
    ctx.emit(data, render.request_details(rec, history, utc_now()))
    return EXIT_OK


def _remote_decide(ctx: _Ctx, client: Any) -> int:
    a = ctx.args
    if a.reviewer or a.roles:
        raise _Usage(
            "with --deployment and a token the server authenticates you: drop --as/--role "
            "(your identity and roles are the token's)"
        )
    body: dict[str, Any] = {"digest": a.digest, "reason": getattr(a, "reason", None)}
    if a.command == "respond":
        body = {"digest": a.digest, "message": a.message}
    elif a.command == "edit":
        try:
            body["args"] = json.loads(a.edit_args)
        except ValueError as exc:
            raise _Usage(f"--args must be a JSON object: {exc}") from exc
        body["tool"] = a.edit_tool
    data = client.decide(a.request_id, a.command, **body)
    text = (
        f"{data['decision']} {data['request_id']}: {data['outcome']} "
        f"(status {data['status']}, decided by {data['decided_by']})"
    )
    ctx.emit(data, text)
    return EXIT_OK


def _pending(ctx: _Ctx) -> int:
    a = ctx.args
    client = ctx.remote()
    if client is not None:
        return _remote_pending(ctx, client)
    inbox = Inbox(ctx.store())
    page = inbox.pending(
        tool=a.tool,
        route=a.route,
        min_risk=a.min_risk,
        thread_id=a.thread,
        role=a.role,
        overdue=a.overdue,
        limit=a.limit,
        cursor=a.cursor,
    )
    data = {"items": [r.to_dict() for r in page.items], "next_cursor": page.next_cursor}
    text = render.pending_table(page.items, inbox.clock())
    if page.next_cursor:
        text += f"\n(more: --cursor {page.next_cursor})"
    ctx.emit(data, text)
    return EXIT_OK


def _show(ctx: _Ctx) -> int:
    client = ctx.remote()
    if client is not None:
        return _remote_show(ctx, client)
    inbox = Inbox(ctx.store())
    rec = inbox.get(ctx.args.request_id)
    history = inbox.history(rec.request_id)
    data = {"request": rec.to_dict(), "audit": [_event(e) for e in history]}
    ctx.emit(data, render.request_details(rec, history, inbox.clock()))
    return EXIT_OK


def _event(e: Any) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at.isoformat(),
        "event": e.event,
        "actor": e.actor,
        "data": e.data,
        "hash": e.hash,
    }


def _decide(ctx: _Ctx) -> int:
    a = ctx.args
    client = ctx.remote()
    if client is not None:
        return _remote_decide(ctx, client)
    if not a.reviewer:
        raise _Usage(
            "--as REVIEWER is required (or --deployment URL --token TOKEN, where the "
            "server authenticates you)"
        )
    inbox = ctx.inbox()
    who = Reviewer(a.reviewer, a.roles)
    if a.command == "approve":
        res = inbox.approve(a.request_id, reviewer=who, reason=a.reason, digest=a.digest)
    elif a.command == "reject":
        res = inbox.reject(a.request_id, reviewer=who, reason=a.reason, digest=a.digest)
    elif a.command == "respond":
        res = inbox.respond(a.request_id, reviewer=who, message=a.message, digest=a.digest)
    else:
        try:
            edit_args = json.loads(a.edit_args)
        except ValueError as exc:
            raise _Usage(
                f"--args must be a JSON object, e.g. '{{\"amount\": 100}}': {exc}"
            ) from exc
        if not isinstance(edit_args, dict):
            raise _Usage(f"--args must be a JSON object, got {type(edit_args).__name__}")
        pending = inbox.get(a.request_id)
        if a.edit_tool in (None, pending.tool):  # only the args that change: merge them
            edit_args = {**pending.args, **edit_args}
            _check_tool_args(inbox.graph, pending.tool, edit_args)
        res = inbox.edit(
            a.request_id,
            reviewer=who,
            args=edit_args,
            tool=a.edit_tool,
            reason=a.reason,
            digest=a.digest,
        )
    ctx.emit(res.to_dict(), render.decision_line(res))
    return EXIT_OK


def _check_tool_args(graph: Any, tool: str, args: dict[str, Any]) -> None:
    """Validate edited args against the tool's schema, when the graph holds the tool."""
    if graph is None:
        return  # recorded only; the worker's graph validates when it applies the edit
    builder = getattr(graph, "builder", None)
    for spec in getattr(builder, "nodes", {}).values():
        found = getattr(getattr(spec, "runnable", None), "tools_by_name", {}).get(tool)
        schema = getattr(found, "args_schema", None)
        if schema is None or not hasattr(schema, "model_validate"):
            continue
        from pydantic import ValidationError

        try:
            schema.model_validate(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidDecision(
                f"the edited args {json.dumps(args, default=str)} do not fit {tool}'s "
                f"schema ({problems}); nothing was recorded"
            ) from None
        return


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    num, unit = text[:-1], text[-1:].lower()
    if unit not in units or not num.replace(".", "", 1).isdigit():
        raise _Usage(f"duration {text!r} must look like 90s, 30m, 4h or 2d")
    return timedelta(seconds=float(num) * units[unit])


def escalation_steps(specs: Sequence[str]) -> list[EscalationStep]:
    """``["4h:finance-lead", "1d:cfo,ceo"]`` as escalation steps."""
    steps = []
    for spec in specs:
        after, _, roles = spec.partition(":")
        steps.append(
            EscalationStep(
                after=_duration(after.strip()),
                add_roles=[r.strip() for r in roles.split(",") if r.strip()],
                name=spec,
            )
        )
    return steps


def _sweep(ctx: _Ctx) -> int:
    inbox = Inbox(ctx.store(), ctx.graph(), escalation=escalation_steps(ctx.args.escalate))
    report = inbox.sweep(limit=ctx.args.limit)
    lines = [render.decision_line(r) for r in report.expired] or ["nothing overdue"]
    lines += [
        f"escalated {e.request_id}: roles now {', '.join(e.approver_roles)}"
        for e in report.escalated
    ]
    ctx.emit(report.to_dict(), "\n".join(lines))
    return EXIT_OK


def _apply(ctx: _Ctx) -> int:
    report = ctx.inbox(graph_required=True).apply_decided(limit=ctx.args.limit)
    text = (
        f"applied {len(report.applied)}, not pending {len(report.not_pending)}, "
        f"reverted {len(report.reverted)}, errors {len(report.errors)}"
    )
    for rid, err in report.errors.items():
        text += f"\n  {rid}: {err}"
    ctx.emit(report.to_dict(), text)
    return EXIT_ERROR if report.errors else EXIT_OK


def _reconcile(ctx: _Ctx) -> int:
    report = ctx.inbox(graph_required=True).reconcile(
        thread_ids=ctx.args.threads, grace=timedelta(seconds=ctx.args.grace)
    )
    lines = [
        f"checked {report.checked_requests} pending request(s) in "
        f"{report.checked_threads} thread(s)"
    ]
    for label in (
        "cancelled",
        "inserted",
        "relinked",
        "applied",
        "skipped_recent",
        "awaiting_rerun",
    ):
        ids = getattr(report, label)
        if ids:
            lines.append(f"{label.replace('_', ' ')}: {', '.join(ids)}")
    lines += [f"error {rid}: {err}" for rid, err in report.errors.items()]
    if not report.changed:
        lines.append("nothing to repair")
    ctx.emit(report.to_dict(), "\n".join(lines))
    return EXIT_ERROR if report.errors else EXIT_OK


def _recover(ctx: _Ctx) -> int:
    a = ctx.args
    if a.result is not None and a.how == "rerun":
        raise _Usage("--result goes with --mark-done or --mark-failed, not --rerun")
    graph = ctx.graph()
    inbox = Inbox(ctx.store(), graph)
    res = inbox.recover(
        a.request_id,
        a.how,
        result=a.result,
        by=a.by or os.environ.get("USER") or "operator",
        force=a.force,
        thread_id=a.thread,
    )
    rows = [
        ("request", res.request_id),
        ("was", res.previous_state),
        ("settled", a.how.replace("_", "-")),
        ("thread", res.thread_id or "-"),
        ("resumed", "yes" if res.resumed else "no"),
    ]
    text = "\n".join(f"{k:<8} {v}" for k, v in rows)
    text += "".join(f"\nnote     {n}" for n in res.notes)
    if res.error:
        text += f"\nerror    {res.error}"
    ctx.emit(res.to_dict(), text)
    return EXIT_ERROR if res.error else EXIT_OK


def _audit(ctx: _Ctx) -> int:
    return run_audit(ctx)


_COMMANDS: dict[str, Callable[[_Ctx], int]] = {
    "pending": _pending,
    "show": _show,
    "approve": _decide,
    "reject": _decide,
    "edit": _decide,
    "respond": _decide,
    "sweep": _sweep,
    "apply": _apply,
    "reconcile": _reconcile,
    "recover": _recover,
    "audit": _audit,
}


def _fail(ctx: _Ctx, code: int, err: BaseException, err_out: TextIO) -> int:
    label = {EXIT_REFUSED: "refused", EXIT_USAGE: "usage error"}.get(code, "error")
    message = render.one_sentence(str(err))
    err_out.write(f"hitl: {label}: {message}\n")
    if ctx.json:
        payload = {"error": type(err).__name__, "message": message, "exit_code": code}
        for key in ("request_id", "decided_by", "status"):
            if getattr(err, key, None) is not None:
                payload[key] = getattr(err, key)
        ctx.out.write(render.dumps(payload) + "\n")
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a StringIO in tests)
        pass


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    err_out = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"] and not {"-h", "--help"} & set(argv[1:2]):
        from .bench import run_argv  # every option goes to python -m bench as it is

        return run_argv(argv[1:], out=out, err=err_out)
    args = build_parser().parse_args(argv)
    if args.command in _REVIEW_COMMANDS:
        from ..review.cli import run

        return run(args, out=out, err=err_out)
    if args.command == "feedback":
        from ..feedback.cli import run as feedback

        return feedback(args, out=out, err=err_out)
    if args.command == "simulate":
        from ..sim.cli import run as simulate

        return simulate(args, out=out, err=err_out)
    if args.command == "demo":
        from ..demo.cli import run as demo

        return demo(args, out=out, err=err_out)
    if args.command == "bench":
        from .bench import run as bench

        return bench(args, out=out, err=err_out)
    ctx = _Ctx(args, out)
    try:
        return _COMMANDS[args.command](ctx)
    except DecisionError as exc:
        return _fail(ctx, EXIT_REFUSED, exc, err_out)
    except (_Usage, ConfigurationError) as exc:
        return _fail(ctx, EXIT_USAGE, exc, err_out)
    except HitlError as exc:
        return _fail(ctx, EXIT_ERROR, exc, err_out)
    except KeyboardInterrupt:
        return _fail(ctx, EXIT_ERROR, RuntimeError("interrupted"), err_out)
    except BrokenPipeError:  # `hitl ... | head`: the reader left; end quietly
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # an unexpected failure: say what, keep the traceback opt-in
        if os.environ.get("HITL_DEBUG"):
            raise
        return _fail(ctx, EXIT_ERROR, RuntimeError(f"{type(exc).__name__}: {exc}"), err_out)
    finally:
        ctx.close()
