"""Shared pieces of the fault suite (tests/test_faults_*.py): real stores and savers per
backend, a store wrapper that fails once, and a subprocess that dies at an injected point."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from inbox_graphs import FileLedger, build_app, interrupted, open_checkpointer, transfer

from hitl_langgraph import open_store
from hitl_langgraph.store.base import ApprovalStore

TESTS = Path(__file__).parent
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Stack:
    """A real store + checkpointer of one backend, and how a subprocess reopens them."""

    backend: str
    store_url: str
    cp_kind: str
    cp_where: str
    store: ApprovalStore
    saver: Any
    ledger: FileLedger

    def app(self, store: Any = None, first: Any = None, **kw: Any) -> Any:
        return build_app(store or self.store, self.saver, self.ledger, first, **kw)

    def paused(self, store: Any = None, **kw: Any) -> tuple[Any, dict[str, Any], Any, str]:
        """A graph paused on a transfer_funds request: ``(app, config, interrupt, rid)``."""
        app = self.app(store, transfer(), **kw)
        cfg, intr, rid = interrupted(app)
        return app, cfg, intr, rid


@pytest.fixture(params=BACKENDS, name="stack")
def stack_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    backend: str = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'hitl.db'}"
        kind, where = "sqlite", str(tmp_path / "checkpoints.db")
    else:
        url = request.getfixturevalue("postgres_schema_url")
        kind, where = "postgres", url
    store = open_store(url)
    saver = open_checkpointer(kind, where)
    try:
        yield Stack(backend, url, kind, where, store, saver, FileLedger(tmp_path / "ledger"))
    finally:
        store.close()
        conn = getattr(saver, "conn", None)
        if conn is not None:
            conn.close()


class FailingStore:
    """A real store whose next ``update_request`` raises ``fail`` (once), then works."""

    def __init__(self, inner: ApprovalStore) -> None:
        self.inner = inner
        self.fail: BaseException | None = None
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_request(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            self.failed += 1
            raise exc
        return self.inner.update_request(*args, **kwargs)


_DYING_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, {tests!r})
from inbox_graphs import FileLedger, build_app, open_checkpointer
from langgraph.types import Command
from hitl_langgraph import open_store

spec = json.loads(sys.argv[1])
store = open_store(spec["store_url"])

class Dying:
    def __init__(self, inner):
        self.inner = inner
    def __getattr__(self, name):
        return getattr(self.inner, name)
    def update_request(self, *a, **kw):
        if spec["when"] == "before_store":
            os._exit(9)
        out = self.inner.update_request(*a, **kw)
        if spec["when"] == "after_store":
            os._exit(9)  # the decision is recorded; LangGraph has not stored the resume value
        return out

app = build_app(Dying(store), open_checkpointer(spec["cp_kind"], spec["cp_where"]),
                FileLedger(spec["ledger"]))
app.invoke(Command(resume={{spec["iid"]: spec["decision"]}}), spec["config"])
os._exit(0)
"""


def resume_and_die(
    st: Stack, config: dict[str, Any], iid: str, decision: dict[str, Any], when: str
) -> int:
    """Resume in a fresh process that dies (``os._exit``) at ``when``; its exit code."""
    spec = {
        "store_url": st.store_url,
        "cp_kind": st.cp_kind,
        "cp_where": st.cp_where,
        "ledger": str(st.ledger.path),
        "iid": iid,
        "decision": decision,
        "config": config,
        "when": when,
    }
    script = _DYING_SCRIPT.format(tests=str(TESTS))
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(spec)], capture_output=True, timeout=120
    )
    return proc.returncode
