"""``hitl bench`` runs ``python -m bench`` from the checkout (issue 14); no timings checked."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hitl_langgraph.cli.bench import checkout
from hitl_langgraph.cli.main import main


def test_bench_lists_its_comparisons() -> None:
    assert checkout() is not None
    out = io.StringIO()
    assert main(["bench", "--list"], out=out) == 0


def test_unknown_comparison_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "nope"]) == 2
    assert "unknown comparison(s) nope" in capsys.readouterr().err


def test_a_real_short_run_writes_both_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "--only", "feedback", "--repeats", "1", "--out", str(tmp_path), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((tmp_path / "report.json").read_text())
    assert printed == stored
    rows = {r["row"]: r for r in stored["rows"]}
    live = rows["verdict -> live guidance (loop's own work)"]
    assert live["repeats"] == 1 and live["ours_value"]["median"] > 0
    assert "polling interval" in live["how_matched"]
    md = (tmp_path / "report.md").read_text()
    assert "| feedback | verdict -> live guidance" in md
    assert stored["meta"]["command"].startswith("python -m bench --only feedback")
