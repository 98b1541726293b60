"""The approval widget's buttons, driven programmatically; the inbox state is checked after."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures_graph import Ledger, build_bank_app, thread
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import RequestFilter, open_store
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.notebook.widget import ApprovalWidget
from hitl_langgraph.testing import tool_call


@pytest.fixture
def setup(tmp_path: Any) -> Any:
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    ledger = Ledger()
    saver = InMemorySaver()

    def pause(first: Any, user: str = "carol") -> tuple[Any, dict[str, Any]]:
        app = build_bank_app(store, saver, first, ledger)
        cfg = thread()
        cfg["configurable"]["user_id"] = user
        app.invoke({"messages": [("user", "go")]}, cfg)
        return app, cfg

    return store, ledger, pause


def test_approve_button_resumes_and_runs_once(setup: Any) -> None:
    store, ledger, pause = setup
    app, _ = pause(tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})))
    widget = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("alice", {"finance"}))
    assert len(widget.picker.options) == 1 and "transfer_funds" in widget.header.value
    assert "alice" in widget.header.value and "transfer_funds" in widget.details.value
    widget.approve_button.click()
    assert widget.last_result is not None, widget.outcome.value
    assert widget.last_result.outcome == "resumed"
    assert ledger.count("transfer_funds") == 1
    assert "resumed" in widget.outcome.value and widget.picker.options == ()
    assert Inbox(store).count() == 0


def test_refusals_are_shown_and_change_nothing(setup: Any) -> None:
    store, ledger, pause = setup
    app, _ = pause(tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})))
    intern = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("ian", {"support"}))
    intern.approve_button.click()
    assert type(intern.last_error).__name__ == "NotAuthorized" and "refused" in intern.outcome.value
    assert ledger.entries == [] and Inbox(store).count() == 1
    # the requester may not approve their own request
    own = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("carol", {"finance"}))
    own.approve_button.click()
    assert type(own.last_error).__name__ == "NotAuthorized" and ledger.entries == []


def test_reject_with_reason_and_already_decided(setup: Any) -> None:
    store, ledger, pause = setup
    app, _ = pause(tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})))
    a = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("alice", {"finance"}))
    b = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("bob", {"finance"}))
    a.reason.value = "wrong account"
    a.reject_button.click()
    assert a.last_result.outcome == "resumed" and ledger.entries == []
    (rec,) = store.list_requests(RequestFilter(status=None))
    assert rec.status == "rejected" and rec.decision["message"] == "wrong account"
    # b still shows the request it loaded before a decided; its click is refused
    assert rec.request_id in [v for _, v in b.picker.options]
    b.approve_button.disabled = False
    b._act("approve")
    assert type(b.last_error).__name__ == "AlreadyDecided" and "alice" in str(b.last_error)
    assert ledger.entries == []


def test_edit_is_validated_against_the_tool_schema_before_sending(setup: Any) -> None:
    store, ledger, pause = setup
    app, _ = pause(tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"})))
    widget = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("alice", {"finance"}))
    widget.args_editor.value = json.dumps({"amount": "lots", "to": "bob"})
    widget.edit_button.click()
    assert "not sent" in widget.outcome.value and "amount" in widget.outcome.value
    assert Inbox(store).count() == 1 and ledger.entries == []
    widget.args_editor.value = "{not json"
    widget.edit_button.click()
    assert "not valid JSON" in widget.outcome.value
    widget.args_editor.value = json.dumps({"amount": 500, "to": "bob"})
    widget.edit_button.click()
    assert widget.last_result.outcome == "resumed"
    assert ledger.entries == [("transfer_funds", {"amount": 500, "to": "bob"})]


def test_respond_needs_a_message(setup: Any) -> None:
    store, ledger, pause = setup
    app, _ = pause(tool_call(("close_account", {"name": "old"})))
    widget = ApprovalWidget(Inbox(store, app), reviewer=Reviewer("alice", set()))
    widget.respond_button.click()
    assert "write the answer" in widget.outcome.value
    widget.reason.value = "closed by hand"
    widget.respond_button.click()
    assert widget.last_result.outcome == "resumed" and ledger.entries == []
