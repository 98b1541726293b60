"""An in-process stand-in for the Phoenix REST endpoints the review package uses, served
through ``httpx.MockTransport`` for fast unit tests. It mimics the behaviours verified
against Phoenix 20.26 (see the real-server tests in ``test_review_phoenix.py``): 404 for a
project before it exists, 409 on duplicate config names, upsert of span annotations on
(name, span, identifier), 404 for ``sync=true`` on unknown spans, no label validation."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

import httpx


def gid(kind: str, n: int) -> str:
    return base64.b64encode(f"{kind}:{n}".encode()).decode()


@dataclass
class FakePhoenix:
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    assigned: dict[str, list[str]] = field(default_factory=dict)
    spans: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    down: bool = False
    fail_status: int | None = None
    refuse_span: str | None = None
    """Answer 422 to any annotation batch holding this span id."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    _next: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **kw: Any) -> Any:
        from hitl_langgraph.review import PhoenixClient

        kw.setdefault("sleep", lambda s: None)
        return PhoenixClient("http://phoenix.test", transport=self.transport(), **kw)

    def add_project(self, name: str) -> dict[str, Any]:
        self._next += 1
        self.projects[name] = {"id": gid("Project", self._next), "name": name, "description": ""}
        return self.projects[name]

    def add_span(self, project: str, span_id: str, trace_id: str = "t" * 32, **kw: Any) -> None:
        if project not in self.projects:
            self.add_project(project)
        self._next += 1
        self.spans[span_id] = {
            "id": gid("Span", self._next),
            "name": kw.get("name", "tools"),
            "context": {"trace_id": trace_id, "span_id": span_id},
            "span_kind": kw.get("span_kind", "CHAIN"),
            "parent_id": kw.get("parent_id"),
            "start_time": kw.get("start_time", "2025-03-01T12:00:00+00:00"),
            "end_time": "2025-03-01T12:00:01+00:00",
            "status_code": "OK",
            "attributes": kw.get("attributes", {}),
            "project": project,
        }

    # -- HTTP ---------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        self.requests.append((request.method, path))
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.fail_status is not None:
            return httpx.Response(self.fail_status, json={"detail": "injected failure"})
        params = request.url.params
        body = json.loads(request.content) if request.content else None
        parts = path.strip("/").split("/")
        if path == "/healthz":
            return httpx.Response(200, text="OK")
        if parts[:2] == ["v1", "projects"]:
            return self._projects(request.method, parts[2:], params, body)
        if parts[:2] == ["v1", "annotation_configs"]:
            return self._configs(request.method, parts[2:], body)
        if path == "/v1/span_annotations" and request.method == "POST":
            return self._annotate(body or {}, params.get("sync") == "true")
        return httpx.Response(404, json={"detail": "Not Found"})

    def _projects(self, method: str, rest: list[str], params: Any, body: Any) -> httpx.Response:
        if not rest:
            if method == "POST":
                if body["name"] in self.projects:
                    return httpx.Response(422, json={"detail": "name taken"})
                return httpx.Response(200, json={"data": self.add_project(body["name"])})
            return httpx.Response(200, json={"data": list(self.projects.values())})
        project = self.projects.get(rest[0])
        if project is None:
            return httpx.Response(404, json={"detail": f"Project {rest[0]} not found"})
        if len(rest) == 1:
            return httpx.Response(200, json={"data": project})
        what = rest[1]
        if what == "annotation_configs":
            names = self.assigned.setdefault(project["name"], [])
            if method == "PUT" and len(rest) == 3:
                config = next(
                    (c for c in self.configs.values() if rest[2] in (c["id"], c["name"])), None
                )
                if config is None:
                    return httpx.Response(404, json={"detail": "config not found"})
                if config["name"] not in names:
                    names.append(config["name"])
                return httpx.Response(200, json={"data": config})
            data = [self.configs[n] for n in names]
            return httpx.Response(200, json={"data": data, "next_cursor": None})
        if what == "span_annotations":
            span_ids = set(params.get_list("span_ids"))
            names = set(params.get_list("include_annotation_names"))
            rows = [
                a
                for (_, span, _), a in self.annotations.items()
                if span in span_ids and (not names or a["name"] in names)
            ]
            return httpx.Response(200, json={"data": rows, "next_cursor": None})
        if what == "spans":
            trace_ids = set(params.get_list("trace_id"))
            span_ids = set(params.get_list("span_id"))
            rows = [
                {k: v for k, v in s.items() if k != "project"}
                for s in self.spans.values()
                if s["project"] == project["name"]
                and (not trace_ids or s["context"]["trace_id"] in trace_ids)
                and (not span_ids or s["context"]["span_id"] in span_ids)
            ]
            return httpx.Response(200, json={"data": rows, "next_cursor": None})
        return httpx.Response(404, json={"detail": "Not Found"})

    def _configs(self, method: str, rest: list[str], body: Any) -> httpx.Response:
        if not rest and method == "POST":
            if body["name"] in self.configs or body["name"] == "note":
                return httpx.Response(409, json={"detail": "name taken"})
            self._next += 1
            config = {**body, "id": gid(body["type"].title() + "AnnotationConfig", self._next)}
            self.configs[body["name"]] = config
            return httpx.Response(200, json={"data": config})
        if not rest:
            return httpx.Response(
                200, json={"data": list(self.configs.values()), "next_cursor": None}
            )
        found = next((c for c in self.configs.values() if rest[0] in (c["id"], c["name"])), None)
        if found is None:
            return httpx.Response(404, json={"detail": "Annotation configuration not found"})
        if method == "PUT":
            self.configs[found["name"]] = {**body, "id": found["id"]}
        return httpx.Response(200, json={"data": self.configs[found["name"]]})

    def _annotate(self, body: dict[str, Any], sync: bool) -> httpx.Response:
        items = body.get("data") or []
        if self.refuse_span and any(i["span_id"] == self.refuse_span for i in items):
            return httpx.Response(422, json={"detail": "invalid annotation"})
        missing = sorted({i["span_id"] for i in items} - set(self.spans))
        if sync and missing:
            return httpx.Response(
                404, json={"detail": f"Spans with IDs {', '.join(missing)} do not exist."}
            )
        ids = []
        now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        for item in items:
            key = (item["name"], item["span_id"], item.get("identifier") or "")
            existing = self.annotations.get(key)
            if existing is None:
                self._next += 1
                existing = {"id": gid("SpanAnnotation", self._next), "created_at": now}
            existing.update(
                name=item["name"],
                span_id=item["span_id"],
                identifier=item.get("identifier") or "",
                annotator_kind=item["annotator_kind"],
                result=item.get("result"),
                metadata=item.get("metadata") or {},
                source="API",
                user_id=None,
                updated_at=now,
            )
            self.annotations[key] = existing
            ids.append({"id": existing["id"]})
        return httpx.Response(200, json={"data": ids if sync else []})
