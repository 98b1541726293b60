"""Asynchronous oversight on with one call, against a real ``phoenix serve``:

* a short script (a subprocess) that only calls ``setup_tracing(..., observers=[sampler])``
  and runs a plain ``GatedToolNode`` graph leaves GUARDRAIL spans, a labelled root span
  and its review request in Phoenix when it exits: no ``hitl sync``;
* the filtered review list URL, and ``collect`` moving the review state to reviewed;
* bad project names and span ids fail at once, with nothing stored.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from hitl_langgraph.review import REVIEW_REQUEST_NAME, PhoenixClient, ReviewQueue
from hitl_langgraph.review import cli as review_cli
from hitl_langgraph.review.queue import AWAITING_REVIEW_FILTER
from hitl_langgraph.store import ApprovalStore, open_store
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix

TESTS = Path(__file__).parent

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from fixtures_graph import Ledger, build_bank_app, thread
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from hitl_langgraph import open_store
from hitl_langgraph.review import ReviewSampler, ReviewSampling, constant_rate
from hitl_langgraph.tracing import setup_tracing

store = open_store({store!r})
sampler = ReviewSampler(store, project={project!r}, client={url!r},
                        sampling=ReviewSampling(curve=constant_rate(1.0)))
setup_tracing({project!r}, {url!r}, observers=[sampler], export_timeout=5.0)
call = {{"name": "transfer_funds", "args": {{"amount": 6000, "to": "bob"}}, "id": "c1"}}
for _ in range({runs}):
    app = build_bank_app(store, InMemorySaver(), AIMessage("", tool_calls=[call]), Ledger())
    app.invoke({{"messages": [HumanMessage("send bob 6000")]}}, thread())
print("ran")
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    st = open_store(f"sqlite:///{tmp_path / 'hitl.db'}")
    yield st
    st.close()


@pytest.fixture
def client(phoenix_server: PhoenixServer) -> Iterator[PhoenixClient]:
    c = PhoenixClient(phoenix_server.url, timeout=5.0)
    yield c
    c.close()


def run_script(store: ApprovalStore, project: str, url: str, runs: int = 2) -> None:
    code = textwrap.dedent(
        SCRIPT.format(tests=str(TESTS), store=store.url, project=project, url=url, runs=runs)
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ran" in done.stdout, done.stderr[-3000:]


def cli(*argv: str, env_project: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = review_cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_short_script_with_one_call_delivers_spans_and_review_requests(
    store: ApprovalStore,
    client: PhoenixClient,
    phoenix_server: PhoenixServer,
    phoenix_project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PHOENIX_PROJECT_NAME", raising=False)
    run_script(store, phoenix_project, phoenix_server.url)
    # nothing left in the outbox: the handle's shutdown at exit flushed the spans, then
    # the sampler's review requests
    assert store.count_outbox(project=phoenix_project) == 0, store.list_outbox()
    samples = store.list_review_samples(phoenix_project)
    assert len(samples) == 2 and all(s.sampled and s.span_id for s in samples)
    spans = phoenix_server.wait_for_spans(phoenix_project, 2)
    gates = [s for s in spans if s["span_kind"] == "GUARDRAIL"]
    assert (
        sorted(s["name"] for s in gates)
        == ["gate transfer_funds → review (assessed)"] * 2
        + ["gate transfer_funds → review (executed)"] * 2
    )
    roots = [s for s in spans if s["parent_id"] is None]
    assert [r["name"] for r in roots] == ["LangGraph · gate transfer_funds → review"] * 2
    assert all(r["attributes"]["hitl.route"] == "review" for r in roots)
    for s in samples:
        (req,) = client.span_annotations(phoenix_project, [s.span_id or ""])
        assert req["name"] == REVIEW_REQUEST_NAME and req["result"]["label"] == "pending"

    # the filtered list: Phoenix's own filter finds exactly the spans awaiting review
    queue = ReviewQueue(client, project=phoenix_project, store=store)
    items = queue.pending()
    assert items.url is not None
    q = parse_qs(urlparse(items.url).query)
    assert q["spanFilterCondition"] == [AWAITING_REVIEW_FILTER]
    assert _dsl_span_ids(phoenix_server, phoenix_project, AWAITING_REVIEW_FILTER) == {
        s.span_id for s in samples
    }
    code, out, _ = cli(
        "--store", store.url, "--phoenix", client.base_url, "--project", phoenix_project,
        "review", "pending",
    )  # fmt: skip
    assert code == 0 and f"review them in Phoenix: {items.url}" in out

    # a UI-style verdict, collected: the review state moves to reviewed with no sync
    first = samples[0]
    client.annotate_spans(
        [{"span_id": first.span_id, "name": "hitl_verdict", "annotator_kind": "HUMAN",
          "identifier": "", "result": {"label": "correct", "score": 1.0}}]
    )  # fmt: skip
    assert queue.collect().closed == 1
    labels = {
        a["result"]["label"]
        for a in client.span_annotations(phoenix_project, [first.span_id or ""])
        if a["name"] == REVIEW_REQUEST_NAME
    }
    assert labels == {"reviewed"}
    assert _dsl_span_ids(phoenix_server, phoenix_project, AWAITING_REVIEW_FILTER) == {
        samples[1].span_id
    }


def _dsl_span_ids(server: PhoenixServer, project: str, condition: str) -> set[str]:
    """Span ids the Phoenix UI's own query (GraphQL ``spans(filterCondition:)``) lists."""
    import httpx

    pid = PhoenixClient(server.url).get_project(project)["id"]  # type: ignore[index]
    query = """query($id: ID!, $c: String) { node(id: $id) { ... on Project {
      spans(first: 100, filterCondition: $c) {
        edges { node { context { spanId } } } } } } }"""
    r = httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": {"id": pid, "c": condition}},
        timeout=10,
    )
    r.raise_for_status()
    body = r.json()
    assert "errors" not in body, body
    return {e["node"]["context"]["spanId"] for e in body["data"]["node"]["spans"]["edges"]}


