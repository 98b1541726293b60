"""The feedback loop against a real ``phoenix serve``: "incorrect" verdicts with guidance,
written as the Phoenix UI writes them (GraphQL, source APP) and through the REST API
(identifier "", HUMAN), on spans of traced gated runs, are collected; they reach the
next run's prompt for the right node and not another; the guided prompt is a Phoenix
prompt version that can be rolled back; the action class's risk rises into synchronous
approval; and the compensator runs exactly once per wrong action."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from feedback_support import RULE, Ledger, build_refund_app, refund_policy, run

from hitl_langgraph import Action
from hitl_langgraph.feedback import (
    AdaptiveConfig,
    AdaptiveRisk,
    CompensationRequest,
    FeedbackLoop,
    PhoenixContextResolver,
    PhoenixGuidance,
    PromptRegistry,
    PromptTemplate,
    ReviewerFeedback,
    normalize_instruction,
)
from hitl_langgraph.review import (
    GUIDANCE_NAME,
    VERDICT_NAME,
    PhoenixClient,
    ReviewQueue,
    ReviewSampler,
    ReviewSampling,
    constant_rate,
)
from hitl_langgraph.store import ApprovalStore, open_store
from hitl_langgraph.tracing import GateSpanRecorder, TracingHandle
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix

UI_MUTATION = """mutation($input: [CreateSpanAnnotationInput!]!) {
  createSpanAnnotations(input: $input) { spanAnnotations { id identifier source } }
}"""
BASE = PromptTemplate.chat(
    "You are the payments agent. Refund orders when customers ask.\n\n{{reviewer_guidance}}",
    "{{question}}",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApprovalStore]:
    st = open_store(f"sqlite:///{tmp_path / 'hitl.db'}")
    yield st
    st.close()


def ui_verdict(phoenix: PhoenixServer, client: PhoenixClient, project: str, span: str) -> None:
    """What the Phoenix UI sends (GraphQL, source APP; auth off: identifier "")."""
    (node,) = client.spans(project, span_ids=[span])
    inputs = [
        {
            "spanId": node["id"],
            "name": VERDICT_NAME,
            "label": "incorrect",
            "score": 0,
            "annotatorKind": "HUMAN",
            "explanation": "refunded without approval",
            "source": "APP",
            "metadata": {},
        },
        {
            "spanId": node["id"],
            "name": GUIDANCE_NAME,
            "annotatorKind": "HUMAN",
            "explanation": RULE,
            "source": "APP",
            "metadata": {},
        },
    ]
    resp = httpx.post(
        f"{phoenix.url}/graphql", json={"query": UI_MUTATION, "variables": {"input": inputs}}
    )
    rows = resp.json()["data"]["createSpanAnnotations"]["spanAnnotations"]
    assert [(r["identifier"], r["source"]) for r in rows] == [("", "APP"), ("", "APP")]


def rest_verdict(client: PhoenixClient, span: str) -> None:
    """A second reviewer through the REST API (identifier ``human:bob``): anonymous UI
    verdicts (auth off) count as one reviewer together, so the second must be named."""
    client.annotate_spans(
        [
            {
                "span_id": span,
                "name": VERDICT_NAME,
                "annotator_kind": "HUMAN",
                "identifier": "human:bob",
                "result": {"label": "incorrect", "score": 0.0},
            },
            {
                "span_id": span,
                "name": GUIDANCE_NAME,
                "annotator_kind": "HUMAN",
                "identifier": "human:bob",
                "result": {
                    "explanation": "ask for a manager's approval before any refund over 500 dollars"
                },
            },
        ]
    )


def wait_for_span(client: PhoenixClient, project: str, span: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not client.spans(project, span_ids=[span]):
        assert time.monotonic() < deadline, f"span {span} never reached Phoenix"
        time.sleep(0.1)


def test_ui_verdicts_become_a_versioned_prompt_risk_and_one_compensation(
    tracing: TracingHandle,
    store: ApprovalStore,
    phoenix_server: PhoenixServer,
    phoenix_project: str,
) -> None:
    client = PhoenixClient(phoenix_server.url, timeout=5.0)
    queue = ReviewQueue(client, project=phoenix_project, store=store)
    queue.setup()
    sampler = ReviewSampler(
        store,
        project=phoenix_project,
        client=client,
        sampling=ReviewSampling(curve=constant_rate(1.0)),
        sync_interval=0.3,
        first_attempt_delay=0.2,
    )
    adaptive = AdaptiveRisk(store, config=AdaptiveConfig(min_reviews=1), ttl=0)
    policy = refund_policy(adjusters=[adaptive])
    registry = PromptRegistry(
        f"payments-{uuid.uuid4().hex[:8]}",
        phoenix=client,
        base=BASE,
        node="payments",
        tools=["refund"],
        store=store,
        ttl=0.5,
    )
    feedback = ReviewerFeedback(PhoenixGuidance(registry))
    undone: list[CompensationRequest] = []
    loop = FeedbackLoop(
        store,
        project=phoenix_project,
        collect=queue.collect,
        resolver=PhoenixContextResolver(store, client, phoenix_project),
        prompts=[registry],
        auto_promote=True,
        adaptive=adaptive,
        compensations={"refund": lambda req: undone.append(req) or f"reversed {req.args['order']}"},
        mirror=lambda: queue.sync(force=True),
    )
    ledger, seen, triage = Ledger(), [], []
    app = build_refund_app(
        store,
        feedback,
        ledger,
        seen,
        policy=policy,
        other_seen=triage,
        observers=[GateSpanRecorder(tracing), sampler],
    )
    try:
        first = loop.run_once()  # nothing reviewed yet: v1 is the base prompt, in production
        (v1,) = first.prompts
        assert v1.created and v1.promoted and registry.production().guidance.active == ()  # type: ignore[union-attr]
        assert policy.assess(Action("refund", {"order": "A1", "amount": 900})).route == "review"

        # two runs make the mistake; each is sampled and reviewed "incorrect" in Phoenix
        run(app, "Please refund order A1, 900")
        run(app, "Please refund order A2, 800")
        assert ledger.count("refund") == 2
        assert tracing.force_flush(5.0)
        spans = [s.span_id or "" for s in store.list_review_samples(phoenix_project)]
        assert len(spans) == 2
        for s in spans:
            wait_for_span(client, phoenix_project, s)
        ui_verdict(phoenix_server, client, phoenix_project, spans[0])
        report1 = loop.run_once()
        assert report1.guidance.active == () and len(report1.guidance.pending) == 1  # 1 of 2
        (pending,) = report1.guidance.pending
        assert (pending.scope.node, pending.scope.tool) == ("payments", "refund")  # from the trace
        assert pending.example and pending.example.input == "Please refund order A1, 900"

        rest_verdict(client, spans[1])
        verdict_at = time.monotonic()
        report2 = loop.run_once()
        assert report2.ok, report2
        (item,) = report2.guidance.active
        assert set(item.span_ids) == set(spans) and item.support == 2
        assert normalize_instruction(item.instruction) == normalize_instruction(RULE)  # merged
        (v2,) = [p for p in report2.prompts if p.created]
        assert v2.promoted

        # the next run of the payments node is told; the triage node is not
        deadline = time.monotonic() + 10
        while registry.production().id != v2.version_id:  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = len(seen)
        out = run(app, "Please refund order A3, 700")
        live = time.monotonic() - verdict_at
        assert item.instruction in seen[before] and f"[{item.id}]" in seen[before]
        assert ledger.count("refund") == 2 and "manager" in out["messages"][-1].text
        assert triage and all("Reviewer guidance" not in p for p in triage)
        # one loop run plus the 0.5 s production-cache ttl ("within seconds"); 10 s leaves
        # a slow loop run on a loaded box more than 2x margin
        assert live < 10.0, f"verdict to live prompt took {live:.1f} s"

        # visible in Phoenix: the version, its provenance, and the spans that ran on it
        version = registry.get(v2.version_id)
        assert version.parent == v1.version_id and item.instruction in version.description
        assert set(version.metadata["provenance"]["span_ids"]) == set(spans)
        assert [v.id for v in registry.versions()] == [v2.version_id, v1.version_id]
        assert set(registry.tags(v2.version_id)) == {"candidate", "production"}
        assert tracing.force_flush(5.0)
        deadline = time.monotonic() + 15
        while True:
            nodes = client.spans(phoenix_project, names=["payments"])
            used = [
                n
                for n in nodes
                if n["attributes"].get("llm.prompt_template.version") == v2.version_id
            ]
            if used:
                break
            assert time.monotonic() < deadline, "no span recorded the prompt version"
            time.sleep(0.2)
        assert used[0]["attributes"]["hitl.guidance.items"] == [item.id]

        # the action class's risk rose: a refund like these now waits for a human
        raised = policy.assess(Action("refund", {"order": "A4", "amount": 900}))
        assert raised.route == "approve" and "from 2 of 2 wrong" in raised.reasons[1]

        # compensated exactly once per wrong action, also after more loop runs
        assert sorted(r.args["order"] for r in undone) == ["A1", "A2"]
        loop.run_once()
        assert len(undone) == 2
        comp = client.span_annotations(phoenix_project, [spans[0]], names=["hitl_compensation"])
        assert [(a["result"]["label"], a["annotator_kind"]) for a in comp] == [
            ("compensated", "CODE")
        ]

        # roll back: production moves to v1, running agents drop the guidance
        assert registry.rollback(actor="olga").id == v1.version_id
        # the agents see it once their production cache (ttl 0.5 s) reloads: poll, no sleep
        deadline = time.monotonic() + 10
        while registry.production().id != v1.version_id:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the agents never saw the rollback"
            time.sleep(0.05)
        before = len(seen)
        out = run(app, "Please refund order A5, 600")
        assert "Reviewer guidance" not in seen[before]
        assert "__interrupt__" in out  # the mistake is back, but now gated synchronously
        assert loop.run_once().prompts[0].created is False  # the loop does not undo it
        assert registry.production().id == v1.version_id  # type: ignore[union-attr]
        events = [e.event for e in store.list_audit()]
        assert {
            "guidance_activated",
            "guidance_version",
            "prompt_promoted",
            "prompt_rolled_back",
            "risk_priors_version",
            "compensated",
        } <= set(events)
        assert store.verify_audit().ok
    finally:
        sampler.close()
        client.close()
