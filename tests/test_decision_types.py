"""A rule's ``allowed_decisions`` hold through the inbox, with and without a graph.

A rule that allows only approve/reject: ``Inbox.edit`` and ``Inbox.respond`` raise
``InvalidDecision``, record nothing but a ``refused`` audit row, leave the request
pending and run nothing; an allowed decision still goes through afterwards.
"""

from __future__ import annotations

import pytest
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import InvalidDecision, RiskPolicy, Rule
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.store.base import ApprovalStore

ALICE = Reviewer("alice", {"finance"})


def approve_or_reject_only() -> RiskPolicy:
    return RiskPolicy(
        rules=[
            Rule(
                tool="transfer_funds",
                score=0.9,
                approver_roles=frozenset({"finance"}),
                allowed_decisions=("approve", "reject"),
            )
        ]
    )


def refuse(inbox: Inbox, rid: str, kind: str) -> None:
    with pytest.raises(InvalidDecision, match=rf"decision '{kind}' is not allowed") as err:
        if kind == "edit":
            inbox.edit(rid, reviewer=ALICE, args={"amount": 1, "to": "bob"})
        else:
            inbox.respond(rid, reviewer=ALICE, message="paid by hand")
    assert "allowed: ['approve', 'reject']" in str(err.value)


@pytest.mark.parametrize("with_graph", [True, False], ids=["graph", "record-only"])
def test_disallowed_decision_types_are_refused_and_change_nothing(
    store: ApprovalStore, with_graph: bool
) -> None:
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer(), policy=approve_or_reject_only())
    _, intr, rid = interrupted(app)
    assert intr.value["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
    inbox = Inbox(store, app if with_graph else None)
    before = store.get_request(rid)
    for kind in ("edit", "respond"):
        refuse(inbox, rid, kind)
    after = store.get_request(rid)
    assert after is not None and before is not None
    assert (after.status, after.decision, after.decided_by) == ("pending", None, None)
    assert after == before  # not one field changed
    events = [e.event for e in store.list_audit(request_id=rid)]
    assert events == ["requested", "refused", "refused"]
    assert ledger.count("transfer_funds") == 0
    result = inbox.approve(rid, reviewer=ALICE)  # an allowed type still goes through
    assert (result.decision, result.record.status) == ("approve", "approved")
    assert result.outcome == ("resumed" if with_graph else "recorded")
    assert ledger.count("transfer_funds") == (1 if with_graph else 0)