def test_bad_names_and_ids_fail_at_once(
    store: ApprovalStore,
    client: PhoenixClient,
    phoenix_server: PhoenixServer,
    phoenix_project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PHOENIX_PROJECT_NAME", raising=False)
    base = ("--store", store.url, "--phoenix", client.base_url)
    run_script(store, phoenix_project, phoenix_server.url, runs=1)

    # no --project: a usage error that lists the projects Phoenix has
    code, _, err = cli(*base, "review", "pending")
    assert code == 2 and "--project" in err and phoenix_project in err
    # a typo: refused, listing the real ones; setup does not create it without --create
    typo = phoenix_project + "-typo"
    code, _, err = cli(*base, "--project", typo, "review", "pending")
    assert code == 2 and f"no project {typo!r}" in err and phoenix_project in err
    code, _, err = cli(*base, "--project", typo, "review", "setup")
    assert code == 2 and client.get_project(typo) is None
    code, out, _ = cli(*base, "--project", typo, "review", "setup", "--create")
    assert code == 0 and client.get_project(typo) is not None

    # an unknown span id: exit non-zero, nothing stored, nothing spooled
    before = store.count_outbox(status=None, project=phoenix_project)
    code, _, err = cli(
        *base, "--project", phoenix_project, "review", "submit", "00f067aa0ba902b7", "correct",
        "--as", "alice",
    )  # fmt: skip
    assert code == 2 and "has no span 00f067aa0ba902b7" in err
    assert store.count_outbox(status=None, project=phoenix_project) == before
    assert store.list_reviews(phoenix_project) == []

    # an entry Phoenix refuses for good is parked with its reason and shown by `hitl sync`
    from hitl_langgraph.clock import utc_now
    from hitl_langgraph.review.spool import Spool

    (sample,) = store.list_review_samples(phoenix_project)
    bad = Spool.entry(
        project=phoenix_project, span_id=sample.span_id or "", name="hitl_verdict",
        identifier="human:x", annotator_kind="ROBOT", result={"label": "correct"},
        metadata={}, now=utc_now(),
    )  # fmt: skip
    store.put_outbox(bad)
    code, out, _ = cli(*base, "--project", phoenix_project, "sync", "--force")
    assert code == 1 and "1 parked" in out and sample.span_id in out
    code, out, _ = cli(*base, "--project", phoenix_project, "sync")
    assert code == 1 and "1 parked" in out  # still shown, never retried
