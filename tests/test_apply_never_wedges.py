"""A failed apply never leaves its ``resume:`` claim running (issue: ``apply`` against a
graph object without a checkpointer wedged the request for good)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fixtures_graph import build_bank_app, pause_bank
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import open_store
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.inbox._graph import resume_key
from hitl_langgraph.testing import tool_call

FIRST = tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))
ANN = Reviewer("ann", roles={"finance"})


def _decided_without_graph(tmp_path: Path) -> tuple[object, object, str, object]:
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    app, _cfg, intr, ledger = pause_bank(store, InMemorySaver(), FIRST)
    rid = intr.value["action_requests"][0]["request_id"]
    Inbox(store).approve(rid, reviewer=ANN)  # split mode: recorded, not resumed
    return store, app, rid, ledger


def test_apply_with_a_graph_without_checkpointer_releases_its_claim(tmp_path: Path) -> None:
    store, app, rid, ledger = _decided_without_graph(tmp_path)
    no_checkpointer = build_bank_app(store, None, FIRST, ledger)  # type: ignore[arg-type]
    report = Inbox(store, no_checkpointer).apply_decided()  # type: ignore[arg-type]
    assert report.applied == [] and "No checkpointer set" in report.errors[rid]
    assert store.get_execution(resume_key(rid)) is None  # type: ignore[attr-defined]
    # the right graph applies it on the next call: nothing was wedged
    report = Inbox(store, app).apply_decided()  # type: ignore[arg-type]
    assert report.applied == [rid]
    assert ledger.count("transfer_funds") == 1  # type: ignore[attr-defined]


def test_async_apply_failure_releases_its_claim(tmp_path: Path) -> None:
    store, app, rid, ledger = _decided_without_graph(tmp_path)
    no_checkpointer = build_bank_app(store, None, FIRST, ledger)  # type: ignore[arg-type]

    async def run() -> None:
        report = await Inbox(store, no_checkpointer).aapply_decided()  # type: ignore[arg-type]
        assert rid in report.errors
        assert store.get_execution(resume_key(rid)) is None  # type: ignore[attr-defined]
        report = await Inbox(store, app).aapply_decided()  # type: ignore[arg-type]
        assert report.applied == [rid]

    asyncio.run(run())
    assert ledger.count("transfer_funds") == 1  # type: ignore[attr-defined]
