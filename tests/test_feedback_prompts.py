"""PromptRegistry against an in-process Phoenix prompts API: candidate, promote, rollback,
the placeholder guard and the production cache (the real server: test_feedback_phoenix)."""

from __future__ import annotations

import pytest
from feedback_support import RULE, FakePrompts, review, span_id

from hitl_langgraph import ConfigurationError
from hitl_langgraph.feedback import (
    GuidanceConfig,
    GuidanceSet,
    PhoenixGuidance,
    PromptNotFound,
    PromptRegistry,
    PromptTemplate,
    ReviewContext,
    ReviewerFeedback,
    TemplateVariableError,
    derive_guidance,
)
from hitl_langgraph.review import PhoenixError

BASE = PromptTemplate.chat("You are the payments agent.\n{{reviewer_guidance}}", "{{question}}")


def guidance(*texts: str, node: str = "payments") -> GuidanceSet:
    reviews = [review(span_id(), explanation=t, reviewer="alice") for t in texts]
    ctx = {r.review_id: ReviewContext(node=node, tool="refund") for r in reviews}
    return derive_guidance(reviews, ctx, GuidanceConfig(min_reviews=1), now=reviews[0].created_at)


def registry(fake: FakePrompts, **kw: object) -> PromptRegistry:
    return PromptRegistry("payments-agent", phoenix=fake.client(), base=BASE, node="payments", **kw)  # type: ignore[arg-type]


def test_push_candidate_pins_the_node_guidance_with_provenance() -> None:
    fake = FakePrompts()
    reg = registry(fake)
    g = guidance(RULE)
    other = guidance("Route refunds to payments.", node="triage")
    both = GuidanceSet(active=g.active + other.active)
    pushed = reg.push_candidate(both)
    assert pushed.created
    v = reg.get(pushed.version.id)
    assert v.template == BASE and v.guidance.version == g.version  # only this node's items
    assert v.metadata["provenance"]["span_ids"] == list(g.active[0].span_ids)
    assert v.metadata["provenance"]["reviewers"] == ["alice"] and v.parent is None
    assert RULE in v.description and g.version in v.description
    assert reg.tags(v.id) == ["candidate"] and reg.production() is None
    again = reg.push_candidate(both)
    assert not again.created and again.version.id == v.id  # nothing changed: no new version


def test_promote_and_rollback_are_tag_moves() -> None:
    fake = FakePrompts()
    reg = registry(fake)
    v1 = reg.push_candidate(GuidanceSet()).version
    reg.promote()
    assert reg.by_tag("production").id == v1.id  # type: ignore[union-attr]
    v2 = reg.push_candidate(guidance(RULE)).version
    assert v2.parent == v1.id and reg.by_tag("candidate").id == v2.id  # type: ignore[union-attr]
    reg.promote(v2.id, actor="olga")
    assert reg.by_tag("production").id == v2.id  # type: ignore[union-attr]
    back = reg.rollback()
    assert back.id == v1.id and reg.by_tag("production").id == v1.id  # type: ignore[union-attr]
    assert reg.tags(v2.id) == ["candidate"]
    with pytest.raises(PromptNotFound):
        reg.rollback()  # v1 has no parent


def test_a_template_that_loses_a_variable_is_refused() -> None:
    fake = FakePrompts()
    reg = registry(fake)
    reg.push_candidate(GuidanceSet())
    lossy = PromptTemplate.chat("You are the payments agent.\n{{reviewer_guidance}}", "Help!")
    with pytest.raises(TemplateVariableError) as err:
        reg.push_candidate(guidance(RULE), template=lossy)
    assert err.value.missing == ("question",)
    no_slot = PromptTemplate.chat("You are the payments agent.", "{{question}}")
    with pytest.raises(TemplateVariableError, match="reviewer_guidance"):
        reg.push_candidate(guidance(RULE), template=no_slot)
    with pytest.raises(TemplateVariableError):
        PromptRegistry("x", phoenix=fake.client(), base=no_slot)
    assert len(fake.prompts["payments-agent"]) == 1  # nothing was written


def test_names_are_checked_and_a_first_push_needs_a_base() -> None:
    fake = FakePrompts()
    with pytest.raises(ConfigurationError, match="lower case"):
        PromptRegistry("Payments", phoenix=fake.client())
    with pytest.raises(ConfigurationError, match="lower case"):
        PromptRegistry("p", phoenix=fake.client(), production_tag="Production")
    with pytest.raises(ConfigurationError, match="base="):
        PromptRegistry("p", phoenix=fake.client()).push_candidate(GuidanceSet())


def test_production_is_cached_for_the_ttl_and_survives_an_outage() -> None:
    fake = FakePrompts()
    clock = [0.0]
    writer = registry(fake)
    reader = registry(fake, ttl=2.0, monotonic=lambda: clock[0])
    source = PhoenixGuidance(reader)
    assert source.current() == GuidanceSet() and source.prompt_version is None
    v = writer.push_candidate(guidance(RULE)).version
    writer.promote()
    assert source.current() == GuidanceSet()  # still cached
    clock[0] += 2.0
    assert source.current().version == v.guidance.version and source.prompt_version == v.id
    gets = sum(1 for m, p in fake.requests if p.endswith("/tags/production"))
    for _ in range(50):
        source.current()
    assert sum(1 for m, p in fake.requests if p.endswith("/tags/production")) == gets
    fake.down = True
    clock[0] += 10.0
    assert source.current().version == v.guidance.version  # last good version kept
    fresh = PhoenixGuidance(registry(fake))
    assert fresh.current() == GuidanceSet()  # never answered: the base prompt alone
    with pytest.raises(PhoenixError):
        writer.push_candidate(GuidanceSet())


def test_agents_format_the_production_version_with_reviewer_feedback() -> None:
    fake = FakePrompts()
    reg = registry(fake)
    reg.push_candidate(guidance(RULE))
    reg.promote()
    fb = ReviewerFeedback(PhoenixGuidance(reg), record_spans=False)
    version = reg.production()
    assert version is not None
    messages = version.format({"question": "refund 900?", **fb.variables(node="payments")})
    assert messages[0]["content"].startswith("You are the payments agent.\nReviewer guidance")
    assert RULE in messages[0]["content"] and messages[1] == {
        "role": "user",
        "content": "refund 900?",
    }
    assert fb.attributes(fb.render(node="payments"))["llm.prompt_template.version"] == version.id
    with pytest.raises(TemplateVariableError):
        version.format({"question": "x"})
