"""Real components the suite needs, and what happens when one is missing.

Some tests need a real external component: a PostgreSQL server, the Phoenix server
package, Debian's chromium, the LangGraph Agent Server. On a developer's machine a
missing one *skips* those tests with the reason, and the rest of the suite runs. In CI
(``.ci/run``) the environment variable ``HITL_REQUIRE`` names the components that must be
there, and a missing one *fails* the test with the same reason::

    HITL_REQUIRE=postgres,phoenix,chromium,langgraph-server   # or HITL_REQUIRE=all

Components (:data:`COMPONENTS`): ``postgres`` (``postgres_url``), ``phoenix``
(``phoenix_server``), ``chromium`` (browser checks: ``chromium_path()``, then
``require("chromium", reason)`` when it is None) and ``langgraph-server`` (the Agent
Server tests: call ``require("langgraph-server", reason)`` where they would skip).

With ``HITL_REQUIRE`` set, the run also fails at the end if *any* test skipped (for any
reason) unless its node id is in :data:`ALLOWED_SKIPS` with a reason, so a skip added
later cannot quietly hide a component either.

Two collection rules keep the ``postgres`` marker honest (so ``-m "not postgres"`` is a
true "no server" run): a test that is parametrised with a ``"postgres"`` value or whose
fixtures include ``postgres_url`` / ``postgres_schema_url`` must carry the marker
(checked at collection), and ``postgres_schema_url`` checks it again when a fixture
requests it dynamically.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, NoReturn

import pytest

COMPONENTS = ("postgres", "phoenix", "chromium", "langgraph-server")
"""What ``HITL_REQUIRE`` may name (``all`` means every one)."""

ALLOWED_SKIPS: dict[str, str] = {}
"""Node ids (exact) that may skip even with ``HITL_REQUIRE`` set, each with its reason."""

POSTGRES_FIXTURES = frozenset({"postgres_url", "postgres_schema_url"})


def required_components(value: str | None = None) -> frozenset[str]:
    """The components ``HITL_REQUIRE`` (or ``value``) names; raises on an unknown name."""
    raw = os.environ.get("HITL_REQUIRE", "") if value is None else value
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if "all" in names:
        return frozenset(COMPONENTS)
    unknown = sorted(names - set(COMPONENTS))
    if unknown:
        raise pytest.UsageError(
            f"HITL_REQUIRE names unknown components {unknown}; use any of {list(COMPONENTS)} "
            "or 'all', comma-separated"
        )
    return frozenset(names)


def require(component: str, reason: str) -> NoReturn:
    """Skip with ``reason``, or fail with it when ``HITL_REQUIRE`` names ``component``."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; add it to COMPONENTS")
    if component in required_components():
        pytest.fail(
            f"{reason} [HITL_REQUIRE requires {component!r}: this run may not skip it]",
            pytrace=False,
        )
    pytest.skip(reason)


def chromium_path() -> str | None:
    """Debian's chromium, if on PATH; a browser check without it calls ``require``."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _uses_postgres(item: pytest.Item) -> bool:
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.params.values()


def pytest_configure(config: pytest.Config) -> None:
    required_components()  # an unknown name is a usage error before anything runs
    _skips.clear()


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Fail collection when a Postgres test lacks the ``postgres`` marker."""
    unmarked = [
        it.nodeid
        for it in items
        if _uses_postgres(it) and it.get_closest_marker("postgres") is None
    ]
    if unmarked:
        shown = "\n  ".join(unmarked[:20])
        raise pytest.UsageError(
            f"{len(unmarked)} tests use PostgreSQL without the `postgres` marker; mark them "
            "(pytest.param('postgres', marks=pytest.mark.postgres) or @pytest.mark.postgres):"
            f"\n  {shown}"
        )


_skips: list[tuple[str, str]] = []
"""(node id, reason) of every skipped test in this session."""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        _skips.append((report.nodeid, reason))


def unexpected_skips() -> list[tuple[str, str]]:
    """Skipped tests not in :data:`ALLOWED_SKIPS` (only counted when HITL_REQUIRE is set)."""
    if not required_components():
        return []
    return [(n, r) for n, r in _skips if n not in ALLOWED_SKIPS]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if unexpected_skips() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    bad = unexpected_skips()
    if bad:
        terminalreporter.section("HITL_REQUIRE: skipped tests", sep="=", red=True)
        terminalreporter.line(
            f"{len(bad)} tests skipped, but with HITL_REQUIRE set nothing may skip unless it is "
            "in tests/fixtures_require.py ALLOWED_SKIPS with a reason:"
        )
        for nodeid, reason in bad[:50]:
            terminalreporter.line(f"  {nodeid}: {reason}")
