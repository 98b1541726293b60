"""The ``hitl`` CLI's rough edges: bad input is a usage error, a closed pipe is quiet,
a plain resume is named, an edit gives only what changes, errors are one sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import interrupted
from langgraph.types import Command
from test_cli import TESTS, Env

from hitl_langgraph import RequestFilter


@pytest.fixture
def env(tmp_path: Path) -> Any:
    e = Env(tmp_path)
    yield e
    e.store.close()


def test_unknown_route_is_a_usage_error_listing_the_valid_ones(env: Env) -> None:
    p = env.run("pending", "--route", "banana")
    assert p.returncode == 2
    assert "invalid choice: 'banana'" in p.stderr
    for route in ("auto", "review", "approve", "deny"):
        assert route in p.stderr
    assert p.stdout == ""


def test_a_closed_pipe_ends_quietly(env: Env) -> None:
    for _ in range(3):
        interrupted(env.app)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hitl_langgraph.cli", "--json", "pending"],
        cwd=TESTS,
        env=env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the CLI writes (like `| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert err == ""


def test_a_plain_resume_shows_as_unidentified(env: Env) -> None:
    cfg, intr, rid = interrupted(env.app)
    env.app.invoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
    code, out, _ = env.call("show", rid)
    assert code == 0
    assert "approved (by (unidentified resume) at" in out and "None" not in out.split("\n")[1]


def test_edit_gives_only_the_args_that_change(env: Env) -> None:
    _, _, rid = interrupted(env.app)
    code, out, err = env.call(
        "--json", "edit", rid, "--as", "alice", "--role", "finance", "--args", '{"amount": 500}'
    )
    assert code == 0, err
    rec = env.store.get_request(rid)
    assert rec is not None and rec.status == "edited"
    assert rec.decision is not None
    assert rec.decision["edited_action"]["args"] == {"amount": 500, "to": "bob"}


def test_an_edit_that_does_not_fit_the_schema_is_refused_in_one_sentence(env: Env) -> None:
    _, _, rid = interrupted(env.app)
    p = env.run(
        "--graph",
        "tests_graph_module:app",
        "edit",
        rid,
        "--as",
        "alice",
        "--role",
        "finance",
        "--args",
        '{"amount": "lots"}',
    )
    assert p.returncode == 3, p.stderr
    line = p.stderr.strip()
    assert "\n" not in line and "pydantic.dev" not in line and "http" not in line
    assert line.startswith("hitl: refused: the edited args") and "amount" in line
    still = env.store.list_requests(RequestFilter(thread_id=env.store.get_request(rid).thread_id))
    assert [r.request_id for r in still] == [rid]  # nothing recorded, still pending
    ran = env.ledger.path.read_text() if env.ledger.path.exists() else ""
    assert ran == ""  # the transfer did not run
