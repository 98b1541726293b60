"""Risk-weighted review sampling: the curve, its statistics over many request ids, the
reproducible draw, the budget, and the observer that records it (no Phoenix needed)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _tracing_graph import make_event

from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.policy import Thresholds
from hitl_langgraph.review import (
    ReviewBudget,
    ReviewSampler,
    ReviewSampling,
    constant_rate,
    linear_curve,
    uniform_draw,
)
from hitl_langgraph.review.observer import HITL_REVIEW_PRIORITY, HITL_REVIEW_PROBABILITY
from hitl_langgraph.store import ApprovalStore, MemoryStore

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
N = 2000


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sampler(store: ApprovalStore, **kw: Any) -> ReviewSampler:
    kw.setdefault("trace_ids", lambda: None)
    return ReviewSampler(store, project="p", background=False, **kw)


def review_event(request_id: str, score: float) -> Any:
    return make_event("executed", route="review", request_id=request_id, score=score)


def test_default_curve_is_linear_between_the_thresholds_and_clipped() -> None:
    s = ReviewSampling()  # review 0.5, approve 0.85, min_rate 0.05
    assert s.probability(0.5) == 0.05 and s.probability(0.51) == 0.05
    assert s.probability(0.675) == pytest.approx(0.5)
    assert s.probability(0.85) == 1.0 and s.probability(0.99) == 1.0
    custom = ReviewSampling(thresholds=Thresholds(review=0.2, approve=0.6), min_rate=0.1)
    assert custom.probability(0.4) == pytest.approx(0.5)
    assert custom.probability(0.0) == 0.1
    assert ReviewSampling(curve=lambda s: s**2).probability(0.5) == 0.25
    assert ReviewSampling(thresholds=Thresholds(review=0.7, approve=0.7)).probability(0.8) == 1.0
    assert [ReviewSampling.priority(p) for p in (1.0, 0.67, 0.5, 0.33, 0.05)] == [1, 1, 2, 3, 3]


def test_bad_curves_and_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="low < high"):
        linear_curve(0.8, 0.5)
    with pytest.raises(ConfigurationError, match="min_rate"):
        ReviewSampling(min_rate=1.5)
    with pytest.raises(ConfigurationError, match=r"curve value for score 0\.5"):
        ReviewSampling(curve=lambda s: 2.0).probability(0.5)
    with pytest.raises(ConfigurationError, match="priorities"):
        ReviewSampling(sla={1: timedelta(hours=1)})
    with pytest.raises(ConfigurationError, match="per_day"):
        ReviewBudget(per_day=-1)


def test_draws_are_uniform_and_reproducible() -> None:
    draws = [uniform_draw(f"req_{i}") for i in range(N)]
    assert draws == [uniform_draw(f"req_{i}") for i in range(N)]
    assert all(0.0 <= d < 1.0 for d in draws)
    deciles = [0] * 10
    for d in draws:
        deciles[int(d * 10)] += 1
    chi2 = sum((c - N / 10) ** 2 / (N / 10) for c in deciles)
    assert chi2 < 27.9  # chi-square, 9 degrees of freedom, p = 0.001
    other = [uniform_draw(f"req_{i}", seed="another") for i in range(N)]
    assert sum(a < 0.5 and b < 0.5 for a, b in zip(draws, other, strict=True)) == pytest.approx(
        N / 4, abs=4 * math.sqrt(N * 0.25 * 0.75)
    )  # independent seeds give independent samples


@pytest.mark.parametrize("score", [0.5, 0.6, 0.675, 0.8, 0.9])
def test_sampling_rate_matches_the_curve_over_many_requests(score: float) -> None:
    store = MemoryStore()
    obs = sampler(store)
    p = obs.sampling.probability(score)
    for i in range(N):
        obs(review_event(f"req_{score}_{i}", score))
    k = store.count_review_samples("p")
    sigma = math.sqrt(N * p * (1 - p))
    assert abs(k - N * p) <= 4 * sigma + 1e-9, (k, N * p, sigma)  # binomial, 4 sigma
    assert store.count_review_samples("p", sampled=None) == N  # every decision recorded
    (one,) = store.list_review_samples("p", sampled=None, limit=1)
    assert one.probability == p and one.draw == uniform_draw(one.request_id)


def test_the_same_requests_get_the_same_decisions_anywhere() -> None:
    a, b = MemoryStore(), MemoryStore()
    for store in (a, b):
        obs = sampler(store)
        for i in range(300):
            obs(review_event(f"req_{i}", 0.7))
    picked_a = {s.request_id for s in a.list_review_samples("p", limit=1000)}
    picked_b = {s.request_id for s in b.list_review_samples("p", limit=1000)}
    assert picked_a == picked_b and 0 < len(picked_a) < 300
    reseeded = MemoryStore()
    obs = sampler(reseeded, sampling=ReviewSampling(seed="other"))
    for i in range(300):
        obs(review_event(f"req_{i}", 0.7))
    assert {s.request_id for s in reseeded.list_review_samples("p", limit=1000)} != picked_a


def test_budget_caps_samples_per_rolling_hour_and_day() -> None:
    store, clock = MemoryStore(), Clock()
    budget = ReviewBudget(per_hour=5, per_day=8)
    obs = sampler(
        store, sampling=ReviewSampling(curve=constant_rate(1.0), budget=budget), clock=clock
    )
    for i in range(20):
        obs(review_event(f"a{i}", 0.7))
    assert store.count_review_samples("p") == 5
    refused = store.list_review_samples("p", sampled=False, limit=100)
    assert len(refused) == 15 and {s.reason for s in refused} == {"budget per_hour (5) exhausted"}
    clock.now += timedelta(minutes=61)  # a new hour, same day
    for i in range(20):
        obs(review_event(f"b{i}", 0.7))
    assert store.count_review_samples("p") == 8  # the day's budget ends it
    clock.now += timedelta(days=1, minutes=1)
    obs(review_event("c0", 0.7))
    assert store.count_review_samples("p") == 9
    # a replayed request keeps its first decision, whatever the budget says now
    obs(review_event("a0", 0.7))
    first = store.get_review_sample("a0")
    assert first is not None and first.sampled and first.decided_at == T0


def test_sampled_request_is_spooled_for_its_span_with_priority_and_due_time() -> None:
    store, clock = MemoryStore(), Clock()
    ids = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    obs = sampler(
        store,
        sampling=ReviewSampling(curve=constant_rate(0.9)),
        trace_ids=lambda: ids,
        clock=clock,
        first_attempt_delay=1.5,
    )
    obs(review_event("req-1", 0.9))
    s = store.get_review_sample("req-1")
    assert s is not None and (s.trace_id, s.span_id) == ids and s.priority == 1
    assert s.due_at == T0 + timedelta(hours=4) and s.tool == "lookup" and s.thread_id == "thread-9"
    (entry,) = store.list_outbox()
    assert entry.next_attempt_at == T0 + timedelta(seconds=1.5) and entry.request_id == "req-1"
    body = entry.payload
    assert (body["span_id"], body["name"], body["annotator_kind"], body["identifier"]) == (
        "b7ad6b7169203331",
        "review_request",
        "CODE",
        "code:hitl",
    )
    assert body["result"]["label"] == "pending" and body["result"]["score"] == 1.0
    assert (
        body["metadata"]["priority"] == 1 and body["metadata"]["due_at"] == "2025-03-01T16:00:00Z"
    )
    assert body["metadata"]["request_id"] == "req-1" and body["metadata"]["probability"] == 0.9


def test_only_executed_review_events_count_and_failures_never_reach_the_gate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    obs = sampler(store, sampling=ReviewSampling(curve=constant_rate(1.0)))
    obs(make_event("executed", route="auto"))
    obs(make_event("assessed", route="review"))
    obs(make_event("executed", route="approve"))
    assert store.count_review_samples(None, sampled=None) == 0

    class Broken(MemoryStore):
        def put_review_sample(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("disk full")

    sampler(Broken())(review_event("x", 0.9))  # logged, not raised
    assert "review sampling failed for request x" in caplog.text


def test_decision_is_recorded_on_the_current_span() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from hitl_langgraph.tracing import current_trace_ids

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = MemoryStore()
    obs = sampler(
        store, sampling=ReviewSampling(curve=constant_rate(1.0)), trace_ids=current_trace_ids
    )
    with provider.get_tracer("t").start_as_current_span("tools"):
        obs(review_event("req-9", 0.8))
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["hitl.review.sampled"] is True and attrs[HITL_REVIEW_PROBABILITY] == 1.0
    assert attrs[HITL_REVIEW_PRIORITY] == 1 and attrs["hitl.review.reason"] == "sampled"
    s = store.get_review_sample("req-9")
    assert s is not None and s.span_id == format(span.context.span_id, "016x")
