"""Jupyter HTML rendering and terminal reprs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hitl_langgraph import Action, Approve, Edit, EditedAction, RiskPolicy, Rule
from hitl_langgraph.notebook import display as disp
from hitl_langgraph.store.records import ApprovalRecord

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def record(**kw: object) -> ApprovalRecord:
    base: dict[str, object] = {
        "request_id": "req_1",
        "thread_id": "t1",
        "node": "tools",
        "tool": "transfer_funds",
        "args": {"amount": 9000, "to": "<script>alert(1)</script>", "memo": "x" * 300},
        "digest": "sha256:" + "ab" * 32,
        "score": 0.9,
        "route": "approve",
        "reasons": ["rule tool=transfer_funds scored 0.90", "score 0.90 -> approve (> 0.85)"],
        "status": "pending",
        "created_at": NOW,
        "updated_at": NOW,
        "approver_roles": ["finance"],
        "allowed_decisions": ["approve", "reject"],
        "requester": "alice",
        "expires_at": NOW + timedelta(hours=4),
        "metadata": {
            "paused_trace_id": "0af7651916cd43dd8448eb211c80319c",
            "paused_span_id": "b7ad6b7169203331",
        },
    }
    base.update(kw)
    return ApprovalRecord(**base)  # type: ignore[arg-type]


def test_record_html_shows_what_a_reviewer_needs() -> None:
    disp.configure(phoenix_url="http://127.0.0.1:6006", project="bank")
    out = record()._repr_html_()
    for text in (
        "transfer_funds",
        "9000",
        "finance",
        "approve, reject",
        "alice",
        "t1",
        "req_1",
        "score 0.90 -&gt; approve",
        "2026-01-01T16:00:00+00:00",
    ):
        assert text in out, text
    assert "<script>" not in out and "&lt;script&gt;" in out  # escaped
    assert "<details>" in out and "(300 chars)" in out  # long value folded
    assert "http://127.0.0.1:6006/redirects/spans/b7ad6b7169203331" in out
    assert disp.trace_url("0af7", None) == "http://127.0.0.1:6006/projects/bank/traces/0af7"


def test_no_trace_link_without_phoenix() -> None:
    disp._settings["phoenix_url"] = None
    assert "open in Phoenix" not in record(metadata={})._repr_html_()


def test_decided_record_and_decisions() -> None:
    rec = record(
        status="rejected",
        decision={"type": "reject", "message": "not a customer"},
        decided_by="bob",
        decided_at=NOW,
    )
    out = rec._repr_html_()
    assert "rejected" in out and "not a customer" in out and "by bob" in out
    edit = Edit(edited_action=EditedAction(name="transfer_funds", args={"amount": 5}))
    assert "transfer_funds" in edit._repr_html_() and "edit" in edit._repr_html_()
    assert "<b>approve</b>" in Approve()._repr_html_()


def test_assessment_and_list_views() -> None:
    p = RiskPolicy(rules=[Rule(tool="t", score=0.9, approver_roles=frozenset({"ops"}))])
    a = p.assess(Action("t", {"x": 1}))
    assert "ops" in a._repr_html_() and "approve" in a._repr_html_()
    assert repr(a).startswith("Assessment(t score=0.90 route=approve")
    table = disp.records_html([record(), record(request_id="req_2")])
    assert table.count("<tr>") == 3 and "(2)" in table
    assert "nothing pending" in disp.records_html([])


def test_terminal_repr_is_one_short_line() -> None:
    r = repr(record())
    assert (
        r.startswith("ApprovalRecord(req_1 pending transfer_funds(")
        and "\n" not in r
        and len(r) < 200
    )


def test_setup_tracing_points_the_cards_at_its_phoenix() -> None:
    from hitl_langgraph.tracing import setup_tracing

    disp._settings["phoenix_url"] = None
    handle = setup_tracing("cards", endpoint="http://127.0.0.1:6199", instrument_langchain=False)
    try:
        assert disp.trace_url(None, "abc") == "http://127.0.0.1:6199/redirects/spans/abc"
    finally:
        handle.shutdown(timeout=1)
        disp._settings["phoenix_url"] = None
