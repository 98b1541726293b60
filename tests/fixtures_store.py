"""Store fixtures: one set-up store (or URL) per backend, isolated per test.

PostgreSQL tests run against ``HITL_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and are skipped when it is unreachable
(failed when ``HITL_REQUIRE`` names ``postgres``, as in CI; see fixtures_require.py).
Each test gets a fresh schema, selected through ``options=-csearch_path=<schema>``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fixtures_require import require

from hitl_langgraph.store import ApprovalStore, MemoryStore

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def with_search_path(url: str, schema: str) -> str:
    """``url`` (a libpq URI or key=value conninfo) with ``search_path`` set to ``schema``."""
    if "://" not in url:
        return f"{url} options='-csearch_path={schema}'"
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server URL; skips the test (fails under ``HITL_REQUIRE=postgres``) when no
    PostgreSQL answers there."""
    url = os.environ.get("HITL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    problem = None
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # ImportError or any connection failure
        problem = f"no PostgreSQL reachable at {url} (set HITL_TEST_POSTGRES_URL): {exc}"
    if problem is not None:
        require("postgres", problem)
    return url


@pytest.fixture
def postgres_schema_url(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema, dropped after the test."""
    import psycopg

    if request.node.get_closest_marker("postgres") is None:
        pytest.fail(
            f"{request.node.nodeid} uses PostgreSQL without the `postgres` marker; add it",
            pytrace=False,
        )

    schema = f"hitl_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(postgres_url, schema)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _url_for(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'hitl.db'}"
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_schema_url")
        return url
    raise ValueError(f"unknown store backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for ``open_store`` (the store is not opened; memory:// is per process)."""
    return _url_for(request.param, request, tmp_path)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApprovalStore]:
    """A set-up, empty store of each backend; closed after the test."""
    backend: str = request.param
    st: ApprovalStore
    if backend == "memory":
        st = MemoryStore()
    elif backend == "sqlite":
        from hitl_langgraph.store.sqlite import SqliteStore

        st = SqliteStore(tmp_path / "hitl.db")
    else:
        from hitl_langgraph.store.postgres import PostgresStore

        st = PostgresStore(_url_for(backend, request, tmp_path))
    st.setup()
    try:
        yield st
    finally:
        st.close()
