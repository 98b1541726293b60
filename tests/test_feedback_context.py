"""Resolving what a review is about: store, sample, mapping, and the trace in Phoenix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fake_phoenix import FakePhoenix
from feedback_support import RULE, T0, review

from hitl_langgraph import MemoryStore
from hitl_langgraph.feedback import (
    FeedbackLoop,
    PhoenixContextResolver,
    ReviewContext,
    StoreContextResolver,
)
from hitl_langgraph.store.records import ApprovalRecord
from hitl_langgraph.store.review_records import ReviewSample
from hitl_langgraph.testing import FrozenClock

TRACE = "a" * 32
LLM, TOOL, GATE, OTHER = "1" * 16, "2" * 16, "3" * 16, "4" * 16


def store_with_request(**meta: Any) -> MemoryStore:
    store = MemoryStore()
    store.put_request(
        ApprovalRecord(
            request_id="req_1",
            thread_id="t1",
            node="tools",
            tool="refund",
            args={"order": "A1", "amount": 900},
            digest="d",
            score=0.6,
            route="review",
            reasons=[],
            status="review",
            created_at=T0,
            updated_at=T0,
            tool_call_id="call_1",
            metadata=meta,
        )
    )
    return store


def test_store_resolver_uses_the_request_the_sample_and_the_mapping() -> None:
    store = store_with_request(tenant="acme")
    store.put_review_sample(
        ReviewSample(
            request_id="req_1",
            project="proj",
            sampled=True,
            probability=1.0,
            draw=0.1,
            score=0.6,
            reason="r",
            decided_at=T0,
            due_at=T0,
            tool="refund",
            span_id=TOOL,
        )
    )
    plain = StoreContextResolver(store).resolve(review(TOOL, request_id=None))
    assert (plain.request_id, plain.tool, plain.node, plain.tenant) == (
        "req_1",
        "refund",
        None,
        "acme",
    )
    assert plain.executed is True and plain.sources == ("sample", "store")
    mapped = StoreContextResolver(store, node_of={"refund": "payments"}).resolve(review(TOOL))
    assert mapped.node == "payments" and "mapping" in mapped.sources
    by_fn = StoreContextResolver(store, node_of=lambda rec: f"{rec.tool}-node")
    assert by_fn.resolve(review(TOOL)).node == "refund-node"
    explicit = StoreContextResolver(
        store_with_request(proposed_by="agent"), node_of={"refund": "x"}
    )
    assert explicit.resolve(review(TOOL, request_id="req_1")).node == "agent"
    assert StoreContextResolver(store).resolve(review(OTHER)) == ReviewContext()


def phoenix_trace(fake: FakePhoenix) -> None:
    fake.add_span(
        "proj",
        LLM,
        TRACE,
        name="ScriptedChatModel",
        span_kind="LLM",
        attributes={
            "metadata.langgraph_node": "payments",
            "session.id": "t1",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "You are the payments agent.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "Please refund order A1, 900",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        },
    )
    fake.add_span(
        "proj",
        TOOL,
        TRACE,
        name="refund",
        span_kind="TOOL",
        attributes={"metadata.langgraph_node": "tools"},
    )
    fake.add_span(
        "proj",
        GATE,
        TRACE,
        name="hitl.gate refund executed",
        span_kind="GUARDRAIL",
        parent_id=TOOL,
        attributes={"hitl.request.id": "req_1"},
    )


def test_phoenix_resolver_finds_the_proposing_node_and_input_from_the_trace() -> None:
    fake = FakePhoenix()
    phoenix_trace(fake)
    resolver = PhoenixContextResolver(store_with_request(), fake.client(), "proj")
    for span in (TOOL, GATE, LLM):  # a review on the tool, the gate or the model span
        ctx = resolver.resolve(review(span))
        assert (ctx.request_id, ctx.node, ctx.tool) == ("req_1", "payments", "refund"), span
        assert ctx.input == "Please refund order A1, 900" and ctx.trace_id == TRACE
        assert ctx.complete and "phoenix" in ctx.sources


def test_a_span_not_in_phoenix_yet_is_incomplete_and_resolved_again_later() -> None:
    fake = FakePhoenix()
    fake.add_project("proj")
    resolver = PhoenixContextResolver(store_with_request(), fake.client(project_wait=0), "proj")
    r = review(TOOL, request_id="req_1")
    early = resolver.resolve(r)
    assert not early.complete and early.node is None and early.tool == "refund"
    phoenix_trace(fake)
    late = resolver.resolve(r)
    assert late.complete and late.node == "payments"
    fake.down = True
    assert resolver.resolve(r) == late  # complete contexts are cached


class Incomplete:
    def resolve(self, review: Any) -> ReviewContext:
        return ReviewContext(request_id="req_1", tool="refund", complete=False)


def test_the_loop_keeps_incomplete_reviews_out_of_guidance_for_a_grace_period() -> None:
    store = store_with_request()
    clock = FrozenClock(T0)
    for who in ("alice", "bob"):
        store.put_review(
            review(f"{who:0>16}"[:16], explanation=RULE, reviewer=who, request_id="req_1")
        )
    done: list[Any] = []
    loop = FeedbackLoop(
        store,
        resolver=Incomplete(),
        clock=clock,
        compensations={"refund": done.append},
        resolve_grace=timedelta(minutes=10),
    )
    first = loop.run_once()
    assert first.deferred == 2 and first.guidance.active == ()
    assert len(done) == 1  # remediation does not wait for the trace
    clock.advance(minutes=11)
    later = loop.run_once()
    assert later.deferred == 0 and later.guidance.active[0].scope.node is None
