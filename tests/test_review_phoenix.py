"""The review queue against a real ``phoenix serve`` (the session fixture): review requests
on sampled spans, annotation configs, verdicts from the API and the UI collected exactly
once, machine writes that lose no human verdict, and a Phoenix outage the agent never
notices whose spooled writes arrive after the restart."""

from __future__ import annotations

import io
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from _tracing_graph import build_bank_agent
from fixtures_require import chromium_path, require
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from hitl_langgraph.review import (
    CODE_IDENTIFIER,
    REVIEW_REQUEST_NAME,
    VERDICT_NAME,
    InvalidVerdict,
    PhoenixClient,
    ReviewQueue,
    ReviewSampler,
    ReviewSampling,
    constant_rate,
)
from hitl_langgraph.review import cli as review_cli
from hitl_langgraph.review.observer import HITL_REVIEW_PRIORITY, HITL_REVIEW_PROBABILITY
from hitl_langgraph.store import ApprovalStore, open_store
from hitl_langgraph.tracing import TracingHandle
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix

UI_MUTATION = """mutation($input: CreateSpanAnnotationInput!) {
  createSpanAnnotations(input: [$input]) { spanAnnotations { id identifier source } }
}"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    st = open_store(f"sqlite:///{tmp_path / 'hitl.db'}")
    yield st
    st.close()


@pytest.fixture
def client(phoenix_server: PhoenixServer) -> Iterator[PhoenixClient]:
    c = PhoenixClient(phoenix_server.url, timeout=2.0)
    yield c
    c.close()


class Agent:
    """The banking agent: transfer_funds(6000) scores 0.6, which the policy routes review."""

    def __init__(self, store: ApprovalStore, tracing: TracingHandle, sampler: ReviewSampler):
        self.app, self.ledger = build_bank_agent(store, tracing, sampler)

    def run(self) -> tuple[str, float]:
        config: RunnableConfig = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:10]}"}}
        start = time.perf_counter()
        out = self.app.invoke({"messages": [HumanMessage("send bob 6000")]}, config)
        return str(out["messages"][-1].content), time.perf_counter() - start


def sampler_for(
    store: ApprovalStore, project: str, client: PhoenixClient, **kw: Any
) -> ReviewSampler:
    kw.setdefault("sampling", ReviewSampling(curve=constant_rate(1.0)))
    kw.setdefault("sync_interval", 0.3)
    kw.setdefault("first_attempt_delay", 0.2)
    return ReviewSampler(store, project=project, client=client, **kw)


def mirror_all(queue: ReviewQueue, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while queue.sync(force=True).pending and time.monotonic() < deadline:
        time.sleep(0.3)
    assert queue.store.count_outbox(project=queue.project) == 0, queue.store.list_outbox()


def annotations(client: PhoenixClient, project: str, span_id: str) -> list[dict[str, Any]]:
    return client.span_annotations(project, [span_id])


def test_sampled_runs_get_review_requests_configs_and_a_working_deep_link(
    tracing: TracingHandle,
    store: ApprovalStore,
    client: PhoenixClient,
    phoenix_project: str,
    tmp_path: Path,
) -> None:
    queue = ReviewQueue(client, project=phoenix_project, store=store)
    first = queue.setup()  # before any span: the project is created for the configs
    assert set(first.created) | set(first.existing) == {"hitl_verdict", "hitl_guidance"}
    again = queue.setup()
    assert again.created == [] and set(again.existing) == {"hitl_verdict", "hitl_guidance"}
    assert again.assigned == [] and again.project_id == first.project_id
    configs = {c["name"]: c for c in client.project_annotation_configs(phoenix_project)}
    assert {v["label"]: v["score"] for v in configs["hitl_verdict"]["values"]} == {
        "correct": 1.0,
        "incorrect": 0.0,
        "unsafe": 0.0,
    }
    assert configs["hitl_guidance"]["type"] == "FREEFORM"

    sampler = sampler_for(store, phoenix_project, client)
    agent = Agent(store, tracing, sampler)
    try:
        assert [agent.run()[0] for _ in range(2)] == ["done", "done"]
        assert tracing.force_flush(5.0)
        mirror_all(queue)
    finally:
        sampler.close()
    samples = store.list_review_samples(phoenix_project)
    assert len(samples) == 2 and all(s.sampled and s.span_id and s.trace_id for s in samples)

    s = samples[0]
    (span,) = client.spans(phoenix_project, span_ids=[s.span_id or ""])
    assert span["name"] == "tools"  # the node that ran the review-routed action
    assert span["attributes"]["hitl.review.sampled"] is True
    assert span["attributes"][HITL_REVIEW_PROBABILITY] == 1.0
    assert span["attributes"][HITL_REVIEW_PRIORITY] == s.priority
    (req,) = annotations(client, phoenix_project, s.span_id or "")
    assert (req["name"], req["annotator_kind"], req["identifier"]) == (
        REVIEW_REQUEST_NAME,
        "CODE",
        CODE_IDENTIFIER,
    )
    assert req["result"]["label"] == "pending"
    assert req["metadata"]["request_id"] == s.request_id
    assert req["metadata"]["priority"] == s.priority
    assert req["metadata"]["due_at"].startswith(s.due_at.strftime("%Y-%m-%dT%H:%M:%S"))

    items = queue.pending()
    assert [i.request_id for i in items] == [x.request_id for x in samples]  # oldest due first
    item = items[0]
    assert "send bob 6000" in str(item.input) and "done" in str(item.output)
    assert [t.name for t in item.tool_calls] == ["transfer_funds"]
    assert json.loads(item.tool_calls[0].input) == {"amount": 6000, "to": "bob"}
    project_gid = client.get_project(phoenix_project)["id"]  # type: ignore[index]
    assert item.url == (  # the shape the UI builds (ids with encodeURIComponent)
        f"{client.base_url}/projects/{quote(project_gid, safe='')}/traces/{s.trace_id}"
        f"?selectedSpanNodeId={quote(span['id'], safe='')}"
    )
    # the link opens the trace with the reviewed span selected; without chromium the test
    # reports a skip here (a failure under HITL_REQUIRE=chromium) instead of passing
    chromium = chromium_path()
    if chromium is None:
        require("chromium", "no chromium on PATH for the deep-link check: apt-get install chromium")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=6000",
            "--dump-dom",
            item.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert s.trace_id in dom and s.span_id in dom and REVIEW_REQUEST_NAME in dom
    (root,) = client.spans(phoenix_project, trace_ids=[s.trace_id or ""], parent_id="null")
    assert root["context"]["span_id"] not in dom  # the reviewed span is selected, not the root


def test_api_and_ui_verdicts_are_collected_exactly_once(
    tracing: TracingHandle,
    store: ApprovalStore,
    client: PhoenixClient,
    phoenix_project: str,
    phoenix_server: PhoenixServer,
) -> None:
    queue = ReviewQueue(client, project=phoenix_project, store=store)
    queue.setup()
    sampler = sampler_for(store, phoenix_project, client)
    agent = Agent(store, tracing, sampler)
    try:
        for _ in range(3):
            agent.run()
        assert tracing.force_flush(5.0)
        mirror_all(queue)
    finally:
        sampler.close()
    a, b, c = (s.span_id or "" for s in store.list_review_samples(phoenix_project))

    with pytest.raises(InvalidVerdict, match="'banana' is not allowed"):
        queue.submit(a, "banana", reviewer="alice")  # Phoenix would have accepted it
    assert store.list_reviews(phoenix_project) == [] and store.count_outbox() == 0

    queue.submit(a, "correct", reviewer="alice", explanation="as asked", guidance="confirm first")
    # as the REST API (or the UI with auth off) writes it: identifier "", HUMAN
    client.annotate_spans(
        [
            {
                "span_id": b,
                "name": VERDICT_NAME,
                "annotator_kind": "HUMAN",
                "identifier": "",
                "result": {"label": "incorrect", "score": 0.0},
            }
        ]
    )
    # exactly what the Phoenix UI sends (GraphQL, source APP)
    (ui,) = client.spans(phoenix_project, span_ids=[c])
    resp = httpx.post(
        f"{phoenix_server.url}/graphql",
        json={
            "query": UI_MUTATION,
            "variables": {
                "input": {
                    "spanId": ui["id"],
                    "name": VERDICT_NAME,
                    "label": "unsafe",
                    "score": 0,
                    "annotatorKind": "HUMAN",
                    "explanation": "moves money",
                    "source": "APP",
                    "metadata": {},
                }
            },
        },
    )
    assert resp.json()["data"]["createSpanAnnotations"]["spanAnnotations"][0]["source"] == "APP"

    first = queue.collect()
    assert (first.changed, first.closed, first.invalid) == (2, 2, 0)
    second = queue.collect(include_reviewed=True)
    assert second.changed == 0 and second.closed == 0 and second.unchanged == second.annotations
    verdicts = store.list_reviews(phoenix_project, name=VERDICT_NAME)
    assert sorted((v.span_id, v.label, v.source) for v in verdicts) == sorted(
        [(a, "correct", "hitl"), (b, "incorrect", "API"), (c, "unsafe", "APP")]
    )
    assert [g.explanation for g in store.list_reviews(phoenix_project, name="hitl_guidance")] == [
        "confirm first"
    ]
    assert queue.pending() == [] and queue.sla().pending == 0 and queue.sla().reviewed == 3
    mirror_all(queue)  # the review requests now say "reviewed" in Phoenix
    for span_id in (a, b, c):
        rows = annotations(client, phoenix_project, span_id)
        assert {
            r["name"]: r["result"]["label"] for r in rows if r["name"] == REVIEW_REQUEST_NAME
        } == {REVIEW_REQUEST_NAME: "reviewed"}
    (alice,) = [r for r in annotations(client, phoenix_project, a) if r["name"] == VERDICT_NAME]
    assert (alice["identifier"], alice["annotator_kind"]) == ("human:alice", "HUMAN")


def test_a_machine_write_after_a_human_verdict_loses_nothing(
    tracing: TracingHandle, store: ApprovalStore, client: PhoenixClient, phoenix_project: str
) -> None:
    queue = ReviewQueue(client, project=phoenix_project, store=store)
    sampler = sampler_for(store, phoenix_project, client)
    agent = Agent(store, tracing, sampler)
    try:
        agent.run()
        agent.run()
        assert tracing.force_flush(5.0)
        mirror_all(queue)
    finally:
        sampler.close()
    mine, ui = (s.span_id or "" for s in store.list_review_samples(phoenix_project))
    queue.submit(mine, "unsafe", reviewer="alice")
    client.annotate_spans(
        [
            {
                "span_id": ui,
                "name": VERDICT_NAME,
                "annotator_kind": "HUMAN",
                "identifier": "",
                "result": {"label": "correct", "score": 1.0},
            }
        ]
    )
    assert queue.collect().changed == 1

    def judge(span_id: str, identifier: str) -> None:
        client.annotate_spans(
            [
                {
                    "span_id": span_id,
                    "name": VERDICT_NAME,
                    "annotator_kind": "LLM",
                    "identifier": identifier,
                    "result": {"label": "incorrect"},
                }
            ]
        )

    judge(mine, "llm:judge@v1")  # a well-behaved judge: its own identifier
    judge(ui, "llm:judge@v1")
    judge(ui, "")  # a careless one: replaces the UI verdict in Phoenix (same key)
    rows = {
        (r["span_id"], r["identifier"]): r["annotator_kind"]
        for r in client.span_annotations(phoenix_project, [mine, ui], names=[VERDICT_NAME])
    }
    assert rows[(mine, "human:alice")] == "HUMAN" and rows[(mine, "llm:judge@v1")] == "LLM"
    assert rows[(ui, "")] == "LLM"  # Phoenix lost the human verdict here ...
    report = queue.collect(include_reviewed=True)
    assert report.protected == 1
    kept = {
        (r.span_id, r.identifier, r.annotator_kind, r.label)
        for r in store.list_reviews(phoenix_project, name=VERDICT_NAME)
    }
    assert kept == {  # ... the store did not: every verdict, human and machine, is kept
        (mine, "human:alice", "HUMAN", "unsafe"),
        (mine, "llm:judge@v1", "LLM", "incorrect"),
        (ui, "", "HUMAN", "correct"),
        (ui, "llm:judge@v1", "LLM", "incorrect"),
        (ui, "", "LLM", "incorrect"),
    }
    assert queue.collect(include_reviewed=True).changed == 0


def test_phoenix_outage_never_reaches_the_agent_and_the_spool_catches_up(
    tracing: TracingHandle,
    store: ApprovalStore,
    client: PhoenixClient,
    phoenix_project: str,
    phoenix_server: PhoenixServer,
) -> None:
    queue = ReviewQueue(client, project=phoenix_project, store=store, mirror_on_submit=True)
    sampler = sampler_for(store, phoenix_project, client, first_attempt_delay=1.0)
    agent = Agent(store, tracing, sampler)
    results: list[str] = []
    try:
        baseline = [agent.run() for _ in range(5)]
        assert tracing.force_flush(5.0)
        # hung Phoenix (accepts connections, never answers): any call on the agent's path
        # would wait for its timeout
        phoenix_server.pause()
        try:
            hung = [agent.run() for _ in range(5)]
        finally:
            phoenix_server.resume()
        tracing.force_flush(8.0)  # spans queued while Phoenix hung get there now
        # Phoenix killed while runs go on
        killer = threading.Thread(target=phoenix_server.stop)
        killer.start()
        during = [agent.run() for _ in range(5)]
        killer.join()
        down = [agent.run() for _ in range(5)]
        results = [r for r, _ in baseline + hung + during + down]
        before_outage = store.list_review_samples(phoenix_project)[0]
        queue.submit(before_outage.span_id or "", "correct", reviewer="bob")  # stored, spooled
        assert queue.sync(force=True).unavailable
    finally:
        phoenix_server.start()
        sampler.close()
    assert results == ["done"] * 20 and agent.ledger.count("transfer_funds") == 20
    typical = statistics.median(t for _, t in baseline)
    slowest = max(t for _, t in hung + during + down)
    # A run that waited on the hung or dead Phoenix would wait at least the client's 2 s
    # timeout. 1 s over the median tells the two apart with 2x margin either way: ~10x a
    # typical run (tens of ms) for scheduling noise on a shared box, half the timeout.
    assert slowest < typical + 1.0, f"a run took {slowest:.2f}s with Phoenix down"

    # zero lost decisions: every run's sampling decision and the verdict are in the store
    samples = store.list_review_samples(phoenix_project, reviewed=None)
    assert len(samples) == 20 and all(s.sampled for s in samples)
    assert [r.reviewer for r in store.list_reviews(phoenix_project)] == ["bob"]

    # Wait (event-driven) until Phoenix holds every span the exporter saw accepted; spans
    # sent into the paused server count as failed yet may still land, so Phoenix can only
    # gain spans from here on, never lose them.
    delivered = tracing.stats().exported
    in_before = {
        sp["context"]["span_id"]
        for sp in phoenix_server.wait_for_spans(phoenix_project, delivered, timeout=60.0)
    }
    code = review_cli.main(
        [
            "--store",
            store.url,
            "--phoenix",
            client.base_url,
            "--project",
            phoenix_project,
            "sync",
            "--force",
        ],
        out=(printed := io.StringIO()),
    )
    outbox = store.list_outbox(status=None, project=phoenix_project)
    waiting = [e for e in outbox if e.status != "mirrored"]
    # Phoenix is up and no entry is old enough to be given up: exit 0, and entries whose
    # span was lost stay pending (retrying), they do not fail
    assert code == 0, printed.getvalue()
    assert f"failed 0; {len(waiting)} pending" in printed.getvalue()
    for entry in waiting:  # its span never reached Phoenix (tracing counted it lost): kept
        assert entry.status == "pending" and "404" in (entry.last_error or ""), entry
        assert entry.span_id not in in_before  # every span Phoenix had was mirrored
    in_after = {sp["context"]["span_id"] for sp in client.spans(phoenix_project)}
    mirrored = store.list_outbox(status="mirrored", project=phoenix_project)
    assert {e.span_id for e in mirrored} <= in_after
    assert before_outage.span_id in in_before  # a baseline run's span: Phoenix was up
    assert [e.span_id for e in mirrored if e.name == VERDICT_NAME] == [before_outage.span_id]
    sampled_spans = {s.span_id for s in samples}
    requested = {e.span_id for e in mirrored if e.name == REVIEW_REQUEST_NAME}
    # exactly the sampled spans Phoenix has: all it had before the sync, and none it lacks
    assert sampled_spans & in_before <= requested <= sampled_spans & in_after
    assert len(sampled_spans & in_before) >= 5  # at least the 5 baseline runs' spans
    for e in mirrored:  # exactly once: one Phoenix row per annotation key
        rows = [
            r
            for r in annotations(client, phoenix_project, e.span_id)
            if (r["name"], r["identifier"]) == (e.name, e.identifier)
        ]
        assert len(rows) == 1 and rows[0]["id"] == e.phoenix_id


def test_hitl_phoenix_runs_a_local_server_until_interrupted(tmp_path: Path) -> None:
    from hitl_langgraph.tracing._server import free_port

    port, data = free_port(), tmp_path / "project" / ".hitl" / "phoenix"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl_langgraph.review.cli", "phoenix", "--port", str(port),
         "--grpc-port", str(free_port()), "--dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once /healthz answers
        assert f"Phoenix is running at http://127.0.0.1:{port}" in line, line
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert any(data.glob("*.db"))  # the data stays in the project folder
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
