"""Adaptive risk: RiskPolicy adjusters, the bounded review delta, published priors."""

from __future__ import annotations

import pytest
from feedback_support import T0, review, span_id

from hitl_langgraph import Action, MemoryStore, RiskPolicy, Rule
from hitl_langgraph.feedback import (
    AdaptiveConfig,
    AdaptiveRisk,
    amount_bands,
    review_delta,
)
from hitl_langgraph.store.records import ApprovalRecord

REFUND = Action("refund", {"order": "A1", "amount": 900})


# -- the delta ---------------------------------------------------------------------------------
def test_review_delta_matches_the_documented_numbers() -> None:
    assert review_delta(20, 7) == pytest.approx(0.2083, abs=1e-4)
    assert review_delta(20, 0) == pytest.approx(-0.0833, abs=1e-4)
    assert review_delta(2, 2) == 0.0  # below min_reviews
    assert review_delta(50, 50) == 0.4  # capped
    assert review_delta(1000, 0) == pytest.approx(-0.0996, abs=1e-3)
    assert review_delta(1000, 0, AdaptiveConfig(max_decrease=0.05)) == -0.05


def test_amount_bands() -> None:
    b = amount_bands("amount", [100, 1000])
    assert [b({"amount": x}) for x in (5, 100, 999.5, 1000, 10**6)] == [
        "amount<100",
        "amount[100,1000)",
        "amount[100,1000)",
        "amount>=1000",
        "amount>=1000",
    ]
    assert b({}) == b({"amount": "x"}) == "amount=?"


# -- published priors -------------------------------------------------------------------------
def _request(store: MemoryStore, rid: str, amount: int) -> None:
    store.put_request(
        ApprovalRecord(
            request_id=rid,
            thread_id="t",
            node="tools",
            tool="refund",
            args={"order": rid, "amount": amount},
            digest="d",
            score=0.6,
            route="review",
            reasons=[],
            status="review",
            created_at=T0,
            updated_at=T0,
        )
    )


def _verdicts(store: MemoryStore, amount: int, wrong: int, right: int) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(wrong + right):
        rid = f"req_{amount}_{i}"
        _request(store, rid, amount)
        out.append(
            review(
                span_id(),
                label="incorrect" if i < wrong else "correct",
                reviewer=f"r{i}",
                request_id=rid,
            )
        )
    return out


def test_wrong_reviews_raise_a_class_into_approval_and_approvals_drift_to_the_floor() -> None:
    store = MemoryStore()
    clock = [0.0]
    adaptive = AdaptiveRisk(
        store,
        buckets={"refund": amount_bands("amount", [1000])},
        ttl=5.0,
        monotonic=lambda: clock[0],
    )
    policy = RiskPolicy([Rule(tool="refund", score=0.6, floor=0.55)], adjusters=[adaptive])
    small, big = Action("refund", {"amount": 50}), Action("refund", {"amount": 5000})
    assert policy.assess(big).route == "review"
    reviews = _verdicts(store, 5000, wrong=12, right=8) + _verdicts(store, 50, wrong=0, right=30)
    snap, changes = adaptive.refresh(reviews)
    assert {c["class"] for c in changes} == {"refund|amount<1000", "refund|amount>=1000"}
    raised = policy.assess(big)
    assert raised.score == pytest.approx(0.6 + review_delta(20, 12)) and raised.route == "approve"
    assert f"from 12 of 20 wrong (refund|amount>=1000, priors {snap.version})" in raised.reasons[1]
    lowered = policy.assess(small)
    assert lowered.score == 0.55 and lowered.route == "review"  # never below the floor
    # published once: a second refresh with the same reviews changes nothing
    assert adaptive.refresh(reviews)[1] == []
    events = [e for e in store.list_audit() if e.event == "risk_priors_version"]
    assert len(events) == 1 and events[0].data["snapshot"]["version"] == snap.version
    # an agent-side instance reads the published priors from the store
    agent_side = AdaptiveRisk(store, buckets={"refund": amount_bands("amount", [1000])})
    assert agent_side.current().version == snap.version


def test_agents_pick_up_new_priors_after_the_ttl() -> None:
    store = MemoryStore()
    clock = [0.0]
    agent = AdaptiveRisk(store, ttl=5.0, monotonic=lambda: clock[0])
    loop = AdaptiveRisk(store)
    assert agent.current().priors == {}
    loop.refresh(_verdicts(store, 900, wrong=5, right=0))
    assert agent.current().priors == {}  # cached
    clock[0] += 5.0
    assert agent.current().priors["refund|*"].wrong == 5


def test_only_human_verdicts_with_a_request_count_and_any_wrong_marks_the_request() -> None:
    store = MemoryStore()
    _request(store, "req_x", 900)
    adaptive = AdaptiveRisk(store)
    s = span_id()
    reviews = [
        review(s, label="correct", reviewer="a", request_id="req_x"),
        review(s, label="incorrect", reviewer="b", request_id="req_x"),
        review(span_id(), label="incorrect", kind="LLM", reviewer="judge", request_id="req_x"),
        review(span_id(), label="incorrect", reviewer="c"),  # no request: unclassifiable
    ]
    assert adaptive.outcomes(reviews) == {"req_x": True}
    assert adaptive.compute({"req_x": True}).priors["refund|*"].reviewed == 1
