"""The crash matrix: SIGKILL at every boundary, recovery in a fresh process.

Boundaries: pause (request row written, interrupt not checkpointed), decide (decision
recorded, no resume), resume (resume begun), claim (execution claimed, tool not
started), start (started mark written, tool not called), run (the side effect happened,
its result not recorded), record (result recorded, step not checkpointed), checkpoint
(the tools step checkpointed). Recovery is what an operator does: ``reconcile``,
re-drive, decide what is pending, and for a started-but-unfinished tool check the side
effect and settle it with one ``recover`` call.

Trials per boundary and backend: ``HITL_FAULT_TRIALS`` (default 1). Counts are written
to ``faults-crash-<backend>.json`` in the test's tmp dir and printed in the summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from crash_child import BOUNDARIES
from fault_report import record

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CHILD = Path(__file__).resolve().parent / "crash_child.py"
TRIALS = int(os.environ.get("HITL_FAULT_TRIALS", "1"))


def _child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=180
    )


def _setup(backend: str, tmp: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    if backend == "sqlite":
        return {
            "store_url": f"sqlite:///{tmp / 'store.db'}",
            "cp_kind": "sqlite",
            "cp_where": str(tmp / "cp.db"),
            "ledger": str(tmp / "ledger.jsonl"),
        }
    url: str = request.getfixturevalue("postgres_schema_url")
    return {"store_url": url, "cp_kind": "postgres", "cp_where": url, "ledger": str(tmp / "l")}


def _trial(backend: str, boundary: str, tmp: Path, request: pytest.FixtureRequest) -> Any:
    setup = {**_setup(backend, tmp, request), "thread": f"crash-{tmp.name}"}
    crashed = _child("run", boundary, json.dumps(setup))
    assert crashed.returncode == -9, (boundary, crashed.returncode, crashed.stderr[-2000:])
    rec = _child("recover", json.dumps(setup))
    assert rec.returncode == 0, rec.stderr[-3000:]
    return json.loads(rec.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_crash_matrix(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    counts = {"trials": 0, "lost": 0, "duplicated": 0, "stuck": 0, "audit_broken": 0}
    failures: list[Any] = []
    for boundary in BOUNDARIES:
        for i in range(TRIALS):
            tmp = tmp_path / f"{boundary}-{i}"
            tmp.mkdir()
            out = _trial(backend, boundary, tmp, request)
            counts["trials"] += 1
            bad = []
            if out["ledger"] == 0:
                bad.append("lost")
            if out["ledger"] > 1:
                bad.append("duplicated")
            # one approved request that ran; a row whose tool call never reached a
            # checkpoint (the run restarted and the model asked anew) ends cancelled
            rows = list(zip(out["statuses"], out["executions"], strict=True))
            ran = [r for r in rows if r == ("approved", "done")]
            others_ok = all(r == ("cancelled", None) for r in rows if r not in ran)
            if out["next"] or out["interrupts"] or len(ran) != 1 or not others_ok:
                bad.append("stuck")
            if not out["audit_ok"]:
                bad.append("audit_broken")
            for b in bad:
                counts[b] += 1
            if bad:
                failures.append((boundary, bad, out))
    summary = (
        f"{backend}: {counts['trials']} crash trials at {len(BOUNDARIES)} boundaries: "
        f"{counts['lost']} lost, {counts['duplicated']} duplicated, {counts['stuck']} stuck"
    )
    (tmp_path / f"faults-crash-{backend}.json").write_text(json.dumps(counts))
    record(request.config, summary)
    assert not failures, (summary, failures)
