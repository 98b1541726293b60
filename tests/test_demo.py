"""`hitl demo` end to end, against a real `phoenix serve` (its own, or the session's)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from hitl_langgraph import RequestFilter, open_store
from hitl_langgraph.tracing._server import PhoenixServer

pytestmark = pytest.mark.phoenix

HITL = [sys.executable, "-m", "hitl_langgraph.cli"]


def hitl(
    *args: str, cwd: Path, stdin: str = "", timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HITL, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def test_demo_auto_starts_phoenix_and_prints_the_summary(tmp_path: Path) -> None:
    """The README's main job: its own Phoenix in the data folder, unattended, JSON summary."""
    from hitl_langgraph.tracing._server import phoenix_command

    if phoenix_command() is None:
        pytest.skip(
            "the Phoenix server is not installed: pip install 'hitl-langgraph[phoenix-server]'"
        )
    proc = hitl("demo", "--reviewer", "auto", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout)
    data = tmp_path / "hitl-demo"  # the default data folder, under the working directory
    assert Path(s["data"]) == data.resolve() and (data / "phoenix").is_dir()
    assert s["routes"] == {"auto": 4, "review": 3, "approve": 3, "deny": 1}
    # 3 lookups + 4 refunds (3 + the follow-up) + the small transfer, the approved one and
    # the edited one; the rejected transfer and the denied close_account never ran
    assert s["ran"] == {"lookup_account": 3, "refund": 4, "transfer_funds": 3}
    assert [w["decision"] for w in s["waited"]] == ["approve", "edit", "reject"]
    assert s["waited"][1]["edited_args"] == {"amount": 8000, "to": "acme-supplies"}
    assert all(w["waited_s"] is not None for w in s["waited"])
    assert [d["tool"] for d in s["denied"]] == ["close_account"]
    assert s["sampled"] == 3 and s["verdict"]["label"] == "incorrect"
    assert s["collected"] >= 1
    assert "look up the account and confirm the order" in s["next_prompt"]
    assert s["guidance_active"] and s["audit_ok"] and s["audit_events"] > 0
    assert s["review_url"].startswith(s["phoenix_url"] + "/projects/")
    # the span list opens filtered to what awaits review (Phoenix's own URL parameter)
    assert "spans?spanFilterCondition=" in s["review_url"]
    from hitl_langgraph.demo.run import REVIEW_FILTER
    from hitl_langgraph.review.queue import AWAITING_REVIEW_FILTER

    assert s["review_filter"] == REVIEW_FILTER == AWAITING_REVIEW_FILTER
    assert s["next_command"].startswith("hitl --store sqlite:///hitl-demo/hitl.db pending")
    # Phoenix was stopped at the end (no --keep-phoenix)
    with pytest.raises(OSError):
        urllib.request.urlopen(s["phoenix_url"] + "/healthz", timeout=2)
    # the next command works as printed: the transfer left waiting is listed
    out = hitl("--store", "sqlite:///hitl-demo/hitl.db", "--json", "pending", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = [r["request_id"] for r in json.loads(out.stdout)["items"]]
    assert s["left_pending"] in ids


def test_demo_asks_at_the_terminal_then_reruns_and_resets(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_project: str
) -> None:
    data = tmp_path / "demo-data"
    common = [
        "--data",
        str(data),
        "--phoenix-url",
        phoenix_server.url,
        "--project",
        phoenix_project,
    ]
    answers = "\n".join(["a", "fine", "e", '{"amount": 5000}', "halved", "r", "unknown payee"])
    proc = hitl("demo", *common, cwd=tmp_path, stdin=answers + "\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "Pending approvals" in text and "[a]pprove, [e]dit or [r]eject?" in text
    assert "the arguments that change" in text
    assert "approve by you" in text and "edit by you" in text and "reject by you" in text
    assert "audit trail: verified OK" in text
    assert f"review list in Phoenix: {phoenix_server.url}/projects/" in text
    assert "look up the account and confirm the order" in text
    assert "next, try: hitl --store sqlite:///demo-data/hitl.db pending" in text
    store = open_store(f"sqlite:///{data / 'hitl.db'}")
    try:
        edited = [
            r
            for r in store.list_requests(RequestFilter(status=None), limit=100)
            if r.decision and r.decision.get("type") == "edit"
        ]
        assert len(edited) == 1 and edited[0].decided_by == "you"
        assert '"amount": 5000' in json.dumps(edited[0].decision)  # merged over the pending args
        assert '"to": "acme-supplies"' in json.dumps(edited[0].decision)
    finally:
        store.close()

    # a second run reuses the folder with new thread ids ...
    again = hitl("demo", "--reviewer", "auto", "--json", *common, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert second["routes"] == {"auto": 4, "review": 3, "approve": 3, "deny": 1}
    ledger = (data / "ledger.jsonl").read_text().splitlines()
    assert len({json.loads(line)["run"] for line in ledger}) == 2
    # ... and --reset starts from an empty folder
    reset = hitl("demo", "--reviewer", "auto", "--json", "--reset", *common, cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr[-3000:]
    ledger = (data / "ledger.jsonl").read_text().splitlines()
    assert {json.loads(line)["run"] for line in ledger} == {json.loads(reset.stdout)["run_id"]}


def test_demo_without_answers_on_stdin_says_what_to_do(
    tmp_path: Path, phoenix_server: PhoenixServer, phoenix_project: str
) -> None:
    proc = hitl(
        "demo",
        "--data",
        str(tmp_path / "d"),
        "--phoenix-url",
        phoenix_server.url,
        "--project",
        phoenix_project,
        cwd=tmp_path,
        stdin="",
    )
    assert proc.returncode == 1
    assert "no answer on stdin (use --reviewer auto)" in proc.stderr
