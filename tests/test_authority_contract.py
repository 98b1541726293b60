"""``check_authority`` / ``check_edit_target`` called directly (they are public): each
refusal's exact type, message and ``request_id``, and the defaults (mutation-tested)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from hitl_langgraph import InvalidDecision, NotAuthorized
from hitl_langgraph.inbox import Reviewer, check_authority
from hitl_langgraph.inbox.authority import check_edit_target
from hitl_langgraph.store.records import ApprovalRecord

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def record(**kw: Any) -> ApprovalRecord:
    fields: dict[str, Any] = {
        "request_id": "req_1",
        "thread_id": "t1",
        "node": "tools",
        "tool": "pay",
        "args": {"amount": 5},
        "digest": "d",
        "score": 0.9,
        "route": "approve",
        "reasons": [],
        "status": "pending",
        "created_at": T0,
        "updated_at": T0,
        **kw,
    }
    return ApprovalRecord(**fields)


def refusal(exc: type[Exception], rec: ApprovalRecord, who: Reviewer, kind: str) -> str:
    with pytest.raises(exc) as err:
        check_authority(rec, who, kind)
    assert getattr(err.value, "request_id", None) == rec.request_id
    return str(err.value)


def test_each_refusal_says_who_what_and_why() -> None:
    assert refusal(NotAuthorized, record(), Reviewer("system", {"ops"}), "reject") == (
        "the reviewer id 'system' is reserved for decisions the inbox applies itself "
        "(expiry); decide request req_1 as a named reviewer"
    )
    assert refusal(
        NotAuthorized, record(approver_roles=["finance"]), Reviewer("eve"), "reject"
    ) == (
        "reviewer 'eve' (no roles) may not decide request req_1 (pay): it needs one of "
        "the roles ['finance']; ask someone who holds one"
    )
    assert refusal(
        NotAuthorized, record(requester="carol"), Reviewer("carol", {"a", "b"}), "approve"
    ) == (
        "reviewer 'carol' (a, b) requested req_1 (pay) and may not approve it "
        "(separation of duties); another reviewer must decide"
    )
    assert refusal(
        InvalidDecision,
        record(allowed_decisions=["approve", "reject"]),
        Reviewer("bob"),
        "edit",
    ) == ("decision 'edit' is not allowed for pay (request req_1); allowed: ['approve', 'reject']")


def test_separation_of_duties_is_on_by_default_and_only_for_executing_decisions() -> None:
    rec = record(requester="carol")
    carol = Reviewer("carol")
    check_authority(rec, carol, "reject")  # withdrawing one's own request is fine
    check_authority(rec, carol, "approve", separation_of_duties=False)
    with pytest.raises(NotAuthorized):
        check_authority(rec, carol, "edit")


def test_an_edit_into_an_action_needing_other_roles_is_refused_with_the_request_id() -> None:
    with pytest.raises(NotAuthorized) as err:
        check_edit_target(record(), Reviewer("bob", {"ops"}), ["admin"], "wipe")
    assert err.value.request_id == "req_1"
    assert str(err.value) == (
        "reviewer 'bob' (ops) may not edit request req_1 into a call to wipe: that action "
        "needs one of the roles ['admin']"
    )
    check_edit_target(record(), Reviewer("ann", {"admin"}), ["admin"], "wipe")
