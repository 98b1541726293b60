"""RiskPolicy(adjusters=...): signed deltas after the rule score, clamped to the floor."""

from __future__ import annotations

import pytest

from hitl_langgraph import Action, PolicyError, RiskPolicy, Rule

REFUND = Action("refund", {"order": "A1", "amount": 900})


def test_adjusters_add_a_signed_delta_with_its_reason() -> None:
    up = RiskPolicy([Rule(tool="refund", score=0.6)], adjusters=[lambda a, c: (0.3, "reviews")])
    a = up.assess(REFUND)
    assert a.score == 0.9 and a.route == "approve"
    assert a.reasons == (
        "rule tool=refund scored 0.60",
        "reviews",
        "score 0.90 -> approve (> 0.85)",
    )
    down = RiskPolicy([Rule(tool="refund", score=0.6)], adjusters=[lambda a, c: -0.2])
    assert down.assess(REFUND).score == 0.4 and down.assess(REFUND).route == "auto"
    assert down.assess(REFUND).reasons[1].endswith("<lambda>: -0.20")


def test_adjusted_score_is_clamped_to_the_rule_floor_and_one() -> None:
    floor = RiskPolicy([Rule(tool="refund", score=0.6, floor=0.55)], adjusters=[lambda a, c: -0.5])
    a = floor.assess(REFUND)
    assert a.score == 0.55 and a.route == "review"
    assert "clamped to the rule floor 0.55" in a.reasons[-2]
    top = RiskPolicy([Rule(tool="refund", score=0.9)], adjusters=[lambda a, c: 0.5])
    assert top.assess(REFUND).score == 1.0


def test_scorers_still_raise_after_adjusters_and_forced_routes_stay() -> None:
    p = RiskPolicy(
        [Rule(tool="refund", score=0.6), Rule(tool="wipe", score=1.0, route="deny")],
        adjusters=[lambda a, c: -0.5],
        scorers=[lambda a, c: 0.7],
    )
    assert p.assess(REFUND).score == 0.7
    assert p.assess(Action("wipe", {})).route == "deny"


def test_adjusters_fail_closed_and_bad_deltas_are_policy_errors() -> None:
    def boom(a: Action, c: object) -> float:
        raise RuntimeError("store down")

    a = RiskPolicy([Rule(tool="refund", score=0.1)], adjusters=[boom]).assess(REFUND)
    assert a.route == "approve" and "boom raised RuntimeError('store down')" in a.reasons[0]
    with pytest.raises(PolicyError):
        RiskPolicy([Rule(tool="refund", score=0.1)], adjusters=[lambda a, c: 2.0]).assess(REFUND)
    with pytest.raises(PolicyError):
        RiskPolicy([Rule(tool="refund", score=0.1)], adjusters=[lambda a, c: "x"]).assess(REFUND)


def test_versions_without_adjusters_are_unchanged() -> None:
    rules = [Rule(tool="refund", score=0.6)]
    assert RiskPolicy(rules).version == RiskPolicy(rules, adjusters=()).version
    assert RiskPolicy(rules).version != RiskPolicy(rules, adjusters=[lambda a, c: 0]).version
