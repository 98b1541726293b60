"""Replay a store's own request history instead of a synthetic stream.

Each stored request becomes a task at its recorded time (``created_at``), with its tool,
its arguments and its recorded risk score (``args["risk"]``), so another threshold, or
another policy whose rules read the real arguments, routes last week's traffic again.

Ground truth comes from what humans said:

* a deferred-review verdict (``hitl_verdict``): ``incorrect`` / ``unsafe`` (or a score
  below 0.5) means the action was wrong, ``correct`` that it was right; the latest one
  per request counts;
* otherwise a gate decision: ``rejected`` or ``edited`` means wrong (a human stopped or
  corrected it), ``approved`` right;
* requests nobody judged are *unknown* and simulated as right: the replay can only show
  what another threshold does to the errors someone found.

Which tools are irreversible the store does not know: pass globs (default: every tool,
the cautious reading).
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import ConfigurationError
from ..store import ApprovalStore, RequestFilter, ReviewRecord, open_store
from .model import Dist, ReviewerPool, Task, Workload

__all__ = ["VERDICT_NAME", "History", "load_history"]

VERDICT_NAME = "hitl_verdict"
"""The annotation name of a reviewer's verdict (as the review package writes it)."""
_WRONG_LABELS = frozenset({"incorrect", "unsafe"})
_WRONG_STATUSES = frozenset({"rejected", "edited"})


@dataclass
class History:
    """The replayable history: tasks plus what the store recorded about them."""

    tasks: list[Task]
    url: str
    recorded_routes: dict[str, int] = field(default_factory=dict)
    known_wrong: int = 0
    known_right: int = 0
    unknown: int = 0
    span_hours: float = 0.0
    recorded_decision_median_s: float | None = None

    def workload(self, *, high_risk: float = 0.7) -> Workload:
        """A workload matching the history (arrival times come from the tasks)."""
        rate = len(self.tasks) / max(self.span_hours, 1.0 / 3600.0)
        return Workload(
            tasks=len(self.tasks),
            arrivals_per_hour=rate,
            agents=None,
            work=Dist("fixed", 0.0),
            high_risk=high_risk,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "requests": len(self.tasks),
            "recorded_routes": self.recorded_routes,
            "known_wrong": self.known_wrong,
            "known_right": self.known_right,
            "unknown": self.unknown,
            "span_hours": self.span_hours,
            "recorded_decision_median_s": self.recorded_decision_median_s,
        }


def _verdicts(store: ApprovalStore, page: int) -> dict[str, bool]:
    """request id -> wrong?, from the latest verdict per request."""
    latest: dict[str, ReviewRecord] = {}
    after: tuple[datetime, str] | None = None
    while True:
        rows = store.list_reviews(None, name=VERDICT_NAME, limit=page, after=after)
        for r in rows:
            if r.request_id is None:
                continue
            prev = latest.get(r.request_id)
            if prev is None or r.updated_at >= prev.updated_at:
                latest[r.request_id] = r
        if len(rows) < page:
            break
        after = (rows[-1].collected_at, rows[-1].review_id)
    out = {}
    for rid, r in latest.items():
        if r.label is not None:
            out[rid] = r.label.lower() in _WRONG_LABELS
        elif r.score is not None:
            out[rid] = r.score < 0.5
    return out


def load_history(
    store: ApprovalStore | str,
    pool: ReviewerPool | None = None,
    *,
    irreversible: Sequence[str] = ("*",),
    seed: int = 0,
    page: int = 500,
) -> History:
    """Read every request of ``store`` (an open store or a URL) as replayable tasks.

    Decision and batch-review times are drawn from ``pool`` (the people you plan with),
    reviewer recall applies as in a synthetic run; both are seeded by ``seed``.

    Raises:
        ConfigurationError: the store holds no requests.
    """
    pool = pool or ReviewerPool()
    owned = isinstance(store, str)
    st = open_store(store) if isinstance(store, str) else store
    try:
        truth = _verdicts(st, page)
        rng = random.Random(f"hitl-sim:{seed}:replay")
        tasks: list[Task] = []
        hist = History(tasks=tasks, url=st.url or (store if isinstance(store, str) else ""))
        decision_times: list[float] = []
        first: datetime | None = None
        after: tuple[datetime, str] | None = None
        while True:
            rows = st.list_requests(RequestFilter(status=None), limit=page, after=after)
            for rec in rows:
                first = first or rec.created_at
                hist.recorded_routes[rec.route] = hist.recorded_routes.get(rec.route, 0) + 1
                if rec.request_id in truth:
                    wrong: bool | None = truth[rec.request_id]
                elif rec.status in _WRONG_STATUSES:
                    wrong = True
                elif rec.status == "approved":
                    wrong = False
                else:
                    wrong = None
                if wrong is None:
                    hist.unknown += 1
                elif wrong:
                    hist.known_wrong += 1
                else:
                    hist.known_right += 1
                if rec.route == "approve" and rec.decided_at is not None:
                    decision_times.append((rec.decided_at - rec.created_at).total_seconds())
                irr = any(fnmatch.fnmatchcase(rec.tool, g) for g in irreversible)
                tasks.append(
                    Task(
                        index=len(tasks),
                        arrival=(rec.created_at - first).total_seconds(),
                        tool=rec.tool,
                        risk=rec.score,
                        irreversible=irr,
                        wrong=bool(wrong),
                        caught_draw=rng.random(),
                        sample_draw=rng.random(),
                        work=0.0,
                        decision=pool.decision.sample(rng),
                        review=pool.batch_item.sample(rng),
                        args={**rec.args, "risk": rec.score, "irreversible": irr},
                    )
                )
            if len(rows) < page:
                break
            after = (rows[-1].created_at, rows[-1].request_id)
    finally:
        if owned:
            st.close()
    if not tasks:
        raise ConfigurationError(
            f"the store {hist.url!r} holds no requests to replay; point --replay at the "
            "store your gates write to (the same URL as --store / HITL_STORE_URL)"
        )
    hist.span_hours = tasks[-1].arrival / 3600.0
    if decision_times:
        decision_times.sort()
        hist.recorded_decision_median_s = decision_times[len(decision_times) // 2]
    return hist
