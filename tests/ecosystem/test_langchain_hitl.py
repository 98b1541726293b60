"""LangChain's own human-in-the-loop middleware tests, run against ``HITLMiddleware``.

The test file comes from the sdist of the installed langchain (downloaded at test time,
see ``conftest.py``). A plugin (``plugins/hitl_swap_hitl.py``) makes the name
``HumanInTheLoopMiddleware`` construct our ``HITLMiddleware`` with the same arguments.
Every test that drives the middleware through its public surface (construction,
``create_agent``, interrupts, resume payloads, messages) must pass; the white-box tests
in ``EXCLUDED`` (the one list of them, each with its reason) are deselected.

Reproduce: ``.venv/bin/python -m pytest tests/ecosystem -v`` (``-m ecosystem``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SuiteRun, sdist_tests

FILE = "tests/unit_tests/agents/middleware/implementations/test_human_in_the_loop.py"
PLUGIN = "hitl_swap_hitl"
pytestmark = pytest.mark.ecosystem

_AFTER_MODEL = (
    "white-box: calls LangChain's after_model() hook directly with a fake Runtime() outside "
    "a graph and patches the module-private langchain...human_in_the_loop.interrupt; our "
    "batched interrupt is raised by the gate engine inside a running graph"
)
_WRAP = (
    "white-box: calls wrap_tool_call() with a hand-built ToolCallRequest (runtime=None) "
    "whose state carries LangChain's private hitl_edited_tool_calls key"
)
_SCHEMA = "white-box: tests LangChain's private _decision_schema() helper"
# Not white-box: public per_call details where we differ on purpose (README, Compatibility)
_SUPERSET = (
    "differs on purpose: asserts the per_call interrupt value / response_schema JSON "
    "*equal* to LangChain's; ours is a superset (the same five ToolApprovalRequest fields "
    "plus action_requests, review_configs, request ids, digests, risk) and its "
    "response_schema is our ResumePayload (one decision or {decisions: [...]})"
)
_ERROR_TYPE = (
    "differs on purpose: expects pydantic.ValidationError for a malformed answer; we raise "
    "InvalidDecision (a ValueError; the ValidationError is its __cause__), also refused "
    "before LangGraph saves it"
)

# test name (without parameters) -> why it is not run against HITLMiddleware
EXCLUDED: dict[str, str] = {
    "test_human_in_the_loop_middleware_no_interrupts_needed": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_single_tool_accept": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_single_tool_edit": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_single_tool_rejection_reason": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_default_rejection_message": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_single_tool_respond": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_respond_disallowed": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_mixed_with_respond": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_true_allows_respond": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_multiple_tools_mixed_responses": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_multiple_tools_edit_responses": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_edit_with_modified_args": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_unknown_response_type": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_disallowed_action": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_mixed_auto_approved_and_interrupt": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_interrupt_request_structure": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_boolean_configs": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_sequence_mismatch": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_description_as_callable": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_preserves_tool_call_order": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_preserves_order_with_edits": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_preserves_order_with_rejections": _AFTER_MODEL,
    "test_when_predicate_batch_skips_interrupt_when_false": _AFTER_MODEL,
    "test_when_predicate_batch_fires_interrupt_when_true": _AFTER_MODEL,
    "test_when_predicate_receives_correct_args": _AFTER_MODEL,
    "test_a_turn_that_resolves_no_decisions_clears_the_previous_turns_edits": _AFTER_MODEL,
    "test_a_turn_with_nothing_recorded_does_not_write_state": _AFTER_MODEL,
    "test_async_turn_that_resolves_no_decisions_clears_the_previous_turns_edits": _AFTER_MODEL,
    "test_human_in_the_loop_middleware_edit_annotates_list_content": _WRAP,
    "test_human_in_the_loop_middleware_edit_annotates_command_result": _WRAP,
    "test_human_in_the_loop_middleware_edit_notice_is_not_duplicated": _WRAP,
    "test_human_in_the_loop_middleware_edit_annotates_async": _WRAP,
    "test_human_in_the_loop_middleware_edit_notice_is_customizable": _WRAP,
    "test_human_in_the_loop_middleware_edit_notice_can_be_disabled": _WRAP,
    "test_human_in_the_loop_middleware_edit_to_unknown_tool_raises": _WRAP,
    "test_recorded_edit_survives_a_later_tightening_of_allowed_decisions": _WRAP,
    "test_decision_schema_with_one_decision_is_a_plain_object": _SCHEMA,
    "test_decision_schema_rejects_a_bad_answer_with_one_error_at_the_problem": _SCHEMA,
    "test_edit_args_without_a_pydantic_schema_are_shown_but_not_enforced": _SCHEMA,
    "test_per_call_interrupt_shows_the_call_and_the_answers_it_accepts": _SUPERSET,
    "test_per_call_edit_leaves_validation_and_injected_args_to_the_tool": _SUPERSET,
    "test_per_call_pauses_once_per_gated_call_and_applies_answers_by_id": _SUPERSET,
    "test_per_call_rejects_a_bad_answer_without_saving_it": _ERROR_TYPE,
    "test_per_call_works_with_ainvoke": _ERROR_TYPE,
}


def _base(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1].split("[", 1)[0]


@pytest.fixture(scope="module")
def langchain_src() -> Path:
    return sdist_tests("langchain", "langchain")


@pytest.fixture(scope="module")
def stock(langchain_src: Path, suite_runner) -> SuiteRun:  # type: ignore[no-untyped-def]
    return suite_runner(langchain_src, [FILE], plugin=PLUGIN, mode="stock", extra=_CUT)


# LangChain's unit-test conftest (blockbuster, VCR cassettes) is not needed by this file;
# only tests/unit_tests/agents/conftest.py (its fixtures) is loaded.
_CUT = ("--confcutdir", "tests/unit_tests/agents")


def test_stock_middleware_passes_its_own_suite(stock: SuiteRun) -> None:
    assert stock.passed, stock.output
    assert not stock.failed, stock.output
    assert "not swapped" in stock.header, stock.header
    names = {_base(n) for n in stock.passed}
    assert set(EXCLUDED) <= names, f"excluded tests no longer exist: {set(EXCLUDED) - names}"


def test_hitl_middleware_passes_every_public_behaviour_test(
    langchain_src: Path, stock: SuiteRun, suite_runner
) -> None:  # type: ignore[no-untyped-def]
    deselect = [f"{FILE}::{name}" for name in EXCLUDED]
    gated = suite_runner(
        langchain_src,
        [FILE],
        plugin=PLUGIN,
        mode="gated",
        extra=(*_CUT, *(arg for d in deselect for arg in ("--deselect", d))),
    )
    public = sorted(n for n in stock.passed if _base(n) not in EXCLUDED)
    excluded = len(stock.passed) - len(public)
    print(f"{stock.summary} | {gated.summary} | excluded (listed with reasons): {excluded}")
    assert "HumanInTheLoopMiddleware swapped in" in gated.header, gated.header
    assert not gated.failed, f"{gated.summary}\n{gated.failed}\n{gated.output}"
    assert sorted(gated.passed) == public
