"""``deployment``: the example deployment (examples/deployment) on a real ``langgraph dev``.

The server is started per test module and backend (SQLite store, Postgres store) with
``--no-browser --no-reload`` on a free port, CLI analytics and LangSmith tracing off,
and without ``--allow-blocking`` (so any blocking call on its event loop fails the run).
The transfer tool takes ``HITL_TOOL_DELAY`` = 2 s and appends every start and execution
to a ledger file, which is how the tests count executions.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "deployment"
TOOL_DELAY = 2.0


@dataclass
class Deployment:
    url: str
    store_url: str
    ledger: Path
    dir: Path
    log: Path

    def lines(self, kind: str, to: str) -> int:
        """How many ledger lines say ``kind`` (started / executed) for recipient ``to``."""
        if not self.ledger.exists():
            return 0
        return sum(
            1
            for line in self.ledger.read_text().splitlines()
            if line.startswith(kind + " ") and line.endswith(" " + to)
        )

    def client(self, **kw: Any) -> Any:
        from langgraph_sdk import get_sync_client

        return get_sync_client(url=self.url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"langgraph dev exited:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"langgraph dev not ready after {timeout}s:\n{log.read_text()[-4000:]}")


def start_server(
    workdir: Path,
    store_url: str,
    *,
    config: str = "langgraph.json",
    extra_env: dict[str, str] | None = None,
) -> Iterator[Deployment]:
    """Copy the example into ``workdir``, run ``langgraph dev`` there; stop it after."""
    shutil.copytree(EXAMPLE, workdir, ignore=shutil.ignore_patterns(".env", ".langgraph_api"))
    ledger = workdir / "ledger.txt"
    log = workdir / "server.log"
    port = free_port()
    env = {
        **os.environ,
        "HITL_STORE_URL": store_url,
        "HITL_TOOL_DELAY": str(TOOL_DELAY),
        "HITL_LEDGER": str(ledger),
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        **(extra_env or {}),
    }
    (workdir / ".env").write_text("")
    cli = Path(sys.executable).with_name("langgraph")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(cli), "dev", "--no-browser", "--no-reload", "--port", str(port),
             "--config", config],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log, timeout=120)
        yield Deployment(url=url, store_url=store_url, ledger=ledger, dir=workdir, log=log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_url: str) -> Iterator[str]:
    """A schema shared by one test module's server, dropped after it."""
    import psycopg
    from fixtures_store import with_search_path

    schema = f"hitl_srv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(postgres_url, schema)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("deploy") / "app"
    if request.param == "sqlite":
        store_url = f"sqlite:///{work.parent / 'hitl.db'}"
    else:
        store_url = request.getfixturevalue("module_postgres_url")
    yield from start_server(work, store_url)


TOKENS = {
    "tok-ann": {"identity": "ann", "roles": ["finance"]},
    "tok-bob": {"identity": "bob", "roles": ["support"]},
    "tok-carl": {"identity": "carl", "roles": []},
}


@pytest.fixture(scope="module")
def auth_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The example with custom auth (demo tokens ``tok-ann`` finance, ``tok-bob``
    support, ``tok-carl`` no role) and the inbox's HTTP route; SQLite store."""
    import json

    work = tmp_path_factory.mktemp("deploy_auth") / "app"
    yield from start_server(
        work,
        f"sqlite:///{work.parent / 'hitl.db'}",
        config="langgraph.auth.json",
        extra_env={"HITL_EXAMPLE_TOKENS": json.dumps(TOKENS)},
    )
