"""RiskPolicy: scoring, routing, reasons, failure modes."""

from __future__ import annotations

import pytest

from hitl_langgraph import Action, ConfigurationError, PolicyError, RiskPolicy, Rule, Thresholds


def transfer(amount: float) -> Action:
    return Action("transfer_funds", {"amount": amount, "to": "bob"})


POLICY = RiskPolicy(
    rules=[
        Rule(
            tool="transfer_funds",
            score=lambda a: min(a["amount"] / 10_000, 1.0),
            approver_roles={"finance"},
        ),
        Rule(tool="lookup_*", score=0.0),
        Rule(
            tool="email_*",
            score=0.3,
            when=lambda a: a.get("external") is True,
            name="external-email",
        ),
        Rule(tool="email_*", score=0.0),
    ]
)


@pytest.mark.parametrize(
    ("amount", "route"),
    [
        (0, "auto"),
        (5_000, "auto"),
        (5_001, "review"),
        (8_500, "review"),
        (8_501, "approve"),
        (50_000, "approve"),
    ],
)
def test_default_thresholds_follow_the_seed(amount: float, route: str) -> None:
    a = POLICY.assess(transfer(amount))
    assert a.route == route
    assert a.rule == "tool=transfer_funds"
    assert any("transfer_funds" in r for r in a.reasons)


def test_assessment_carries_roles_and_reasons() -> None:
    a = POLICY.assess(transfer(9_000))
    assert a.score == 0.9 and a.approver_roles == frozenset({"finance"})
    assert a.reasons[-1] == "score 0.90 -> approve (> 0.85)"
    assert a.to_dict()["digest"] == transfer(9_000).digest


def test_globs_and_predicates_first_match_wins() -> None:
    assert POLICY.assess(Action("lookup_account", {"name": "x"})).route == "auto"
    ext = POLICY.assess(Action("email_send", {"external": True}))
    assert ext.rule == "external-email" and ext.score == 0.3
    assert POLICY.assess(Action("email_send", {"external": False})).rule == "tool=email_*"


def test_unmatched_tools_fail_closed_by_default() -> None:
    a = POLICY.assess(Action("rm_rf", {}))
    assert a.route == "approve" and "no rule matches" in a.reasons[0]
    assert RiskPolicy(unmatched="auto").assess(Action("x")).route == "auto"


def test_scorer_can_raise_the_score_with_a_reason() -> None:
    def night_shift(action: Action, ctx: object) -> tuple[float, str]:
        return 0.95, "outside business hours"

    p = RiskPolicy(rules=[Rule(tool="*", score=0.1)], scorers=[night_shift])
    a = p.assess(Action("anything"))
    assert a.score == 0.95 and a.route == "approve" and "outside business hours" in a.reasons


def test_scorer_sees_state_and_config() -> None:
    def vip(action: Action, ctx: object) -> float | None:
        return 0.9 if getattr(ctx, "user_id", None) == "intern" else None

    p = RiskPolicy(rules=[Rule(score=0.0)], scorers=[vip])
    cfg = {"configurable": {"thread_id": "t", "user_id": "intern"}}
    assert p.assess(Action("x"), config=cfg).route == "approve"
    assert p.assess(Action("x"), config={"configurable": {"user_id": "boss"}}).route == "auto"


def test_a_raising_rule_fails_closed_with_the_error_named() -> None:
    a = POLICY.assess(Action("transfer_funds", {"to": "bob"}))  # no amount
    assert a.route == "approve" and a.score == 1.0
    assert "KeyError" in a.reasons[0] and "failing closed" in a.reasons[0]


def test_out_of_range_score_is_a_policy_error() -> None:
    bad = RiskPolicy(rules=[Rule(tool="t", score=lambda a: a["x"])])
    with pytest.raises(PolicyError, match=r"in \[0, 1\]"):
        bad.assess(Action("t", {"x": 3}))
    with pytest.raises(PolicyError, match="number"):
        bad.assess(Action("t", {"x": "high"}))
    with pytest.raises(PolicyError):
        Rule(tool="t", score=1.5)


def test_forced_routes_and_deny_threshold() -> None:
    p = RiskPolicy(
        rules=[Rule(tool="wipe", score=0.0, route="deny"), Rule(tool="*", score=0.97)],
        thresholds=Thresholds(review=0.2, approve=0.6, deny=0.95),
    )
    assert p.assess(Action("wipe")).route == "deny"
    assert p.assess(Action("other")).route == "deny"


@pytest.mark.parametrize(
    "kwargs",
    [{"review": 0.9, "approve": 0.5}, {"approve": 1.5}, {"deny": 0.5}],
)
def test_bad_thresholds_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Thresholds(**kwargs)


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="allowed_decisions"):
        Rule(allowed_decisions=("approve", "ignore"))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="quorum"):
        Rule(quorum=0)
    with pytest.raises(ConfigurationError, match="Rule objects"):
        RiskPolicy(rules=[{"tool": "x"}])  # type: ignore[list-item]


def test_version_is_stable_and_tracks_changes() -> None:
    def make(score: float) -> RiskPolicy:
        return RiskPolicy(rules=[Rule(tool="a", score=score)])

    assert make(0.1).version == make(0.1).version
    assert make(0.1).version != make(0.2).version
    assert RiskPolicy(version="v7").version == "v7"
    assert POLICY.assess(Action("x")).policy_version == POLICY.version


def test_digest_binds_tool_and_canonical_args() -> None:
    assert Action("t", {"a": 1, "b": 2}).digest == Action("t", {"b": 2, "a": 1}).digest
    assert Action("t", {"a": 1}).digest != Action("t", {"a": 2}).digest
    assert Action("t", {"a": 1}).digest != Action("u", {"a": 1}).digest
