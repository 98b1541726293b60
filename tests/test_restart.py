"""A paused graph survives a new Python process and resumes to exactly one execution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bank_agent.py"


def run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(("decision", "executions"), [("approve", 1), ("reject", 0)])
def test_pause_survives_restart(tmp_path: Path, decision: str, executions: int) -> None:
    out = run("start", "--dir", str(tmp_path), "--thread", "t1")
    assert "PAUSED" in out and "transfer_funds" in out
    assert not (tmp_path / "ledger.jsonl").exists()
    status = run("status", "--dir", str(tmp_path))
    assert "pending" in status
    out = run("decide", "--dir", str(tmp_path), "--thread", "t1", "--decision", decision)
    assert "DONE" in out
    ledger = tmp_path / "ledger.jsonl"
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    assert len(lines) == executions
    # deciding again in yet another process changes nothing
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "decide", "--dir", str(tmp_path), "--thread", "t1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "nothing pending" in proc.stderr
    lines = ledger.read_text().splitlines() if ledger.exists() else []
    assert len(lines) == executions
