"""Phoenix fixtures: a real ``phoenix serve`` for the whole session, one project per test.

``phoenix_server`` is a :class:`hitl_langgraph.tracing._server.PhoenixServer`:

* ``.url`` (``http://127.0.0.1:PORT``) and ``.otlp_endpoint`` (``url + "/v1/traces"``);
* ``.stop()`` / ``.start()``: kill and restart Phoenix on the same port and working
  directory (same database), for collector-outage tests. ``start()`` is a no-op while
  running, so call it in a ``finally`` after a ``stop()``;
* ``.pause()`` / ``.resume()``: freeze the server (SIGSTOP/SIGCONT), the "hung
  collector" outage where connections are accepted and never answered;
* ``.spans(project)`` / ``.wait_for_spans(project, n)``: read spans back over REST
  (Phoenix answers 404 until a project's first span arrives; both treat that as "none
  yet");
* ``.log_tail()``: the end of the server log.

``tracing`` is ``setup_tracing(phoenix_project, phoenix_server.url, batch=False)``, shut
down (and LangChain uninstrumented) after the test.

The first start takes 15-30 s on a busy 2-core box (imports, migrations), a restart
10-25 s. Phoenix inserts spans 100 per transaction: on such a box that is ~100 spans/s,
so allow ``wait_for_spans`` about 1 s per 100 spans beyond the first few hundred.
Tests are skipped when the Phoenix server package is not installed (failed when
``HITL_REQUIRE`` names ``phoenix``, as in CI; see fixtures_require.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from fixtures_require import require

from hitl_langgraph.tracing._server import PhoenixServer, phoenix_command

if TYPE_CHECKING:
    from hitl_langgraph.tracing import TracingHandle


@pytest.fixture(autouse=True)
def _span_spool_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test (and the subprocesses it starts) spools spans under a temp directory."""
    monkeypatch.setenv("HITL_SPAN_SPOOL_DIR", str(tmp_path_factory.mktemp("span-spool")))


@pytest.fixture(scope="session")
def phoenix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    """A running Phoenix server for the session, in a temporary working directory."""
    if phoenix_command() is None:
        require(
            "phoenix",
            "the Phoenix server (arize-phoenix) is not installed; "
            "pip install 'hitl-langgraph[phoenix-server]'",
        )
    server = PhoenixServer(workdir=tmp_path_factory.mktemp("phoenix"), startup_timeout=90.0)
    server.start()  # raises PhoenixStartError with the log tail if it cannot start
    try:
        yield server
    finally:
        server.stop()


PHOENIX_SECRET = "hitl-test-secret-0123456789abcdefghijkl"
PHOENIX_ADMIN_SECRET = "hitl-test-admin-9876543210zyxwvutsrqpo"


@pytest.fixture(scope="session")
def phoenix_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoenixServer]:
    """A Phoenix with authentication on (PHOENIX_ENABLE_AUTH, PHOENIX_SECRET); the admin
    secret (``PHOENIX_ADMIN_SECRET`` above) is a bearer token with admin rights."""
    if phoenix_command() is None:
        pytest.skip("the Phoenix server (arize-phoenix) is not installed")
    server = PhoenixServer(
        workdir=tmp_path_factory.mktemp("phoenix-auth"),
        startup_timeout=90.0,
        env={
            "PHOENIX_ENABLE_AUTH": "true",
            "PHOENIX_SECRET": PHOENIX_SECRET,
            "PHOENIX_ADMIN_SECRET": PHOENIX_ADMIN_SECRET,
            "PHOENIX_DISABLE_RATE_LIMIT": "true",
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracing(phoenix_server: PhoenixServer, phoenix_project: str) -> Iterator[TracingHandle]:
    """``setup_tracing`` to this test's project (unbatched), shut down and uninstrumented after."""
    # imported here: this plugin module is loaded for every test, traced or not
    from openinference.instrumentation.langchain import LangChainInstrumentor

    from hitl_langgraph.tracing import setup as tracing_setup
    from hitl_langgraph.tracing import setup_tracing

    handle = setup_tracing(phoenix_project, phoenix_server.url, batch=False)
    assert handle.enabled and handle.endpoint == phoenix_server.otlp_endpoint
    yield handle
    handle.shutdown(2.0)
    active = tracing_setup._active
    if active is not None:
        active[1].shutdown(1.0)
    if LangChainInstrumentor().is_instrumented_by_opentelemetry:
        LangChainInstrumentor().uninstrument()


@pytest.fixture
def phoenix_project(request: pytest.FixtureRequest) -> str:
    """A project name no other test uses: ``hitl-test-<test name>-<random>``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:40].strip("-")
    return f"hitl-test-{name}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Keep ``@pytest.mark.phoenix`` ours: unregister arize-phoenix-client's pytest plugin.

    arize-phoenix-client (3.5.0) installs a pytest plugin, also named ``phoenix``, that
    treats every ``@pytest.mark.phoenix`` test as a Phoenix *experiment run*: at
    collection it upserts datasets and creates experiments on the Phoenix at
    ``PHOENIX_COLLECTOR_ENDPOINT`` (default localhost:6006). Our marker only means "starts
    a real phoenix serve". Importing that plugin also costs ~9 s per pytest run; run
    pytest with ``-p no:phoenix`` to skip the import as well.
    """
    plugin = config.pluginmanager.get_plugin("phoenix")
    if plugin is not None and getattr(plugin, "__name__", "").startswith("phoenix.client"):
        config.pluginmanager.unregister(plugin)
