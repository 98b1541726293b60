"""``hitl simulate``: exit codes, --json, tables, plots, replay."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from test_sim import make_history_store

from hitl_langgraph.cli.main import main

SMALL = ["simulate", "--tasks", "1500", "--no-progress"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_reproduces_the_seed_and_reports_hybrid_rows() -> None:
    code, out, _ = run(*SMALL, "--json")
    assert code == 0
    data = json.loads(out)
    rows = {r["mode"]: r for r in data["rows"]}
    assert list(rows) == ["all-sync", "all-async", "hybrid >0.5", "hybrid >0.7", "hybrid >0.85"]
    assert rows["all-sync"]["throughput_per_hour"] == pytest.approx(180, rel=0.01)
    assert rows["all-async"]["latency_p95_s"] == 0
    assert [v["mode"] for v in data["verdicts"]] == ["hybrid >0.5", "hybrid >0.7", "hybrid >0.85"]
    assert data["seed"] == 0 and data["workload"]["tasks"] == 1500


def test_same_seed_same_json_and_seed_matters() -> None:
    a = run(*SMALL, "--json", "--seed", "3")[1]
    assert a == run(*SMALL, "--json", "--seed", "3")[1]
    assert a != run(*SMALL, "--json", "--seed", "4")[1]


def test_table_output_names_every_mode_and_the_verdict() -> None:
    code, out, _ = run(*SMALL, "--mode", "sync,hybrid", "--thresholds", "0.6")
    assert code == 0
    assert "all-sync" in out and "hybrid >0.6" in out and "all-async" not in out
    assert "180" in out and "tasks/h" in out
    assert "hybrid >0.6: high-risk irreversible errors" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--decision", "gamma:3"], "must look like 20, fixed:20"),
        (["--sla", "p95=5m"], "add --sweep"),
        (["--reviewers", "1,2"], "need --sweep"),
        (["--hours", "nine"], "e.g. 9-17"),
        (["--mode", "turbo"], "choose from sync, async, hybrid"),
        (["--sweep", "--sla", "speed=9"], "KEY=VALUE"),
        (["--rate", "saturated", "--agents", "0"], "--agents N"),
    ],
)
def test_usage_errors_exit_2_and_say_what_to_do(args: list[str], message: str) -> None:
    code, out, err = run(*SMALL, *args, "--json")
    assert code == 2
    assert message in err
    assert json.loads(out)["exit_code"] == 2


def test_sweep_exit_codes_follow_the_sla() -> None:
    base = [*SMALL, "--rate", "300", "--agents", "0", "--work", "0", "--sweep", "--reviewers", "3"]
    code, out, _ = run(*base, "--sla", "p95=10m", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["best"]["reviewers"] == 1 and len(data["cells"]) == 3 * 5
    code, out, err = run(*base, "--sla", "p95=1s,irreversible=0", "--json")
    assert code == 1 and json.loads(out)["best"] is None
    code, out, _ = run(*base, "--sla", "p95=1s,irreversible=0")
    assert code == 1 and "no configuration meets the SLA" in out


def test_sweep_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "plan.png"
    code, out, _ = run(*SMALL, "--sweep", "--reviewers", "2", "--sla", "p95=5m", "--plot", str(png))
    assert code == 0 and f"plot saved to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    queues = tmp_path / "queues.png"
    assert run(*SMALL, "--plot", str(queues))[0] == 0
    assert queues.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(*SMALL, "--plot", str(tmp_path / "x.png"))
    assert code == 1
    assert 'pip install "hitl-langgraph[sim]"' in err


def test_replay_a_sqlite_store(tmp_path: Path) -> None:
    url = make_history_store(tmp_path / "hist.db")
    code, out, _ = run(
        "simulate", "--replay", url, "--irreversible", "transfer_*", "--recall", "1",
        "--sample-rate", "1", "--mode", "hybrid", "--thresholds", "0.85,0.97", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["replay"]["requests"] == 5 and data["replay"]["known_wrong"] == 2
    low, high = data["rows"]
    assert (low["prevented"], low["irreversible_reached"]) == (2, 0)
    assert (high["prevented"], high["irreversible_reached"]) == (0, 1)


def test_replay_of_an_empty_store_exits_2(tmp_path: Path) -> None:
    from hitl_langgraph.store import open_store

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with open_store(url) as store:
        store.setup()
    code, _, err = run("simulate", "--replay", url)
    assert code == 2 and "holds no requests" in err
