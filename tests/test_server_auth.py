"""Reviewer identity from the server's auth: the inbox's HTTP route records and checks
the authenticated caller, never a name the client typed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fixtures_server import Deployment
from test_server import pause

from hitl_langgraph import open_store

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def http(dep: Deployment, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=dep.url, headers=bearer(token) if token else {}, timeout=60)


def test_unauthenticated_callers_are_refused(auth_deployment: Deployment) -> None:
    with http(auth_deployment) as c:
        assert c.get("/hitl/pending").status_code == 401
        assert c.post("/threads/search", json={}).status_code == 401
    with http(auth_deployment, "tok-mallory") as c:
        assert c.get("/hitl/pending").status_code == 401


def test_decisions_record_the_authenticated_reviewer(auth_deployment: Deployment) -> None:
    dep = auth_deployment
    client = dep.client(headers=bearer("tok-carl"))  # carl asks the agent
    to = "acct" + uuid.uuid4().hex[:10]
    tid, _iid, rid = pause(client, to)
    with open_store(dep.store_url) as store:  # the gate saw the server's user as requester
        assert store.get_request(rid).requester == "carl"  # type: ignore[union-attr]
    with http(dep, "tok-bob") as bob, http(dep, "tok-ann") as ann:
        pending = ann.get("/hitl/pending", params={"thread": tid}).json()
        assert [r["request_id"] for r in pending["items"]] == [rid]
        shown = ann.get(f"/hitl/requests/{rid}").json()
        assert shown["request"]["tool"] == "transfer_funds" and shown["audit"]
        # bob (support) may not approve a finance request, nor pose as ann
        r = bob.post(f"/hitl/requests/{rid}/approve", json={})
        assert r.status_code == 403 and "finance" in r.json()["message"]
        r = bob.post(f"/hitl/requests/{rid}/approve", json={"reviewer": "ann"})
        assert r.status_code == 403 and r.json()["error"] == "NotAuthorized"
        r = ann.post(f"/hitl/requests/{rid}/approve", json={"reason": "invoice checked"})
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "resumed" and r.json()["decided_by"] == "ann"
        again = bob.post(f"/hitl/requests/{rid}/reject", json={})
        assert again.status_code in (403, 409)
        trail: dict[str, Any] = ann.get("/hitl/audit", params={"request_id": rid}).json()
        assert trail["verified"]["ok"]
        decided = [e for e in trail["events"] if e["event"] == "decided"]
        assert [e["actor"] for e in decided] == ["ann"]
    assert dep.lines("executed", to) == 1
    assert client.threads.get(tid)["status"] == "idle"
    with open_store(dep.store_url) as store:
        assert store.get_request(rid).decided_by == "ann"  # type: ignore[union-attr]


def test_the_requester_cannot_approve_their_own_request(auth_deployment: Deployment) -> None:
    dep = auth_deployment
    tid, _iid, rid = pause(dep.client(headers=bearer("tok-ann")), "acct" + uuid.uuid4().hex[:8])
    with http(dep, "tok-ann") as ann:
        r = ann.post(f"/hitl/requests/{rid}/approve", json={})
        assert r.status_code == 403 and "separation of duties" in r.json()["message"]


def _cli(dep: Deployment, *args: str, token: str | None = None) -> tuple[int, str, str]:
    import io

    from hitl_langgraph.cli import main

    out, err = io.StringIO(), io.StringIO()
    extra = ["--token", token] if token else []
    code = main(["--deployment", dep.url, *extra, *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_sends_a_token_instead_of_trusting_as(auth_deployment: Deployment) -> None:
    import json

    dep = auth_deployment
    client = dep.client(headers=bearer("tok-carl"))
    to = "acct" + uuid.uuid4().hex[:10]
    tid, _iid, rid = pause(client, to)
    code, out, err = _cli(dep, "pending", "--thread", tid, "--json", token="tok-ann")
    assert code == 0, err
    assert [r["request_id"] for r in json.loads(out)["items"]] == [rid]
    code, out, err = _cli(dep, "show", rid, token="tok-ann")
    assert code == 0 and "transfer_funds" in out, err
    # --as is refused: the token says who you are
    code, _, err = _cli(dep, "approve", rid, "--as", "ann", token="tok-bob")
    assert code != 0 and "drop --as" in err
    code, _, err = _cli(dep, "approve", rid, token="tok-bob")  # bob lacks finance
    assert code != 0 and "finance" in err
    code, _, err = _cli(dep, "approve", rid, token="tok-nobody")
    assert code != 0 and "refused the token" in err
    code, out, err = _cli(dep, "approve", rid, "--json", token="tok-ann")
    assert code == 0, err
    res = json.loads(out)
    assert res["outcome"] == "resumed" and res["decided_by"] == "ann"
    code, out, err = _cli(dep, "audit", "verify", token="tok-ann")
    assert code == 0, err
    assert dep.lines("executed", to) == 1
