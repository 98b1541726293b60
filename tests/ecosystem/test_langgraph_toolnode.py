"""LangGraph's own ToolNode tests, run against an all-auto ``GatedToolNode``.

The test files come from the sdist of the installed langgraph-prebuilt (downloaded at
test time, see ``conftest.py``). Three runs: stock ``ToolNode``, a control run with a
do-nothing ``ToolNode`` subclass swapped in (the swap itself breaks nothing), and
``GatedToolNode`` with ``RiskPolicy(rules=[Rule(tool="*", score=0.0)])``. The gated
run must pass exactly what stock passes, with no failure.

Reproduce: ``.venv/bin/python -m pytest tests/ecosystem -v`` (``-m ecosystem``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SuiteRun, sdist_tests

FILES = [
    "tests/test_tool_node.py",
    "tests/test_on_tool_call.py",
    "tests/test_tool_node_validation_error_filtering.py",
    "tests/test_tool_node_interceptor_unregistered.py",
    "tests/test_tool_call_transformer.py",
    "tests/test_injected_state_not_required.py",
]
PLUGIN = "hitl_swap_toolnode"
pytestmark = pytest.mark.ecosystem


@pytest.fixture(scope="module")
def prebuilt() -> Path:
    return sdist_tests("langgraph-prebuilt", "langgraph")


@pytest.fixture(scope="module")
def stock(prebuilt: Path, suite_runner) -> SuiteRun:  # type: ignore[no-untyped-def]
    return suite_runner(prebuilt, FILES, plugin=PLUGIN, mode="stock")


def test_stock_toolnode_passes_its_own_suite(stock: SuiteRun) -> None:
    assert stock.passed, stock.output
    assert not stock.failed, stock.output
    assert "not swapped" in stock.header, stock.header


def test_control_subclass_passes_what_stock_passes(
    prebuilt: Path, stock: SuiteRun, suite_runner
) -> None:  # type: ignore[no-untyped-def]
    control = suite_runner(prebuilt, FILES, plugin=PLUGIN, mode="control")
    print(stock.summary, "|", control.summary)
    assert "ControlToolNode swapped in" in control.header, control.header
    assert not control.failed, control.output
    assert sorted(control.passed) == sorted(stock.passed)


def test_gated_toolnode_passes_what_stock_passes(
    prebuilt: Path, stock: SuiteRun, suite_runner
) -> None:  # type: ignore[no-untyped-def]
    gated = suite_runner(prebuilt, FILES, plugin=PLUGIN, mode="gated")
    print(stock.summary, "|", gated.summary)
    assert "AllAutoGatedToolNode swapped in" in gated.header, gated.header
    assert not gated.failed, f"{gated.summary}\n{gated.failed}\n{gated.output}"
    assert sorted(gated.passed) == sorted(stock.passed)
