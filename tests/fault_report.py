"""Trial counts of the fault suite (``-m faults``), shown in pytest's terminal summary."""

from __future__ import annotations

from typing import Any

import pytest

FAULT_COUNTS = pytest.StashKey[list[str]]()


def record(config: pytest.Config, line: str) -> None:
    config.stash.setdefault(FAULT_COUNTS, []).append(line)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(FAULT_COUNTS, [])
    if lines:
        terminalreporter.section("fault suite trial counts")
        for line in lines:
            terminalreporter.write_line(line)
