"""derive_guidance: verdicts -> merged, versioned guidance items; activation and conflicts."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from feedback_support import RULE, T0, later, review, span_id

from hitl_langgraph import ConfigurationError
from hitl_langgraph.feedback import (
    GuidanceConfig,
    GuidanceSet,
    ReviewContext,
    Scope,
    derive_guidance,
    normalize_instruction,
)

CTX = ReviewContext(request_id="req_1", node="payments", tool="refund", args={"amount": 900})


def derive(reviews, config=None, *, ctx=CTX, now=None):  # type: ignore[no-untyped-def]
    contexts = {r.review_id: ctx for r in reviews}
    return derive_guidance(reviews, contexts, config, now=now or later(5))


def test_one_review_is_pending_two_concurring_reviewers_activate() -> None:
    one = [review(span_id(), explanation=RULE, reviewer="alice")]
    g = derive(one)
    assert g.active == () and len(g.pending) == 1
    assert g.pending[0].note == "1 of 2 reviewers"
    two = one + [
        review(
            span_id(),
            explanation="  ask for a MANAGER'S approval before any refund over 500 dollars!",
            reviewer="bob",
            at=later(1),
        )
    ]
    g2 = derive(two)
    (item,) = g2.active
    assert item.instruction == RULE  # the first wording is kept
    assert item.reviewers == ("alice", "bob") and item.support == 2
    assert item.scope == Scope(node="payments", tool="refund")
    assert item.labels == ("incorrect",) and item.request_ids == ("req_1",)
    assert item.example is not None and item.example.did == "refund(amount=900)"
    assert g2.version != g.version and g2.version.startswith("gv-")


def test_derivation_is_deterministic_and_order_free() -> None:
    reviews = [review(span_id(), explanation=RULE, reviewer=f"r{i}", at=later(i)) for i in range(4)]
    reviews += [
        review(span_id(), explanation="Never refund twice.", reviewer=f"s{i}") for i in range(2)
    ]
    first = derive(reviews)
    for seed in range(5):
        shuffled = list(reviews)
        random.Random(seed).shuffle(shuffled)
        again = derive(shuffled)
        assert again == first
    assert len(first.active) == 2


def test_more_support_does_not_change_the_version_but_a_new_item_does() -> None:
    base = [review(span_id(), explanation=RULE, reviewer=r) for r in ("alice", "bob")]
    v1 = derive(base).version
    assert derive([*base, review(span_id(), explanation=RULE, reviewer="carol")]).version == v1
    other = [review(span_id(), explanation="Check the order first.", reviewer=r) for r in "xy"]
    assert derive([*base, *other]).version != v1


def test_one_review_by_an_owner_activates() -> None:
    g = derive(
        [review(span_id(), explanation=RULE, reviewer="olga")],
        GuidanceConfig(owners=frozenset({"olga"})),
    )
    (item,) = g.active
    assert item.owner_backed and item.support == 1


def test_verdict_and_guidance_note_pair_up_and_empty_verdicts_give_nothing() -> None:
    s = span_id()
    verdict = review(s, label="unsafe", explanation=None, reviewer="alice")
    note = review(s, name="hitl_guidance", explanation=RULE, reviewer="alice")
    g = derive([verdict, note], GuidanceConfig(min_reviews=1))
    (item,) = g.active
    assert item.instruction == RULE and item.labels == ("unsafe",)
    assert set(item.review_ids) == {verdict.review_id, note.review_id}
    assert item.annotation_ids == ()  # no Phoenix ids: these were never mirrored
    assert derive([verdict], GuidanceConfig(min_reviews=1)) == GuidanceSet()


def test_machine_annotations_and_other_names_are_ignored_by_default() -> None:
    llm = review(span_id(), explanation=RULE, kind="LLM", reviewer="judge")
    other = review(span_id(), name="helpfulness", explanation=RULE)
    cfg = GuidanceConfig(min_reviews=1)
    assert derive([llm, other], cfg) == GuidanceSet()
    assert len(derive([llm], GuidanceConfig(min_reviews=1, human_only=False)).active) == 1


def test_anonymous_ui_reviews_count_as_at_most_one_reviewer() -> None:
    # with Phoenix auth off a UI verdict has no user: any number of them is one reviewer
    s1, s2, s3 = span_id(), span_id(), span_id()
    anon = [review(s, explanation=RULE, reviewer=None, identifier="") for s in (s1, s2)]
    assert derive(anon).active == ()
    (item,) = derive([*anon, review(s3, explanation=RULE, reviewer="alice")]).active
    assert item.reviewers == ("alice", "anonymous")


def test_a_span_also_judged_correct_is_a_conflict_and_not_applied() -> None:
    s = span_id()
    reviews = [
        review(s, explanation=RULE, reviewer="alice"),
        review(span_id(), explanation=RULE, reviewer="bob"),
        review(s, label="correct", reviewer="carol"),
    ]
    g = derive(reviews)
    assert g.active == ()
    (item,) = g.conflicts
    assert "judged the same span correct" in item.note


def test_an_owner_judging_correct_overrules_and_an_owner_supporting_wins() -> None:
    s = span_id()
    owners = GuidanceConfig(owners=frozenset({"olga"}))
    overruled = derive(
        [
            review(s, explanation=RULE, reviewer="alice"),
            review(s, label="correct", reviewer="olga"),
        ],
        owners,
    )
    assert overruled.active == () and overruled.inactive[0].status == "overruled"
    wins = derive(
        [review(s, explanation=RULE, reviewer="olga"), review(s, label="correct", reviewer="bob")],
        owners,
    )
    assert len(wins.active) == 1


def test_contradictory_instructions_in_one_scope_are_both_flagged() -> None:
    ask = "Always ask the customer to confirm the amount"
    dont = "Never ask the customer to confirm the amount"
    reviews = [review(span_id(), explanation=t, reviewer=r) for t in (ask, dont) for r in "ab"]
    g = derive(reviews)
    assert g.active == () and len(g.conflicts) == 2
    assert all("contradicts" in i.note for i in g.conflicts)
    # the same two in different scopes do not clash
    ctxs = {}
    for r in reviews:
        node = "payments" if r.explanation == ask else "triage"
        ctxs[r.review_id] = ReviewContext(node=node, tool="refund")
    assert len(derive_guidance(reviews, ctxs, now=later(5)).active) == 2


def test_items_expire_and_explicit_expiry_wins() -> None:
    reviews = [review(span_id(), explanation=RULE, reviewer=r) for r in "ab"]
    cfg = GuidanceConfig(expire_after=timedelta(days=7))
    assert len(derive(reviews, cfg, now=T0 + timedelta(days=6)).active) == 1
    expired = derive(reviews, cfg, now=T0 + timedelta(days=8))
    assert expired.active == () and expired.inactive[0].status == "expired"
    soon = [
        review(
            span_id(), explanation=RULE, reviewer=r, metadata={"expires_at": later(30).isoformat()}
        )
        for r in "ab"
    ]
    assert derive(soon, cfg, now=later(31)).active == ()


def test_scope_comes_from_context_and_review_metadata_overrides_it() -> None:
    r1 = review(span_id(), explanation=RULE, reviewer="a")
    r2 = review(
        span_id(), explanation=RULE, reviewer="b", metadata={"node": "triage", "tenant": "acme"}
    )
    g = derive([r1, r2], GuidanceConfig(min_reviews=1))
    scopes = sorted((i.scope for i in g.active), key=lambda s: str(s.node))
    assert scopes == [Scope("payments", "refund"), Scope("triage", "refund", "acme")]
    assert len({i.id for i in g.active}) == 2  # same words, different scopes: two items


def test_snapshot_round_trip_keeps_items_and_version() -> None:
    g = derive([review(span_id(), explanation=RULE, reviewer=r) for r in "ab"])
    back = GuidanceSet.from_snapshot(g.to_snapshot())
    assert back.version == g.version and back.active == g.active


def test_normalize_and_config_validation() -> None:
    assert normalize_instruction("  Don\u2019t  refund TWICE. ") == "don't refund twice"
    with pytest.raises(ConfigurationError):
        GuidanceConfig(min_reviews=0)
