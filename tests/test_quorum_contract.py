"""Exact contracts of the quorum slots and the compensation registry (mutation-tested).

Each test pins a behaviour a mutant of hitl_langgraph/inbox/quorum.py or
hitl_langgraph/feedback/compensate.py changed while the rest of the suite still passed
(README "Mutation testing").
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from inbox_graphs import MemLedger, build_app, inbox_policy, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import NotAuthorized
from hitl_langgraph.errors import CompensationNotRegistered, ConfigurationError
from hitl_langgraph.feedback.compensate import Compensations
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.inbox.quorum import approvals_of, reviewer_key, slot_key
from hitl_langgraph.store import MemoryStore

ALICE, BOB = Reviewer("alice", {"finance"}), Reviewer("bob", {"finance"})
AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def quorum_request(quorum: int) -> tuple[MemoryStore, Inbox, str]:
    store = MemoryStore()
    app = build_app(
        store, InMemorySaver(), MemLedger(), transfer(), policy=inbox_policy(quorum=quorum)
    )
    return store, Inbox(store, app), interrupted(app)[2]


def test_a_reviewer_whose_vote_claim_is_held_cannot_vote_again() -> None:
    """The per-reviewer claim is the guard (a double click racing, or a crash between the
    reviewer's claim and their slot): a second approval is refused, no slot is taken."""
    store, inbox, rid = quorum_request(2)
    inbox.approve(rid, reviewer=BOB)
    assert store.claim_execution(reviewer_key(rid, "alice"), worker="alice", at=AT)
    with pytest.raises(NotAuthorized) as err:
        inbox.approve(rid, reviewer=ALICE)
    assert str(err.value) == (
        f"reviewer 'alice' already approved request {rid}; it needs 2 approvals from "
        "distinct reviewers (so far: bob)"
    )
    rec = store.get_request(rid)
    assert rec is not None and rec.status == "pending"
    assert [v["reviewer"] for v in approvals_of(store, rec)] == ["bob"]
    assert store.get_execution(slot_key(rid, 2)) is None


def test_a_vote_records_reviewer_roles_time_and_reason() -> None:
    store, inbox, rid = quorum_request(2)
    inbox.approve(rid, reviewer=Reviewer("bob", {"finance", "audit"}), reason="checked")
    rec = store.get_request(rid)
    assert rec is not None
    (vote,) = approvals_of(store, rec)
    assert vote == {
        "reviewer": "bob",
        "roles": ["audit", "finance"],
        "at": vote["at"],
        "reason": "checked",
    }
    assert datetime.fromisoformat(vote["at"]).tzinfo is not None
    assert rec.approvals == [vote]  # the row's display copy
    assert Reviewer("bob", {"finance", "audit"}).to_dict() == {
        "id": "bob",
        "roles": ["audit", "finance"],
    }


def test_approvals_of_a_single_approval_request_is_its_row() -> None:
    store, inbox, rid = quorum_request(1)
    inbox.approve(rid, reviewer=ALICE)
    rec = store.get_request(rid)
    assert rec is not None and rec.approvals
    assert approvals_of(store, rec) == list(rec.approvals)


def test_a_slot_holding_a_plain_reviewer_id_still_counts() -> None:
    store, _, rid = quorum_request(2)
    assert store.claim_execution(slot_key(rid, 1), worker="carol", at=AT)  # not JSON
    rec = store.get_request(rid)
    assert rec is not None and approvals_of(store, rec) == [{"reviewer": "carol"}]


def test_the_compensation_registry_names_and_refuses_exactly() -> None:
    reg = Compensations()

    def refund(req: object) -> str:
        return "refunded"

    class Undo:
        def __call__(self, req: object) -> str:
            return "undone"

    assert (reg.register("pay", refund).tool, reg.get("pay").name) == ("pay", "refund")  # type: ignore[union-attr]
    assert reg.register("ship", Undo()).name == "Undo"  # a callable object: its class name
    assert reg.register("mail", refund, name="recall").name == "recall"
    assert list(reg) == ["mail", "pay", "ship"] and "pay" in reg and "nope" not in reg
    assert reg.register("pay", refund).name == "refund"  # the same function again: a no-op
    with pytest.raises(ConfigurationError) as err:
        reg.register("pay", Undo())
    assert str(err.value) == "'pay' already has a compensator; pass replace=True"
    with pytest.raises(ConfigurationError) as err:
        reg.register("x", "not callable")  # type: ignore[arg-type]
    assert str(err.value) == "the compensator of 'x' must be callable, got 'not callable'"
    with pytest.raises(CompensationNotRegistered) as missing:
        reg.require("nope")
    assert str(missing.value) == "no compensator registered for tool 'nope'"
