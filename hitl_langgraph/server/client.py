"""A client of the inbox's HTTP route (:mod:`hitl_langgraph.server.app`).

``hitl --deployment URL --token TOKEN pending|show|approve|reject|respond|edit|audit``
uses it: the reviewer is whoever the server authenticates the token as, so the CLI needs
no store access and cannot claim a name (``--as``) or a role.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    AlreadyDecided,
    ConfigurationError,
    DecisionError,
    HitlError,
    InvalidDecision,
    NotAuthorized,
    NotPending,
    RequestNotFound,
    missing_dependency,
)

__all__ = ["InboxClient", "RemoteInboxError"]


class RemoteInboxError(HitlError):
    """The deployment's inbox route failed in a way that is not a decision error."""


def _raise(status: int, body: Any, url: str) -> None:
    if not isinstance(body, dict):
        body = {"message": str(body)}
    name, msg = body.get("error"), str(body.get("message") or body.get("detail") or body)
    rid = body.get("request_id")
    if status == 401:
        raise NotAuthorized(
            f"the deployment at {url} refused the token ({msg}); pass a valid --token "
            "(or HITL_TOKEN)"
        )
    if name == "AlreadyDecided":
        raise AlreadyDecided(
            msg, request_id=rid, status=str(body.get("status")), decided_by=body.get("decided_by")
        )
    if name == "RequestNotFound" and rid:
        raise RequestNotFound(str(rid))
    for cls in (NotAuthorized, NotPending, InvalidDecision):
        if name == cls.__name__:
            raise cls(msg, request_id=rid)
    if status == 403:
        raise NotAuthorized(msg, request_id=rid)
    if name == "ConfigurationError":
        raise ConfigurationError(msg)
    if 400 <= status < 500 and name:
        raise DecisionError(f"{name}: {msg}", request_id=rid)
    raise RemoteInboxError(f"{url} answered {status}: {msg}")


class InboxClient:
    """``pending``, ``show``, ``decide`` and ``audit`` against ``{url}{prefix}``."""

    def __init__(
        self, url: str, token: str, *, prefix: str = "/hitl", timeout: float = 120.0
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx comes with langgraph-sdk
            raise missing_dependency("httpx", "server", exc) from exc
        if not token:
            raise ConfigurationError(
                "the deployment's inbox route needs a token: --token or HITL_TOKEN"
            )
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url + prefix,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise RemoteInboxError(f"cannot reach the deployment at {self.url}: {exc}") from exc
        try:
            body = r.json()
        except ValueError:
            body = r.text
        if r.status_code >= 400:
            _raise(r.status_code, body, self.url)
        if not isinstance(body, dict):
            raise RemoteInboxError(f"{self.url}{path} answered with {body!r}, not an object")
        return body

    def pending(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v not in (None, False)}
        return self._call("GET", "/pending", params=params)

    def show(self, request_id: str) -> dict[str, Any]:
        return self._call("GET", f"/requests/{request_id}")

    def decide(self, request_id: str, decision: str, **body: Any) -> dict[str, Any]:
        payload = {k: v for k, v in body.items() if v is not None}
        return self._call("POST", f"/requests/{request_id}/{decision}", json=payload)

    def audit(self, request_id: str | None = None) -> dict[str, Any]:
        params = {"request_id": request_id} if request_id else {}
        return self._call("GET", "/audit", params=params)
