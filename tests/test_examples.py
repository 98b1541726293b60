"""Every script in examples/ runs as documented, in an empty working directory it leaves
empty (examples write to a temp or named data folder, never the cwd unasked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hitl_langgraph.tracing._server import PhoenixServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(
    name: str, cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stderr[-3000:]}"
    assert list(cwd.iterdir()) == [], f"{name} wrote into the working directory"
    return proc.stdout


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def test_examples_are_numbered_and_short() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
    assert [n[:2] for n in names] == ["01", "02", "03", "04", "05", "06", "06", "07", "08", "09"]
    for name in names:
        assert len((EXAMPLES / name).read_text().splitlines()) <= 110, name


def test_01_no_approvals_runs_everything(cwd: Path) -> None:
    assert "Done: sent 9000 to bob" in run("01_no_approvals.py", cwd)


def test_02_policy_routes(cwd: Path) -> None:
    out = run("02_policy.py", cwd)
    routes = [line.split()[2] for line in out.splitlines()[1:]]
    assert routes == ["auto", "review", "auto", "approve", "deny", "approve"]


def test_03_gated_tool_node_waits_then_runs_once(cwd: Path) -> None:
    out = run("03_gated_tool_node.py", cwd)
    assert "waiting: transfer_funds" in out and "ran so far: []" in out
    assert "ran after approval: [('lookup_account', 'bob'), ('transfer_funds', 9000)]" in out


def test_04_approval_gate_sends_the_edited_payment(cwd: Path) -> None:
    out = run("04_approval_gate.py", cwd)
    assert "waiting: {'amount': 12000, 'to': 'acme'}" in out and "sent 8000 to acme" in out


def test_05_middleware_with_create_agent(cwd: Path) -> None:
    out = run("05_middleware.py", cwd)
    assert "waiting: ['transfer_funds']" in out
    assert "Done: bob: balance 12,000; sent 9000 to bob" in out


def test_06_quorum_then_the_real_cli_resumes_with_the_graph_module(
    cwd: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {"HITL_EXAMPLE_DIR": str(data)}
    out = run("06_inbox_quorum.py", cwd, env=env)
    assert "refused:" in out and "separation of duties" in out and "alice: partial" in out
    command = next(line.split() for line in out.splitlines() if "--graph 06_graph:build" in line)
    assert command[0] == "hitl"
    cli = [sys.executable, "-m", "hitl_langgraph.cli"]
    cli_env = {**os.environ, **env, "PYTHONPATH": str(EXAMPLES)}
    listed = subprocess.run(
        [*cli, "--store", command[2], "--json", "pending"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["items"]) == 1
    done = subprocess.run(
        [*cli, *command[1:]], cwd=cwd, capture_output=True, text=True, env=cli_env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout
    assert (data / "ledger.jsonl").read_text().splitlines() == ['{"amount": 9000, "to": "bob"}']
    assert list(cwd.iterdir()) == []


@pytest.mark.postgres
def test_07_postgres_one_process_pauses_another_applies(
    cwd: Path, postgres_schema_url: str
) -> None:
    out = run("07_postgres_workers.py", cwd, env={"HITL_POSTGRES_URL": postgres_schema_url})
    main_pid = next(line.split()[1] for line in out.splitlines() if line.startswith("main "))
    assert "main: alice's approval recorded" in out and "applied True" in out
    worker = next(line for line in out.splitlines() if line.startswith("worker: Done"))
    assert "sent 9000 to bob (by worker pid" in worker and main_pid.strip(":") not in worker


@pytest.mark.phoenix
def test_08_phoenix_review(cwd: Path, phoenix_server: PhoenixServer) -> None:
    out = run("08_phoenix_review.py", cwd, phoenix_server.url, timeout=180)
    assert out.count("to review: span") == 3
    assert f"{phoenix_server.url}/projects/" in out
    assert "collected 1 annotation(s); sla: 2 pending" in out


def test_09_feedback_changes_the_next_prompt(cwd: Path) -> None:
    out = run("09_feedback.py", cwd)
    before, after = out.split("active guidance:")
    assert "Refunds over 500 need a manager." not in before
    assert "Reviewer guidance" in after and "Refunds over 500 need a manager." in after


def test_quickstart_and_bank_agent_leave_the_cwd_alone(cwd: Path, tmp_path: Path) -> None:
    assert "Done: sent 9000 to bob" in run("quickstart.py", cwd)
    d = str(tmp_path / "bank")
    assert "PAUSED" in run("bank_agent.py", cwd, "start", "--dir", d, "--thread", "t1")
    assert "DONE" in run("bank_agent.py", cwd, "decide", "--dir", d, "--thread", "t1")
