"""Rendering and injection: bounded, relevant, scoped blocks; three injection paths; spans."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from feedback_support import RULE, T0, review, span_id
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hitl_langgraph.feedback import (
    GuidanceConfig,
    GuidanceSet,
    ReviewContext,
    ReviewerFeedback,
    StaticGuidance,
    TemplateVariableError,
    check_variables,
    derive_guidance,
    render_guidance,
    render_mustache,
)
from hitl_langgraph.feedback.inject import GUIDANCE_ITEMS, GUIDANCE_SPANS, GUIDANCE_VERSION
from hitl_langgraph.testing import ScriptedChatModel
from hitl_langgraph.tracing import setup as tracing_setup
from hitl_langgraph.tracing import setup_tracing

BASE = "You are the payments agent."


def guidance(*items: tuple[str, ReviewContext, str]) -> GuidanceSet:
    """Active items from (instruction, context, input) triples."""
    reviews, contexts = [], {}
    for text, ctx, _ in items:
        r = review(span_id(), explanation=text)
        reviews.append(r)
        contexts[r.review_id] = ctx
    return derive_guidance(reviews, contexts, GuidanceConfig(min_reviews=1), now=r.created_at)


PAY = ReviewContext(node="payments", tool="refund", input="refund order A1 for 900 dollars")
ANY_NODE_LOOKUP = ReviewContext(tool="lookup_order")
TRIAGE = ReviewContext(node="triage")


def test_scope_decides_where_an_item_applies() -> None:
    g = guidance(
        (RULE, PAY, ""),
        ("Look the order up before answering.", ANY_NODE_LOOKUP, ""),
        ("Route refunds to payments.", TRIAGE, ""),
    )
    fb = ReviewerFeedback(g, record_spans=False)
    pay = fb.render(node="payments", tools=["refund"])
    assert RULE in pay.text and "Route refunds" not in pay.text
    assert "Look the order up" not in pay.text  # lookup_order is not among its tools
    assert "Look the order up" in fb.render(node="payments").text  # tools unknown
    tri = fb.render(node="triage", tools=[])
    assert "Route refunds" in tri.text and RULE not in tri.text
    assert fb.render(node="other", tools=[]).text == ""


def test_tenant_scoped_items_only_reach_that_tenant() -> None:
    g = guidance((RULE, ReviewContext(node="payments", tenant="acme"), ""))
    fb = ReviewerFeedback(g, record_spans=False)
    assert fb.render(node="payments", tenant="acme").text
    assert fb.render(node="payments", tenant="globex").text == ""
    assert fb.render(node="payments").text == ""


def test_most_relevant_first_then_budget_drops_whole_items() -> None:
    g = guidance(
        (
            "Quote the shipping policy when asked about delivery.",
            ReviewContext(node="payments"),
            "",
        ),
        (RULE, PAY, ""),
        ("Never refund an order twice.", ReviewContext(), ""),
    )
    fb = ReviewerFeedback(g, record_spans=False, examples=False)
    r = fb.render(node="payments", tools=["refund"], input="please refund 900 dollars")
    lines = r.text.splitlines()[1:]
    assert RULE in lines[0]  # node + tool scope beats node only
    assert "shipping" in lines[1]  # node scope beats none
    small = ReviewerFeedback(g, record_spans=False, examples=False, budget=len(r.text) - 5)
    r2 = small.render(node="payments", tools=["refund"], input="please refund 900 dollars")
    assert len(r2.text) <= len(r.text) - 5 and r2.omitted == 1
    assert all(line.endswith("]") for line in r2.text.splitlines()[1:])  # nothing cut
    # similarity to the input breaks ties between equally scoped items
    tie = guidance(
        ("Mention the delivery times.", ReviewContext(node="n"), ""),
        ("Confirm the refund amount with the customer.", ReviewContext(node="n"), ""),
    )
    first = render_guidance(
        tie, node="n", input="can I get a refund of the amount?", examples=False
    )
    assert "refund amount" in first.text.splitlines()[1]


def test_each_line_names_its_item_and_the_version_covers_what_was_rendered() -> None:
    g = guidance((RULE, PAY, ""), ("Never refund twice.", ReviewContext(node="triage"), ""))
    r = render_guidance(g, node="payments", tools=["refund"])
    (item,) = g.applicable(node="payments", tools=["refund"])
    assert f"[{item.id}]" in r.text and r.item_ids == (item.id,)
    assert r.version == g.for_node("payments", tools=["refund"]).version != g.version
    assert r.span_ids == item.span_ids and "asked: 'refund order A1" in r.text


def test_advice_on_a_correct_action_is_not_called_a_mistake() -> None:
    s = span_id()
    reviews = [
        review(s, label="correct", reviewer="alice"),
        review(s, name="hitl_guidance", explanation="Also confirm the order id.", reviewer="alice"),
    ]
    g = derive_guidance(
        reviews, {r.review_id: PAY for r in reviews}, GuidanceConfig(min_reviews=1), now=T0
    )
    (item,) = g.active
    assert not item.judged_wrong
    text = render_guidance(g, node="payments").text
    assert "judged it right" in text and "wrong" not in text
    wrong = render_guidance(guidance((RULE, PAY, "")), node="payments").text
    assert "reviewers said that was wrong" in wrong


def test_apply_appends_or_fills_the_slot_and_never_rewrites_the_base() -> None:
    fb = ReviewerFeedback(guidance((RULE, PAY, "")), record_spans=False)
    out = fb.apply(BASE, node="payments", tools=["refund"])
    assert out.startswith(BASE + "\n\n") and RULE in out
    slotted = "Rules:\n{{reviewer_guidance}}\nBe brief. {{question}}"
    filled = fb.apply(slotted, node="payments")
    assert filled.startswith("Rules:\nReviewer guidance") and filled.endswith(
        "Be brief. {{question}}"
    )
    fstr = fb.apply("Rules: {reviewer_guidance} then {question}", node="payments")
    assert "{question}" in fstr and "{reviewer_guidance}" not in fstr
    empty = ReviewerFeedback(GuidanceSet(), record_spans=False)
    assert empty.apply(BASE, node="payments") == BASE
    assert empty.apply(slotted, node="payments") == "Rules:\n\nBe brief. {{question}}"


def test_template_variable_and_guard() -> None:
    fb = ReviewerFeedback(guidance((RULE, PAY, "")), record_spans=False)
    tpl = ChatPromptTemplate.from_messages([("system", BASE), ("human", "{question}")])
    guided = fb.guided(tpl)
    assert set(guided.input_variables) == {"question", "reviewer_guidance"}
    msgs = guided.invoke({"question": "refund 900?", **fb.variables(node="payments")}).to_messages()
    assert msgs[0].content.startswith(BASE) and RULE in msgs[0].content
    assert fb.guided(guided) is guided
    with pytest.raises(TemplateVariableError) as err:
        check_variables(tpl, ChatPromptTemplate.from_messages([("system", "{reviewer_guidance}")]))
    assert err.value.missing == ("question",)
    with pytest.raises(TemplateVariableError, match="no reviewer_guidance slot"):
        check_variables("{{question}}", "{{question}}", require=["reviewer_guidance"])
    with pytest.raises(TemplateVariableError, match="reviewer_guidance=''"):
        render_mustache("{{reviewer_guidance}} {{q}}", {"q": "x"})


# -- create_agent middleware and spans -----------------------------------------------------
@pytest.fixture
def traced() -> Iterator[tuple[Any, InMemorySpanExporter]]:
    memory = InMemorySpanExporter()
    handle = setup_tracing("feedback-test", span_exporter=memory, batch=False)
    yield handle, memory
    handle.shutdown(1.0)
    active = tracing_setup._active
    if active is not None:
        active[1].shutdown(1.0)
    if LangChainInstrumentor().is_instrumented_by_opentelemetry:
        LangChainInstrumentor().uninstrument()


def _agent(fb: ReviewerFeedback, seen: list[str]) -> Any:
    from langchain.agents import create_agent
    from langchain_core.tools import tool

    @tool
    def refund(order: str, amount: int) -> str:
        """Refund an order."""
        return "ok"

    def script(messages: list[BaseMessage]) -> BaseMessage:
        seen.append(next((m.text for m in messages if isinstance(m, SystemMessage)), ""))
        return AIMessage("done")

    model = ScriptedChatModel(script=script)
    return create_agent(model, [refund], system_prompt=BASE, middleware=[fb.middleware()])


def test_middleware_adds_the_block_to_the_system_message_and_records_the_version(
    traced: tuple[Any, InMemorySpanExporter],
) -> None:
    handle, memory = traced
    g = guidance(
        (RULE, ReviewContext(node="model", tool="refund"), ""),
        ("Route refunds to payments.", TRIAGE, ""),
    )
    fb = ReviewerFeedback(StaticGuidance(g))
    seen: list[str] = []
    _agent(fb, seen).invoke({"messages": [HumanMessage("refund A1 900")]})
    (system,) = seen
    assert system.startswith(BASE + "\n\n") and RULE in system and "Route refunds" not in system
    assert handle.force_flush(5.0)
    llm = [
        s
        for s in memory.get_finished_spans()
        if s.attributes.get("openinference.span.kind") == "LLM"
    ]
    (span,) = llm
    expected = g.for_node("model", tools=["refund"]).version
    assert span.attributes["llm.prompt_template.version"] == expected
    variables = json.loads(str(span.attributes["llm.prompt_template.variables"]))
    assert RULE in variables["reviewer_guidance"]
    (item,) = g.applicable(node="model", tools=["refund"])
    node = [s for s in memory.get_finished_spans() if s.attributes.get(GUIDANCE_VERSION)]
    assert node and all(s.attributes[GUIDANCE_ITEMS] == (item.id,) for s in node)
    assert all(tuple(s.attributes[GUIDANCE_SPANS]) == item.span_ids for s in node)
    assert {s.name for s in node} >= {"model"}  # the node span, set while it was open


def test_middleware_with_no_guidance_leaves_the_prompt_alone() -> None:
    seen: list[str] = []
    _agent(ReviewerFeedback(GuidanceSet(), record_spans=False), seen).invoke(
        {"messages": [HumanMessage("hi")]}
    )
    assert seen == [BASE]


def test_async_middleware_path() -> None:
    g = guidance((RULE, ReviewContext(node="model"), ""))
    seen: list[str] = []
    agent = _agent(ReviewerFeedback(g, record_spans=False), seen)
    asyncio.run(agent.ainvoke({"messages": [HumanMessage("refund")]}))
    assert RULE in seen[0]
