"""Verdicts attributed to who made them: Phoenix with authentication on, reviewers made
Phoenix users by ``hitl review users add``, UI annotations (the GraphQL mutation the UI
sends, as each logged-in user) collected under their reviewer, authority rules applied,
and guidance that needs two distinct reviewers activated from UI verdicts alone."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures_graph import Ledger, build_bank_app, thread
from fixtures_phoenix import PHOENIX_ADMIN_SECRET
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph.feedback import PromptRegistry, PromptTemplate
from hitl_langgraph.feedback.derive import derive_guidance
from hitl_langgraph.feedback.guidance import GuidanceConfig, GuidanceSet
from hitl_langgraph.feedback.render import render_guidance
from hitl_langgraph.review import (
    GUIDANCE_NAME,
    VERDICT_NAME,
    PhoenixClient,
    ReviewerDirectory,
    ReviewQueue,
    ReviewSampler,
    ReviewSampling,
    constant_rate,
)
from hitl_langgraph.review import cli as review_cli
from hitl_langgraph.store import ApprovalStore, open_store
from hitl_langgraph.tracing import setup_tracing
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix

UI_MUTATION = """mutation($input: [CreateSpanAnnotationInput!]!) {
  createSpanAnnotations(input: $input) { spanAnnotations { id identifier source } }
}"""
BASE = PromptTemplate.chat("You are the bank agent.\n\n{{reviewer_guidance}}", "{{question}}")
RULE = "Confirm the recipient's account with the customer before any transfer over 5000"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    st = open_store(f"sqlite:///{tmp_path / 'hitl.db'}")
    yield st
    st.close()


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # the agent's exporter and the hitl CLI authenticate with the admin secret
    monkeypatch.setenv("PHOENIX_API_KEY", PHOENIX_ADMIN_SECRET)
    monkeypatch.delenv("PHOENIX_PROJECT_NAME", raising=False)


def traced_runs(store: ApprovalStore, url: str, project: str, n: int) -> list[str]:
    client = PhoenixClient(url)
    sampler = ReviewSampler(
        store, project=project, client=client, background=False,
        sampling=ReviewSampling(curve=constant_rate(1.0)),
    )  # fmt: skip
    handle = setup_tracing(project, url, batch=False, observers=[sampler])
    call = {"name": "transfer_funds", "args": {"amount": 6000, "to": "bob"}, "id": "c1"}
    try:
        for _ in range(n):
            app = build_bank_app(store, InMemorySaver(), AIMessage("", tool_calls=[call]), Ledger())
            app.invoke({"messages": [HumanMessage("send bob 6000")]}, thread())
    finally:
        assert handle.shutdown(10.0)  # flushes spans, then the review requests
    assert store.count_outbox(project=project) == 0
    return [s.span_id or "" for s in store.list_review_samples(project)]


def fb_cli(*argv: str) -> tuple[int, str, str]:
    from hitl_langgraph.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return review_cli.main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def login(url: str, email: str, password: str, new_password: str) -> httpx.Client:
    """Log in as a reviewer and change the initial password, as the UI asks at first."""
    http = httpx.Client(base_url=url, timeout=10)
    r = http.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 204, r.text
    r = http.post(
        "/graphql",
        json={
            "query": "mutation($i: PatchViewerInput!) { patchViewer(input: $i) { user { id } } }",
            "variables": {"i": {"newPassword": new_password, "currentPassword": password}},
        },
    )
    assert "errors" not in r.json(), r.text
    http.cookies.clear()
    r = http.post("/auth/login", json={"email": email, "password": new_password})
    assert r.status_code == 204, r.text
    return http


def ui_annotate(
    http: httpx.Client, span_gid: str, label: str, guidance: str
) -> list[dict[str, Any]]:
    r = http.post(
        "/graphql",
        json={
            "query": UI_MUTATION,
            "variables": {
                "input": [
                    {"spanId": span_gid, "name": VERDICT_NAME, "label": label, "score": 0,
                     "annotatorKind": "HUMAN", "source": "APP", "metadata": {}},
                    {"spanId": span_gid, "name": GUIDANCE_NAME, "explanation": guidance,
                     "annotatorKind": "HUMAN", "source": "APP", "metadata": {}},
                ]
            },
        },
    )  # fmt: skip
    body = r.json()
    assert "errors" not in body, body
    return list(body["data"]["createSpanAnnotations"]["spanAnnotations"])


def test_ui_verdicts_are_attributed_and_two_reviewers_activate_guidance(
    phoenix_auth_server: PhoenixServer,
    store: ApprovalStore,
    phoenix_project: str,
    admin_env: None,
) -> None:
    url = phoenix_auth_server.url
    spans = traced_runs(store, url, phoenix_project, 3)
    base = ("--store", store.url, "--phoenix", url, "--project", phoenix_project)
    users = {}
    for name, role in (("alice", "finance"), ("bob", "finance"), ("carol", "intern")):
        code, out, err = cli(*base, "--json", "review", "users", "add", name, "--role", role,
                             "--password", f"{name}-initial-Pass-1")  # fmt: skip
        assert code == 0, err
        users[name] = json.loads(out)
    assert users["alice"]["roles"] == ["finance"] and users["alice"]["phoenix_user_id"]
    code, out, _ = cli(*base, "review", "users", "list")
    assert code == 0 and "alice" in out and "finance" in out and "carol" in out
    # adding again adopts the existing Phoenix user (no duplicate, no error)
    assert cli(*base, "review", "users", "add", "alice", "--role", "finance")[0] == 0
    assert len(ReviewerDirectory(store).all()) == 3

    client = PhoenixClient(url)
    gids = {
        sp["context"]["span_id"]: sp["id"] for sp in client.spans(phoenix_project, span_ids=spans)
    }
    # the agent's prompt, in Phoenix, with an empty guidance slot in production
    prompt = f"bank-{phoenix_project[-8:]}"
    base = PromptRegistry(prompt, phoenix=client, base=BASE, node="agent", store=store)
    base.promote(base.push_candidate(GuidanceSet()).version.id)
    fb = ("--store", store.url, "--phoenix", url, "--project", phoenix_project)  # after ACTION

    made = {}
    for name, span in (("alice", spans[0]), ("bob", spans[1]), ("carol", spans[2])):
        u = users[name]
        http = login(url, u["email"], f"{name}-initial-Pass-1", f"{name}-Changed-Pass-2")
        made[name] = ui_annotate(http, gids[span], "incorrect", RULE)
        http.close()
        if name == "alice":  # one reviewer so far: the status says why it is not active
            ReviewQueue(client, project=phoenix_project, store=store).collect()
            code, out, err = fb_cli("feedback", "status", *fb)
            assert code == 0, err
            assert "pending" in out and "1 of 2 reviewers" in out and "alice" in out
            code, out, _ = fb_cli("feedback", "status", "--json", *fb)
            (pending,) = json.loads(out)["items"]
            assert pending["why"] == "1 of 2 reviewers" and pending["status"] == "pending"
    # Phoenix stamped each UI annotation with its user
    assert {a["identifier"].split(":")[0] for rows in made.values() for a in rows} == {"px-app"}

    queue = ReviewQueue(client, project=phoenix_project, store=store, required_roles={"finance"})
    rep = queue.collect()
    assert (rep.closed, rep.unauthorized) == (1, 1)  # bob's (alice's was collected above)
    verdicts = {v.span_id: v for v in store.list_reviews(phoenix_project, name=VERDICT_NAME)}
    assert verdicts[spans[0]].reviewer == "alice" and verdicts[spans[1]].reviewer == "bob"
    assert verdicts[spans[2]].reviewer == "carol"
    assert "finance" in verdicts[spans[2]].metadata["hitl_unauthorized"]
    assert queue.sla().pending == 1  # carol's verdict closes nothing

    reviews = store.list_reviews(phoenix_project)
    (item,) = derive_guidance(
        reviews, {}, GuidanceConfig(min_reviews=2), now=datetime.now(timezone.utc)
    ).active
    assert item.reviewers == ("alice", "bob")  # carol is stored but never counted
    assert "confirm the recipient" in item.instruction.lower()

    # the feedback loop from the command line: a new prompt version carries the guidance
    code, out, err = fb_cli(
        "feedback", "run", "--json", *fb, "--prompt", f"{prompt}:agent", "--promote", "--no-collect"
    )
    assert code == 0, (out, err)
    ran = json.loads(out)
    (active_id,) = ran["activated"]  # scoped to node/tool from the trace this time
    assert ran["prompts"][0]["promoted"]
    registry = PromptRegistry(prompt, phoenix=client, node="agent", ttl=0)
    prod = registry.production()
    assert prod is not None and [i.id for i in prod.guidance.active] == [active_id]
    assert prod.guidance.active[0].reviewers == ("alice", "bob")
    block = render_guidance(prod.guidance, node="agent").text
    text = json.dumps(prod.format({"question": "send bob 6000", "reviewer_guidance": block}))
    assert "Confirm the recipient" in text
    code, out, _ = fb_cli("feedback", "status", *fb, "--prompt", f"{prompt}:agent")
    assert code == 0 and "active" in out and f"production {prod.id}" in out
    code, out, _ = fb_cli("feedback", "rollback", *fb, prompt, "--as", "olga")
    assert code == 0 and "production is now" in out
    back = registry.production()
    assert back is not None and back.guidance.active == ()
    code, out, _ = fb_cli("feedback", "promote", *fb, prompt)  # the candidate again
    assert code == 0 and prod.id in out
