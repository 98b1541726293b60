"""Fault suite, issue 10 part 3: one person never counts as two (quorum, separation of
duties, edited follow-ups), with ids compared canonically; SQLite and Postgres."""

from __future__ import annotations

import pytest
from faults_support import Stack, stack_fixture  # noqa: F401
from inbox_graphs import inbox_policy

from hitl_langgraph import Inbox, Reviewer, RiskPolicy, Rule
from hitl_langgraph.errors import NotAuthorized

pytestmark = pytest.mark.faults

SAME_AS_ALICE = ["Alice", "ALICE", "alice\u200b", "\u200balice", "ａｌｉｃｅ", "alice\u2060"]
SAME_AS_CAROL = ["Carol", "CAROL", "carol\u200b", "car\u00adol", "carоl"]  # last: Cyrillic о


def test_canonical_ids() -> None:
    from hitl_langgraph.policy.text import canonical_id, confusable, mixed_script

    assert {canonical_id(x) for x in ["alice", *SAME_AS_ALICE]} == {"alice"}
    assert canonical_id("Ｃａｒｏｌ\ufeff") == "carol"
    assert mixed_script("carоl") == {"CYRILLIC", "LATIN"} and mixed_script("carol") is None
    assert confusable("саrol", ["carol"]) == "carol" and confusable("Carol", ["carol"]) is None


@pytest.mark.parametrize("twin", SAME_AS_ALICE)
def test_quorum_is_not_completed_by_one_person_twice(stack: Stack, twin: str) -> None:
    app, cfg, intr, rid = stack.paused(policy=inbox_policy(quorum=2))
    inbox = Inbox(stack.store, app)
    assert inbox.approve(rid, reviewer=Reviewer("alice", {"finance"})).outcome == "partial"
    with pytest.raises(NotAuthorized, match="already approved"):
        inbox.approve(rid, reviewer=Reviewer(twin, {"finance"}))
    rec = inbox.get(rid)
    assert rec.status == "pending" and len(rec.approvals) == 1
    assert stack.ledger.entries == []
    assert inbox.approve(rid, reviewer=Reviewer("bob", {"finance"})).outcome == "resumed"
    assert stack.ledger.count("transfer_funds") == 1


def test_quorum_refuses_a_lookalike_of_an_approver(stack: Stack) -> None:
    app, cfg, intr, rid = stack.paused(policy=inbox_policy(quorum=2))
    inbox = Inbox(stack.store, app)
    inbox.approve(rid, reviewer=Reviewer("alice", {"finance"}))
    with pytest.raises(NotAuthorized, match="mixes scripts"):
        inbox.approve(rid, reviewer=Reviewer("аlice", {"finance"}))  # Cyrillic а
    assert inbox.get(rid).status == "pending" and stack.ledger.entries == []


@pytest.mark.parametrize("twin", SAME_AS_CAROL)
def test_requester_cannot_approve_own_request_under_another_spelling(
    stack: Stack, twin: str
) -> None:
    app, cfg, intr, rid = stack.paused()  # requested by carol
    inbox = Inbox(stack.store, app)
    with pytest.raises(NotAuthorized, match="separation of duties|mixes scripts"):
        inbox.approve(rid, reviewer=Reviewer(twin, {"finance"}))
    assert inbox.get(rid).status == "pending" and stack.ledger.entries == []
    refused = [e for e in inbox.history(rid) if e.event == "refused"]
    assert refused and refused[-1].data["error"] == "NotAuthorized"


def _edit_into_close(stack: Stack, policy: RiskPolicy | None = None) -> tuple[Inbox, str]:
    app, cfg, intr, rid = stack.paused(policy=policy)
    inbox = Inbox(stack.store, app)
    res = inbox.edit(
        rid, reviewer=Reviewer("frank", {"finance"}), tool="close_account", args={"name": "acme"}
    )
    (follow,) = res.follow_ups
    return inbox, follow.request_id


@pytest.mark.parametrize("editor", ["frank", "Frank", "frank\u200b"])
def test_editor_cannot_approve_the_follow_up_of_their_own_edit(stack: Stack, editor: str) -> None:
    inbox, frid = _edit_into_close(stack)
    with pytest.raises(NotAuthorized, match="edited request"):
        inbox.approve(frid, reviewer=Reviewer(editor, {"finance"}))
    assert inbox.get(frid).status == "pending" and stack.ledger.entries == []
    inbox.approve(frid, reviewer=Reviewer("gina", {"finance"}))
    assert stack.ledger.count("close_account") == 1


def test_rule_may_let_the_editor_approve_the_follow_up(stack: Stack) -> None:
    base = inbox_policy()
    rules = [
        Rule(tool="close_account", score=0.95, editor_may_approve_followup=True)
        if r.tool == "close_account"
        else r
        for r in base.rules
    ]
    inbox, frid = _edit_into_close(stack, RiskPolicy(rules=rules))
    inbox.approve(frid, reviewer=Reviewer("frank", {"finance"}))
    assert stack.ledger.count("close_account") == 1
