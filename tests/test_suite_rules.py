"""The suite's own rules (tests/fixtures_require.py), run in a child pytest.

A missing real component skips locally and fails under ``HITL_REQUIRE``; with
``HITL_REQUIRE`` set any other skip fails the run too; a Postgres test without the
``postgres`` marker fails collection.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

CONFTEST = 'pytest_plugins = ["fixtures_require"]\n'

CASES = """
import pytest
from fixtures_require import require


def test_needs_postgres():
    require("postgres", "no server here")


def test_plain():
    assert True
"""


def run_pytest(
    where: Path, *args: str, require: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HITL_REQUIRE"}
    environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), environ.get("PYTHONPATH", "")])
    if require is not None:
        environ["HITL_REQUIRE"] = require
    environ.update(env)
    return subprocess.run(
        # the same plugin opt-outs as pyproject's addopts (arize's plugin costs ~9 s a run)
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
        + ["-p", "no:phoenix", "-p", "no:langsmith", *args],
        cwd=where,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def project(tmp_path: Path, cases: str) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_cases.py").write_text(cases)
    return tmp_path


def test_a_missing_component_skips_locally_with_its_reason(tmp_path: Path) -> None:
    p = run_pytest(project(tmp_path, CASES))
    assert p.returncode == 0, p.stdout
    assert "SKIPPED" in p.stdout and "no server here" in p.stdout
    assert "1 passed, 1 skipped" in p.stdout


def test_a_required_component_that_is_missing_fails(tmp_path: Path) -> None:
    p = run_pytest(project(tmp_path, CASES), require="postgres,chromium")
    assert p.returncode == 1, p.stdout
    assert "no server here [HITL_REQUIRE requires 'postgres'" in p.stdout
    assert "1 failed, 1 passed" in p.stdout
    # a component not named still only skips, but then the skip count fails the run
    p = run_pytest(project(tmp_path, CASES), require="phoenix")
    assert p.returncode == 1, p.stdout
    assert "1 passed, 1 skipped" in p.stdout
    assert "HITL_REQUIRE: skipped tests" in p.stdout
    assert "test_cases.py::test_needs_postgres: no server here" in p.stdout


def test_under_require_any_skip_fails_the_run(tmp_path: Path) -> None:
    cases = "import pytest\n\ndef test_s():\n    pytest.skip('later')\n\ndef test_ok():\n    pass\n"
    assert run_pytest(project(tmp_path, cases)).returncode == 0
    p = run_pytest(project(tmp_path, cases), require="all")
    assert p.returncode == 1, p.stdout
    assert "1 tests skipped, but with HITL_REQUIRE set nothing may skip" in p.stdout


def test_unknown_component_names_are_refused(tmp_path: Path) -> None:
    p = run_pytest(project(tmp_path, CASES), require="postgress")
    assert p.returncode == 4, p.stdout + p.stderr  # usage error
    assert "unknown components ['postgress']" in p.stderr


def test_a_postgres_test_without_the_marker_fails_collection(tmp_path: Path) -> None:
    cases = (
        "import pytest\n\n"
        "@pytest.fixture(params=['sqlite', 'postgres'])\n"
        "def backend(request):\n    return request.param\n\n"
        "def test_b(backend):\n    pass\n"
    )
    p = run_pytest(project(tmp_path, cases))
    assert p.returncode != 0
    assert "1 tests use PostgreSQL without the `postgres` marker" in p.stdout + p.stderr
    assert "test_cases.py::test_b[postgres]" in p.stdout + p.stderr
    marked = cases.replace(
        "['sqlite', 'postgres']", "['sqlite', pytest.param('postgres', marks=pytest.mark.postgres)]"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    postgres: pg\n")
    assert run_pytest(project(tmp_path, marked)).returncode == 0


def test_the_real_postgres_fixture_fails_under_require_when_unreachable() -> None:
    node = "tests/test_async_savers.py::test_ainvoke_and_astream_cycle[postgres]"
    dead = "postgresql://postgres@127.0.0.1:1/test"
    local = run_pytest(TESTS.parent, node, "--no-cov", HITL_TEST_POSTGRES_URL=dead)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = run_pytest(TESTS.parent, node, "--no-cov", require="postgres", HITL_TEST_POSTGRES_URL=dead)
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout
    assert "no PostgreSQL reachable at " + dead in ci.stdout
