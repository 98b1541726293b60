"""The ``hitl`` CLI: in a subprocess (``python -m hitl_langgraph.cli``) against a SQLite
store prepared here, and in-process through ``main(argv)`` for the remaining paths."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import FileLedger, build_app, interrupted, open_checkpointer, transfer

from hitl_langgraph import open_store
from hitl_langgraph.cli import main
from hitl_langgraph.inbox import Inbox, Reviewer

TESTS = Path(__file__).parent


class Env:
    """A store, checkpointer and ledger on disk, with a few interrupted threads."""

    def __init__(self, tmp: Path) -> None:
        self.url = f"sqlite:///{tmp / 'hitl.db'}"
        self.checkpoints = str(tmp / "checkpoints.db")
        self.ledger = FileLedger(tmp / "ledger.jsonl")
        self.store = open_store(self.url)
        self.app = build_app(
            self.store, open_checkpointer("sqlite", self.checkpoints), self.ledger, transfer()
        )
        self.env = {
            **os.environ,
            "HITL_STORE_URL": self.url,
            "HITL_TEST_CHECKPOINTS": self.checkpoints,
            "HITL_TEST_LEDGER": str(self.ledger.path),
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        }
        self.env.pop("HITL_GRAPH", None)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hitl_langgraph.cli", *args],
            cwd=TESTS,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def call(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(["--store", self.url, *args], out=out, err=err)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def env(tmp_path: Path) -> Any:
    e = Env(tmp_path)
    yield e
    e.store.close()


def test_list_show_decide_and_apply_in_subprocesses(env: Env) -> None:
    runs = [interrupted(env.app) for _ in range(2)]
    (cfg1, _, rid1), (cfg2, _, rid2) = runs

    p = env.run("pending")
    assert p.returncode == 0, p.stderr
    header, *rows = p.stdout.splitlines()
    assert header.split()[:4] == ["ID", "AGE", "TOOL", "RISK"]
    assert [r.split()[0] for r in rows] == [rid1, rid2]
    assert "transfer_funds" in rows[0] and "finance" in rows[0] and "amount=9000" in rows[0]

    code, out, _ = env.call("--json", "show", rid1)
    shown = json.loads(out)
    assert shown["request"]["digest"].startswith("sha256:")
    assert [e["event"] for e in shown["audit"]] == ["requested"]

    p = env.run("approve", rid1, "--as", "eve", "--role", "ops")
    assert p.returncode == 3 and "refused" in p.stderr and "finance" in p.stderr

    # without --graph: recorded for a worker; the thread still waits
    p = env.run("approve", rid1, "--as", "alice", "--role", "finance", "--reason", "ok")
    assert p.returncode == 0 and "a worker will resume" in p.stdout, p.stderr
    assert env.ledger.entries == [] and env.app.get_state(cfg1).interrupts

    p = env.run("--graph", "tests_graph_module:app", "--json", "apply")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["applied"] == [rid1]
    assert env.ledger.count("transfer_funds") == 1 and not env.app.get_state(cfg1).interrupts

    # with --graph: recorded and resumed in one go
    p = env.run(
        "reject",
        rid2,
        "--as",
        "bob",
        "--role",
        "finance",
        "--reason",
        "wrong payee",
        "--graph",
        "tests_graph_module:app",
    )
    assert p.returncode == 0 and "resumed thread" in p.stdout, p.stderr
    assert env.ledger.count("transfer_funds") == 1 and not env.app.get_state(cfg2).interrupts

    p = env.run("--json", "approve", rid2, "--as", "alice", "--role", "finance")
    assert p.returncode == 3
    body = json.loads(p.stdout)
    assert body["error"] == "AlreadyDecided" and body["decided_by"] == "bob"

    code, out, _ = env.call("audit", "verify")
    assert code == 0 and "audit trail OK" in out


def test_exit_codes(env: Env, monkeypatch: Any) -> None:
    _, _, rid = interrupted(env.app)
    assert env.call("show", "req_nope")[0] == 1
    code, _, err = env.call("approve", rid, "--as", "alice", "--role", "finance", "--digest", "x")
    assert code == 3 and "different action" in err
    code, _, err = env.call("edit", rid, "--as", "alice", "--role", "finance", "--args", "[1]")
    assert code == 2 and "JSON object" in err
    code, _, err = env.call("--graph", "no_such_module:app", "approve", rid, "--as", "a")
    assert code == 2 and "cannot import" in err
    code, _, err = env.call("--graph", "tests_graph_module", "apply")
    assert code == 2 and "module:attribute" in err
    code, _, err = env.call("apply")
    assert code == 2 and "needs --graph" in err
    with pytest.raises(SystemExit) as exc:
        main(["pending", "--limit", "lots"])
    assert exc.value.code == 2
    monkeypatch.delenv("HITL_STORE_URL", raising=False)
    err = io.StringIO()
    assert main(["pending"], out=io.StringIO(), err=err) == 2 and "HITL_STORE_URL" in err.getvalue()
    assert env.store.get_request(rid).status == "pending"  # type: ignore[union-attr]


def test_edit_respond_pending_filters_and_pages(env: Env, monkeypatch: Any) -> None:
    rids = [interrupted(env.app)[2] for _ in range(3)]
    code, out, _ = env.call("--json", "pending", "--limit", "2")
    page = json.loads(out)
    assert code == 0 and [r["request_id"] for r in page["items"]] == rids[:2]
    code, out, _ = env.call("--json", "pending", "--cursor", page["next_cursor"])
    assert [r["request_id"] for r in json.loads(out)["items"]] == rids[2:]
    assert "no pending requests" in env.call("pending", "--role", "ops")[1]
    assert "no pending requests" in env.call("pending", "--overdue")[1]

    monkeypatch.chdir(TESTS)
    for k in ("HITL_TEST_CHECKPOINTS", "HITL_TEST_LEDGER"):
        monkeypatch.setenv(k, env.env[k])
    monkeypatch.setenv("HITL_STORE_URL", env.url)
    monkeypatch.delitem(sys.modules, "tests_graph_module", raising=False)
    g = ["--graph", "tests_graph_module:app"]
    code, out, err = env.call(
        *g,
        "edit",
        rids[0],
        "--as",
        "alice",
        "--role",
        "finance",
        "--args",
        '{"amount": 100, "to": "bob"}',
    )
    assert code == 0 and "resumed" in out, err
    code, out, err = env.call(
        *g, "respond", rids[1], "--as", "alice", "--role", "finance", "--message", "done by hand"
    )
    assert code == 0 and "resumed" in out, err
    assert env.ledger.entries == [("transfer_funds", {"amount": 100, "to": "bob"})]
    code, out, _ = env.call("show", rids[0])
    assert "status      edited (by alice" in out and "audit trail" in out
    code, out, _ = env.call("--json", "sweep")
    assert code == 0 and json.loads(out) == {"expired": [], "escalated": []}
    code, out, _ = env.call(*g, "reconcile", "--grace", "0")
    assert code == 0 and "nothing to repair" in out


def test_audit_export_and_tamper_detection(env: Env, tmp_path: Path) -> None:
    _, _, rid = interrupted(env.app)
    Inbox(env.store, env.app).approve(rid, reviewer=Reviewer("alice", {"finance"}), reason="ok")
    out_csv = tmp_path / "evidence.csv"
    code, out, _ = env.call("audit", "export", "--format", "csv", "-o", str(out_csv))
    assert code == 0 and "exported 3 audit events" in out
    rows = list(csv.DictReader(out_csv.open()))
    decided = next(r for r in rows if r["event"] == "decided")
    assert decided["reviewer"] == "alice" and decided["reviewer_roles"] == "finance"
    assert decided["reason"] == "ok" and decided["decision"] == "approve"
    assert decided["tool"] == "transfer_funds" and decided["args_digest"].startswith("sha256:")
    assert decided["requester"] == "carol" and decided["policy_version"]
    code, jsonl, _ = env.call("audit", "export", "--format", "jsonl")
    path = tmp_path / "evidence.jsonl"
    path.write_text(jsonl)
    assert env.call("audit", "verify", "--file", str(path))[0] == 0
    lines = jsonl.splitlines()
    forged = json.loads(lines[1])
    forged["data"]["reviewer_roles"] = ["cfo"]
    path.write_text("\n".join([lines[0], json.dumps(forged), *lines[2:]]))
    code, out, _ = env.call("audit", "verify", "--file", str(path))
    assert code == 1 and "seq 2: hash mismatch" in out


def test_review_commands_are_mounted(env: Env) -> None:
    code, out, err = env.call("review", "pending", "--project", "demo")
    assert code == 0, err
    assert "pending" in out
    code, _, err = env.call("review", "pending")  # no project named: a usage error
    assert code == 2 and "--project" in err


def test_sweep_escalates_with_steps_from_the_command_line(env: Env) -> None:
    _, _, rid = interrupted(env.app)
    assert "no pending requests" in env.call("pending", "--role", "lead")[1]
    code, out, err = env.call(
        "--json", "sweep", "--escalate", "0s:lead,cfo", "--escalate", "9d:ceo"
    )
    assert code == 0, err
    (esc,) = json.loads(out)["escalated"]
    assert esc["request_id"] == rid and esc["approver_roles"] == ["cfo", "finance", "lead"]
    assert rid in env.call("pending", "--role", "lead")[1]
    assert env.call("sweep", "--escalate", "soon:lead")[0] == 2
