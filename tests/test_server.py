"""The example deployment on a real Agent Server (``langgraph dev``), driven by langgraph-sdk.

Runs on the SQLite store without ``--allow-blocking`` and on the Postgres store; the
transfer tool takes 2 s so the multitask races really overlap its execution.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx
import pytest
from fixtures_server import Deployment

from hitl_langgraph import open_store
from hitl_langgraph.store import RequestFilter

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

TERMINAL = {"success", "error", "interrupted", "timeout"}


def _who() -> str:
    return "acct" + uuid.uuid4().hex[:10]


def pause(client: Any, to: str, graph: str = "bank") -> tuple[str, str, str]:
    """Start a transfer to ``to`` and run until it waits for approval:
    ``(thread_id, interrupt_id, request_id)``."""
    tid = client.threads.create()["thread_id"]
    client.runs.wait(
        tid, graph, input={"messages": [{"role": "user", "content": f"transfer 9000 to {to}"}]}
    )
    thread = client.threads.get(tid)
    assert thread["status"] == "interrupted", thread
    (intr,) = [i for group in thread["interrupts"].values() for i in group]
    return tid, intr["id"], intr["value"]["action_requests"][0]["request_id"]


def approve(iid: str) -> dict[str, Any]:
    return {"resume": {iid: {"type": "approve"}}}


def tool_messages(client: Any, tid: str) -> list[dict[str, Any]]:
    msgs = client.threads.get_state(tid)["values"]["messages"]
    return [m for m in msgs if m["type"] == "tool"]


def wait_for(pred: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def wait_idle(client: Any, tid: str) -> None:
    def settled() -> bool:
        runs = client.runs.list(tid)
        return all(r["status"] in TERMINAL for r in runs)

    wait_for(settled)


@pytest.mark.parametrize("graph", ["bank", "agent"])
def test_interrupt_is_listed_with_our_payload_and_resumes_once(
    deployment: Deployment, graph: str
) -> None:
    client = deployment.client()
    to = _who()
    tid, iid, rid = pause(client, to, graph)
    listed = {t["thread_id"]: t for t in client.threads.search(status="interrupted", limit=1000)}
    assert tid in listed
    (intr,) = [i for g in listed[tid]["interrupts"].values() for i in g]
    req = intr["value"]["action_requests"][0]
    assert req["name"] == "transfer_funds" and req["args"] == {"amount": 9000, "to": to}
    assert req["request_id"] == rid and intr["value"]["review_configs"]
    client.runs.wait(tid, graph, command=approve(iid))
    assert client.threads.get(tid)["status"] == "idle"
    assert deployment.lines("executed", to) == 1
    assert [m["content"] for m in tool_messages(client, tid)] == [f"sent 9000 to {to}"]
    with open_store(deployment.store_url) as store:
        rec = store.get_request(rid)
        assert rec is not None and rec.status == "approved"
        assert store.get_execution(rid).state == "done"  # type: ignore[union-attr]


def test_approval_gate_graph_resumes(deployment: Deployment) -> None:
    client = deployment.client()
    tid = client.threads.create()["thread_id"]
    client.runs.wait(tid, "payout", input={"payout": {"amount": 5}})
    (intr,) = [i for g in client.threads.get(tid)["interrupts"].values() for i in g]
    out = client.runs.wait(tid, "payout", command=approve(intr["id"]))
    assert out["result"] == "paid {'amount': 5}"


TRIALS = int(os.environ.get("HITL_SERVER_TRIALS", "1"))


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("strategy", ["reject", "enqueue", "interrupt", "rollback"])
def test_racing_resume_under_each_multitask_strategy_executes_once(
    deployment: Deployment, strategy: str, trial: int
) -> None:
    """HITL_SERVER_TRIALS=N repeats each race N times (1 in CI)."""
    client = deployment.client()
    to = _who()
    tid, iid, rid = pause(client, to)
    first = client.runs.create(tid, "bank", command=approve(iid))
    wait_for(lambda: deployment.lines("started", to) == 1)  # the tool is running now
    second: dict[str, Any] | None = None
    try:
        second = client.runs.create(
            tid, "bank", command=approve(iid), multitask_strategy=strategy
        )
    except httpx.HTTPStatusError as exc:
        assert strategy == "reject" and exc.response.status_code == 409
    else:
        assert strategy != "reject"
    for run in (first, second):
        if run is not None:
            try:
                client.runs.join(tid, run["run_id"])
            except httpx.HTTPStatusError as exc:  # a rolled-back run is deleted
                assert strategy == "rollback" and exc.response.status_code == 404
    wait_idle(client, tid)
    wait_for(lambda: deployment.lines("executed", to) >= 1)
    assert deployment.lines("started", to) == 1
    assert deployment.lines("executed", to) == 1
    tool_msgs = tool_messages(client, tid)
    assert [m["content"] for m in tool_msgs] == [f"sent 9000 to {to}"]
    assert client.threads.get(tid)["status"] == "idle"
    runs = {r["run_id"]: r["status"] for r in client.runs.list(tid)}
    assert all(s in TERMINAL for s in runs.values()), runs
    with open_store(deployment.store_url) as store:
        assert store.get_execution(rid).state == "done"  # type: ignore[union-attr]


def test_bad_resume_leaves_the_request_findable_and_decidable(deployment: Deployment) -> None:
    client = deployment.client()
    to = _who()
    tid, iid, rid = pause(client, to)
    run = client.runs.create(tid, "bank", command={"resume": {iid: {"type": "bogus"}}})
    client.runs.join(tid, run["run_id"])
    assert client.runs.get(tid, run["run_id"])["status"] == "error"
    thread = client.threads.get(tid)
    interrupted = {t["thread_id"] for t in client.threads.search(status="interrupted", limit=1000)}
    # the server's view: the thread's status is "error", so a search by status misses it
    # although its interrupt is still pending (the bad value was not saved)
    assert thread["status"] == "error" and tid not in interrupted
    state = client.threads.get_state(tid)
    assert [i["id"] for t in state["tasks"] for i in t["interrupts"]] == [iid]
    # our store's index finds it: still pending
    with open_store(deployment.store_url) as store:
        pending = {r.request_id for r in store.list_requests(RequestFilter(), limit=1000)}
        assert rid in pending
    client.runs.wait(tid, "bank", command=approve(iid))
    assert client.threads.get(tid)["status"] == "idle"
    assert deployment.lines("executed", to) == 1
