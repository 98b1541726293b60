"""The inbox over HTTP, as a custom route of the Agent Server (``http.app`` in
``langgraph.json``), behind the server's own auth.

``create_inbox_app(store)`` returns a Starlette app with, under ``/hitl``:

=========================================  ============================================
``GET  /hitl/pending``                     pending requests (``tool``, ``thread``,
                                           ``role``, ``route``, ``min_risk``,
                                           ``overdue``, ``limit``, ``cursor``)
``GET  /hitl/requests/{id}``               one request and its audit events
``POST /hitl/requests/{id}/{decision}``    ``approve`` / ``reject`` / ``respond`` /
                                           ``edit``; JSON body: ``reason``, ``message``,
                                           ``args``, ``tool``, ``digest``
``GET  /hitl/audit``                       audit events (``request_id``, ``after_seq``,
                                           ``limit``) and the chain's verification
=========================================  ============================================

With ``"http": {"app": ..., "enable_custom_route_auth": true}`` the server authenticates
every call to these routes; the reviewer is :func:`reviewer_from_user` of the
authenticated user - a body naming a reviewer or roles is refused. A decision is
recorded under the usual authority, quorum and audit rules and resumed through the
server's API (a ``RemoteGraph`` to the same server, with the caller's credentials), so
the resume run belongs to the caller too. Blocking store work runs on the store's async
twin; nothing blocks the server's event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ..errors import (
    AlreadyDecided,
    ConfigurationError,
    DecisionError,
    HitlError,
    NotAuthorized,
    RequestNotFound,
    missing_dependency,
)
from ..inbox import Inbox
from ..store.aio import AsyncStore
from ..store.base import ApprovalStore
from ..store.records import AuditEvent
from .identity import reviewer_from_user
from .remote import remote_graph

__all__ = ["DECISIONS", "create_inbox_app"]

DECISIONS = ("approve", "reject", "respond", "edit")
_BODY_KEYS = {"reason", "message", "args", "tool", "digest", "graph_id"}


def _status(exc: HitlError) -> int:
    if isinstance(exc, NotAuthorized):
        return 403
    if isinstance(exc, RequestNotFound):
        return 404
    if isinstance(exc, AlreadyDecided):
        return 409
    if isinstance(exc, DecisionError):
        return 422
    if isinstance(exc, ConfigurationError):
        return 400
    return 500


def _event(e: AuditEvent) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(e).items()}


def _error_body(exc: HitlError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    for attr in ("request_id", "status", "decided_by"):
        if getattr(exc, attr, None) is not None:
            body[attr] = getattr(exc, attr)
    return body


def create_inbox_app(
    store: ApprovalStore,
    *,
    graph_id: str | None = None,
    prefix: str = "/hitl",
    server_url: str | None = None,
) -> Any:
    """A Starlette app serving the inbox of ``store`` (see the module doc).

    ``graph_id`` is the graph resumed for a decision; by default the thread's own
    (``metadata.graph_id``, which the server sets). ``server_url`` is where the
    server answers its own API (default: the URL the request came in on)."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError as exc:  # pragma: no cover - starlette ships with langgraph-api
        raise missing_dependency("starlette", "server", exc) from exc

    twin = AsyncStore.of(store)
    Handler = Callable[[Request], Awaitable[Any]]

    def guarded(fn: Handler) -> Handler:
        async def handle(request: Request) -> Any:
            try:
                return JSONResponse(await fn(request))
            except HitlError as exc:
                return JSONResponse(_error_body(exc), status_code=_status(exc))

        return handle

    def reviewer(request: Request) -> Any:
        return reviewer_from_user(request.scope.get("user"))

    async def pending(request: Request) -> Any:
        reviewer(request)  # only authenticated callers see the queue
        q = request.query_params
        filters: dict[str, Any] = {
            k: q[k] for k in ("tool", "route", "role", "cursor") if q.get(k) is not None
        }
        if q.get("thread"):
            filters["thread_id"] = q["thread"]
        if q.get("min_risk"):
            filters["min_risk"] = float(q["min_risk"])
        if q.get("overdue") in ("1", "true"):
            filters["overdue"] = True
        filters["limit"] = int(q.get("limit", "50"))
        page = await Inbox(store).apending(**filters)
        return {"items": [r.to_dict() for r in page.items], "next_cursor": page.next_cursor}

    async def show(request: Request) -> Any:
        reviewer(request)
        rid = request.path_params["request_id"]
        rec = await Inbox(store).aget(rid)
        history = await twin.list_audit(request_id=rid)
        return {"request": rec.to_dict(), "audit": [_event(e) for e in history]}

    async def decide(request: Request) -> Any:
        who = reviewer(request)
        rid = request.path_params["request_id"]
        kind = request.path_params["decision"]
        if kind not in DECISIONS:
            raise ConfigurationError(f"unknown decision {kind!r}; use one of {DECISIONS}")
        raw = await request.body()
        body = (await request.json()) if raw.strip() else {}
        if not isinstance(body, dict):
            raise ConfigurationError("the body must be a JSON object")
        extra = set(body) - _BODY_KEYS
        if extra:
            raise NotAuthorized(
                f"the body names {sorted(extra)}; the reviewer and roles are the "
                "authenticated caller's and cannot be given"
            )
        rec = await Inbox(store).aget(rid)
        base = server_url or str(request.base_url).rstrip("/")
        auth = request.headers.get("authorization")
        headers = {"Authorization": auth} if auth else None
        gid = body.get("graph_id") or graph_id or await _thread_graph(base, headers, rec.thread_id)
        inbox = Inbox(store, remote_graph(base, gid, token="", headers=headers))
        digest = body.get("digest")
        if kind == "approve":
            res = await inbox.aapprove(rid, reviewer=who, reason=body.get("reason"), digest=digest)
        elif kind == "reject":
            res = await inbox.areject(rid, reviewer=who, reason=body.get("reason"), digest=digest)
        elif kind == "respond":
            res = await inbox.arespond(
                rid, reviewer=who, message=str(body.get("message") or ""), digest=digest
            )
        else:
            if not isinstance(body.get("args"), dict):
                raise ConfigurationError("an edit needs 'args': a JSON object")
            res = await inbox.aedit(
                rid,
                reviewer=who,
                args=body["args"],
                tool=body.get("tool"),
                reason=body.get("reason"),
                digest=digest,
            )
        return res.to_dict()

    async def audit(request: Request) -> Any:
        reviewer(request)
        q = request.query_params
        events = await twin.list_audit(
            after_seq=int(q.get("after_seq", "0")),
            limit=int(q.get("limit", "1000")),
            request_id=q.get("request_id"),
        )
        report = await twin.verify_audit()
        return {
            "events": [_event(e) for e in events],
            "verified": {"ok": report.ok, "events": report.events, "problems": report.problems},
        }

    routes = [
        Route(f"{prefix}/pending", guarded(pending), methods=["GET"]),
        Route(f"{prefix}/requests/{{request_id}}", guarded(show), methods=["GET"]),
        Route(f"{prefix}/requests/{{request_id}}/{{decision}}", guarded(decide), methods=["POST"]),
        Route(f"{prefix}/audit", guarded(audit), methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _thread_graph(base: str, headers: dict[str, str] | None, thread_id: str) -> str:
    from langgraph_sdk import get_client

    client = get_client(url=base, headers=headers)
    thread = await client.threads.get(thread_id)
    gid = (thread.get("metadata") or {}).get("graph_id")
    if not gid:
        raise ConfigurationError(
            f"thread {thread_id} has no graph_id in its metadata; create the app with "
            "create_inbox_app(store, graph_id=...)"
        )
    return str(gid)
