"""The inbox and the CLI against the deployment (``--deployment URL --graph-id ID``):
list pending across it, decide under the usual rules, resume through the server's API
exactly once however many reviewers race."""

from __future__ import annotations

import io
import json
import threading
import uuid

import pytest
from fixtures_server import Deployment
from test_server import pause, tool_messages

from hitl_langgraph import AlreadyDecided, open_store
from hitl_langgraph.cli import main
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.server.remote import remote_graph

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

REVIEWERS = 8


def test_eight_racing_reviewers_resume_through_the_server_once(deployment: Deployment) -> None:
    client = deployment.client()
    to = "acct" + uuid.uuid4().hex[:10]
    tid, _iid, rid = pause(client, to)
    barrier = threading.Barrier(REVIEWERS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def review(i: int) -> None:
        with open_store(deployment.store_url) as store:
            inbox = Inbox(store, remote_graph(deployment.url, "bank"))
            barrier.wait()
            try:
                res = inbox.approve(rid, reviewer=Reviewer(f"r{i}", roles={"finance"}))
                out = res.outcome
            except AlreadyDecided as exc:
                out = f"AlreadyDecided:{exc.decided_by}"
            with lock:
                outcomes.append(out)

    threads = [threading.Thread(target=review, args=(i,)) for i in range(REVIEWERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert outcomes.count("resumed") == 1, outcomes
    with open_store(deployment.store_url) as store:
        rec = store.get_request(rid)
        assert rec is not None and rec.status == "approved"
        assert outcomes.count(f"AlreadyDecided:{rec.decided_by}") == REVIEWERS - 1
        assert store.verify_audit().ok
    assert deployment.lines("executed", to) == 1
    assert [m["content"] for m in tool_messages(client, tid)] == [f"sent 9000 to {to}"]
    assert client.threads.get(tid)["status"] == "idle"


def _cli(deployment: Deployment, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "--store",
            deployment.store_url,
            "--deployment",
            deployment.url,
            "--graph-id",
            "bank",
            *args,
        ],
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_cli_lists_and_decides_against_the_deployment(deployment: Deployment) -> None:
    client = deployment.client()
    to = "acct" + uuid.uuid4().hex[:10]
    tid, _iid, rid = pause(client, to)
    code, out, _ = _cli(deployment, "pending", "--thread", tid, "--json")
    assert code == 0
    assert [r["request_id"] for r in json.loads(out)["items"]] == [rid]
    # authority is checked as usual: finance must approve
    code, _, err = _cli(deployment, "approve", rid, "--as", "bob", "--role", "support")
    assert code != 0 and "finance" in err
    code, out, err = _cli(
        deployment, "approve", rid, "--as", "ann", "--role", "finance", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["outcome"] == "resumed"
    assert deployment.lines("executed", to) == 1
    assert client.threads.get(tid)["status"] == "idle"


