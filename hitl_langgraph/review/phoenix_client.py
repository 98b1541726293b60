"""A small, typed client for the Phoenix REST endpoints the review queue needs.

Only ``httpx``; it never imports the ``phoenix`` package (the server package costs ~7 s
and ~400 MB to import). Covers span annotations (write, read), annotation configs
(create, list, assign to a project), projects and span/trace reads, plus the deep link
into the Phoenix UI.

Phoenix answers 404 for every ``/v1/projects/{name}/...`` read until the project's
first span has arrived; those reads are retried with backoff for up to
``project_wait`` seconds before :class:`PhoenixNotFound` is raised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast
from urllib.parse import quote

from ..errors import missing_dependency
from .errors import PhoenixConflict, PhoenixError, PhoenixNotFound, PhoenixUnavailable

try:
    import httpx
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_dependency("httpx", "tracing", exc) from exc

__all__ = [
    "DEFAULT_BASE_URL",
    "PhoenixClient",
    "PhoenixConflict",
    "PhoenixError",
    "PhoenixNotFound",
    "PhoenixUnavailable",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "http://127.0.0.1:6006"
_SPAN_ID_CHUNK = 200  # span ids per GET: keeps the URL well under the server's line limit


def resolve_base_url(url: str | None = None) -> str:
    """``url``, else ``PHOENIX_BASE_URL``, else ``PHOENIX_COLLECTOR_ENDPOINT``, else the
    local default; an OTLP path (``/v1/traces``) and trailing slashes are removed."""
    value = (
        url or os.environ.get("PHOENIX_BASE_URL") or os.environ.get("PHOENIX_COLLECTOR_ENDPOINT")
    )
    value = (value or DEFAULT_BASE_URL).strip().rstrip("/")
    value = value.removesuffix("/v1/traces")
    if "://" not in value:
        value = "http://" + value
    return value


def _q(segment: str) -> str:
    return quote(segment, safe="")


class PhoenixClient:
    """Typed access to Phoenix's REST API.

    Args:
        base_url: Phoenix's URL (UI and REST), see :func:`resolve_base_url`.
        http: An ``httpx.Client`` to use (its ``base_url`` is ignored); it is not closed
            by :meth:`close`.
        transport: An ``httpx`` transport for a client built here (e.g. a
            ``httpx.MockTransport`` in unit tests).
        timeout: Seconds per request (connect, read, write).
        api_key: Sent as a bearer token; defaults to ``PHOENIX_API_KEY``, else
            ``PHOENIX_ADMIN_SECRET``.
        headers: Extra headers for every request.
        project_wait: Seconds to keep retrying project reads that answer 404.
        sleep: Called between retries (injectable for tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        project_wait: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.project_wait = project_wait
        self._sleep = sleep
        self._headers = dict(headers or {})
        key = (
            api_key
            if api_key is not None
            else os.environ.get("PHOENIX_API_KEY") or os.environ.get("PHOENIX_ADMIN_SECRET")
        )
        if key:
            self._headers.setdefault("Authorization", f"Bearer {key}")
        self._owns_http = http is None
        self._http = http or httpx.Client(transport=transport, timeout=timeout)
        self._timeout = timeout

    # -- plumbing -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> PhoenixClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PhoenixClient({self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request; the decoded JSON body (``None`` for an empty one).

        Raises:
            PhoenixUnavailable: No answer (connection refused, timeout).
            PhoenixNotFound, PhoenixConflict, PhoenixError: Phoenix answered 404, 409 or
                another error status; the message carries Phoenix's detail.
        """
        url = self.base_url + path
        try:
            resp = self._http.request(
                method,
                url,
                params=cast(Any, params),
                json=json,
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.TransportError as exc:
            raise PhoenixUnavailable(
                f"could not reach Phoenix at {self.base_url} ({type(exc).__name__}: {exc}); "
                "check the URL or start a local server with `hitl phoenix`. Spooled review "
                "writes stay in the store and are sent by `hitl sync` (or the next run).",
                method=method,
                url=url,
                detail=str(exc),
            ) from exc
        if resp.status_code >= 400:
            raise self._error(resp, method, url)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise PhoenixError(
                f"{method} {url} answered {resp.status_code} with non-JSON content "
                f"({resp.headers.get('content-type', '?')}); is {self.base_url} Phoenix's "
                "base URL (not its UI behind a proxy path, or the OTLP port)?",
                status_code=resp.status_code,
                method=method,
                url=url,
                detail=resp.text[:200],
            ) from exc

    @staticmethod
    def _error(resp: httpx.Response, method: str, url: str) -> PhoenixError:
        try:
            body = resp.json()
            detail = body.get("detail", body) if isinstance(body, dict) else body
        except ValueError:
            detail = resp.text
        detail = str(detail)[:500]
        where = f"{method} {url} -> {resp.status_code}: {detail}"
        cls: type[PhoenixError] = PhoenixError
        if resp.status_code == 404:
            cls, hint = (
                PhoenixNotFound,
                (
                    "Phoenix creates a project when its first span arrives; check the project "
                    "name and that traces are sent there (or the span id)"
                ),
            )
        elif resp.status_code == 409:
            cls, hint = PhoenixConflict, "it exists already"
        elif resp.status_code in (401, 403):
            hint = "Phoenix has authentication on: set PHOENIX_API_KEY (or pass api_key=)"
        elif resp.status_code == 422:
            hint = "Phoenix rejected the request body or parameters"
        else:
            hint = "see the Phoenix server log"
        return cls(
            f"Phoenix {where} ({hint})",
            status_code=resp.status_code,
            method=method,
            url=url,
            detail=detail,
        )

    def _project_request(
        self, method: str, path: str, params: Sequence[tuple[str, Any]] = ()
    ) -> Any:
        """A request under ``/v1/projects/{p}``; 404 (project not created yet) is retried
        with backoff for up to ``project_wait`` seconds."""
        deadline = time.monotonic() + self.project_wait
        delay = 0.1
        while True:
            try:
                return self.request(method, path, params=list(params))
            except PhoenixNotFound:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                self._sleep(min(delay, remaining))
                delay *= 2

    def _pages(
        self, path: str, params: Sequence[tuple[str, Any]], limit: int | None, page: int
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while limit is None or len(out) < limit:
            size = page if limit is None else min(page, limit - len(out))
            query = [*params, ("limit", size)] + ([("cursor", cursor)] if cursor else [])
            body = (
                self._project_request("GET", path, query)
                if path.startswith("/v1/projects/")
                else (self.request("GET", path, params=query))
            )
            out.extend(body.get("data") or [])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        return out

    # -- health and projects ------------------------------------------------------------
    def healthy(self) -> bool:
        """True if ``GET /healthz`` answers 200 now."""
        try:
            return (
                self._http.get(self.base_url + "/healthz", timeout=self._timeout).status_code == 200
            )
        except httpx.HTTPError:
            return False

    def get_project(self, project: str) -> dict[str, Any] | None:
        """The project (``id`` is its global id, used in UI links), or ``None``."""
        try:
            body = self.request("GET", f"/v1/projects/{_q(project)}")
        except PhoenixNotFound:
            return None
        return cast(dict[str, Any], body["data"])

    def list_projects(self) -> list[dict[str, Any]]:
        """Every project (``name``, ``id``), all pages."""
        return self._pages("/v1/projects", [], None, 100)

    def find_span(self, project: str, span_id: str) -> dict[str, Any] | None:
        """The span with this OpenTelemetry id in ``project``, or ``None``.

        Raises:
            PhoenixNotFound: the project does not exist (or holds no span yet).
        """
        found = self.request(
            "GET", f"/v1/projects/{_q(project)}/spans", params=[("span_id", span_id), ("limit", 1)]
        )
        data = found.get("data") or []
        return cast(dict[str, Any], data[0]) if data else None

    def ensure_project(self, project: str, *, description: str = "") -> dict[str, Any]:
        """The project, created if missing (so configs can be assigned before any span)."""
        found = self.get_project(project)
        if found is not None:
            return found
        try:
            body = self.request(
                "POST", "/v1/projects", json={"name": project, "description": description}
            )
            return cast(dict[str, Any], body["data"])
        except PhoenixError:
            found = self.get_project(project)  # created concurrently (first span, other worker)
            if found is None:
                raise
            return found

    # -- users (authentication on; needs an admin key or PHOENIX_ADMIN_SECRET) -----------
    def list_users(self) -> list[dict[str, Any]]:
        """Phoenix users (``id`` global id, ``username``, ``email``, ``role``), all pages."""
        return self._pages("/v1/users", [], None, 100)

    def create_user(
        self, *, username: str, email: str, role: str = "MEMBER", password: str
    ) -> dict[str, Any]:
        """Create a LOCAL Phoenix user (asked to change the password at first login)."""
        body = self.request(
            "POST",
            "/v1/users",
            json={
                "user": {
                    "auth_method": "LOCAL",
                    "username": username,
                    "email": email,
                    "role": role,
                    "password": password,
                },
                "send_welcome_email": False,
            },
        )
        return cast(dict[str, Any], body["data"])

    # -- annotation configs -------------------------------------------------------------
    def list_annotation_configs(self) -> list[dict[str, Any]]:
        """Every annotation config on the server (names are global)."""
        return self._pages("/v1/annotation_configs", [], None, 100)

    def get_annotation_config(self, name_or_id: str) -> dict[str, Any] | None:
        """One config by name or global id, or ``None``."""
        try:
            body = self.request("GET", f"/v1/annotation_configs/{_q(name_or_id)}")
        except PhoenixNotFound:
            return None
        return cast(dict[str, Any], body["data"])

    def create_annotation_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Create a config; :class:`PhoenixConflict` if the name is taken."""
        body = self.request("POST", "/v1/annotation_configs", json=dict(config))
        return cast(dict[str, Any], body["data"])

    def update_annotation_config(self, config_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a config (``PUT`` takes the whole definition)."""
        body = self.request("PUT", f"/v1/annotation_configs/{_q(config_id)}", json=dict(config))
        return cast(dict[str, Any], body["data"])

    def project_annotation_configs(self, project: str) -> list[dict[str, Any]]:
        """The configs assigned to ``project`` (what the UI offers its reviewers)."""
        return self._pages(f"/v1/projects/{_q(project)}/annotation_configs", [], None, 100)

    def assign_annotation_config(self, project: str, config: str) -> dict[str, Any]:
        """Assign a config (name or id) to a project; idempotent on the server."""
        path = f"/v1/projects/{_q(project)}/annotation_configs/{_q(config)}"
        return cast(dict[str, Any], self._project_request("PUT", path)["data"])

    # -- span annotations ---------------------------------------------------------------
    def annotate_spans(self, annotations: Sequence[Mapping[str, Any]]) -> list[str]:
        """Write span annotations synchronously (``sync=true``); their Phoenix ids.

        Phoenix upserts on (name, span, identifier). Unlike ``sync=false`` (which
        answers 200 and can fail silently later), a span Phoenix does not hold yet gives
        :class:`PhoenixNotFound`, so the caller knows to retry.
        """
        if not annotations:
            return []
        body = self.request(
            "POST",
            "/v1/span_annotations",
            params={"sync": "true"},
            json={"data": [dict(a) for a in annotations]},
        )
        return [str(item["id"]) for item in (body or {}).get("data") or []]

    def span_annotations(
        self,
        project: str,
        span_ids: Iterable[str],
        *,
        names: Sequence[str] | None = None,
        page: int = 1000,
    ) -> list[dict[str, Any]]:
        """Annotations of these spans (every identifier, every kind), all pages."""
        ids = sorted(set(span_ids))
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), _SPAN_ID_CHUNK):
            params: list[tuple[str, Any]] = [
                ("span_ids", s) for s in ids[start : start + _SPAN_ID_CHUNK]
            ]
            params += [("include_annotation_names", n) for n in names or ()]
            out.extend(
                self._pages(f"/v1/projects/{_q(project)}/span_annotations", params, None, page)
            )
        return out

    # -- spans and traces ----------------------------------------------------------------
    def spans(
        self,
        project: str,
        *,
        trace_ids: Sequence[str] | None = None,
        span_ids: Sequence[str] | None = None,
        span_kinds: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
        parent_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Spans of ``project`` (newest first) matching every filter given."""
        params: list[tuple[str, Any]] = []
        params += [("trace_id", t) for t in trace_ids or ()]
        params += [("span_id", s) for s in span_ids or ()]
        params += [("span_kind", k) for k in span_kinds or ()]
        params += [("name", n) for n in names or ()]
        if parent_id is not None:
            params.append(("parent_id", parent_id))
        return self._pages(f"/v1/projects/{_q(project)}/spans", params, limit, 1000)

    def traces(
        self, project: str, *, limit: int | None = 100, include_spans: bool = False
    ) -> list[dict[str, Any]]:
        """Traces of ``project``, newest first."""
        params = [("include_spans", "true" if include_spans else "false")]
        return self._pages(f"/v1/projects/{_q(project)}/traces", params, limit, 100)

    # -- UI links --------------------------------------------------------------------------
    def trace_url(self, project_id: str, trace_id: str, span_node_id: str | None = None) -> str:
        """Deep link to a trace in the Phoenix UI, with a span selected.

        ``project_id`` and ``span_node_id`` are Phoenix global ids (``id`` of
        :meth:`get_project` and of a span from :meth:`spans`), ``trace_id`` the
        OpenTelemetry trace id: the same URL the UI builds for "View Trace".
        """
        url = f"{self.base_url}/projects/{_q(project_id)}/traces/{_q(trace_id)}"
        return url + (f"?selectedSpanNodeId={_q(span_node_id)}" if span_node_id else "")

    def spans_url(self, project_id: str, filter_condition: str | None = None) -> str:
        """The project's span list in the Phoenix UI, filtered with Phoenix's own filter
        expression (the UI reads it from ``?spanFilterCondition=``, as its filter box
        writes it)."""
        url = f"{self.base_url}/projects/{_q(project_id)}/spans"
        if filter_condition:
            from urllib.parse import urlencode

            url += "?" + urlencode({"spanFilterCondition": filter_condition})
        return url

    def span_redirect_url(self, span_id: str) -> str:
        """A link that needs no lookup: the UI resolves the OpenTelemetry span id itself."""
        return f"{self.base_url}/redirects/spans/{_q(span_id)}"
