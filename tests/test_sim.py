"""The oversight simulator against closed forms, the seed's case, and a real SQLite store.

Every figure checked here follows from queueing theory or from the model's accounting,
never from how long something took on this machine.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hitl_langgraph import ConfigurationError, RiskPolicy, Rule
from hitl_langgraph.sim import (
    SLA,
    Dist,
    Mode,
    ReviewerPool,
    Workload,
    async_mode,
    compare,
    generate_tasks,
    hybrid_mode,
    load_history,
    route_tasks,
    sweep,
    sync_mode,
)
from hitl_langgraph.store import ApprovalRecord, ReviewRecord, annotation_key, open_store

NO_WORK = Dist("fixed", 0.0)


def one_mode(workload: Workload, pool: ReviewerPool, mode: Mode, seed: int = 0):  # type: ignore[no-untyped-def]
    return compare(workload, pool, [mode], seed=seed).rows[0]


# -- closed forms ---------------------------------------------------------------------------


@pytest.mark.parametrize("s", [10.0, 20.0, 45.0])
def test_saturated_single_reviewer_fixed_service_gives_3600_over_s(s: float) -> None:
    w = Workload(tasks=2000, agents=4, work=NO_WORK)
    r = one_mode(w, ReviewerPool(decision=Dist("fixed", s)), sync_mode())
    assert r.throughput_per_hour == pytest.approx(3600.0 / s, rel=1e-9)
    assert r.utilisation == pytest.approx(1.0)
    assert r.human_minutes_per_1k == pytest.approx(s / 60.0 * 1000.0)


def test_seed_case_reproduces_180_tasks_per_hour() -> None:
    """The seed: a 20 s gate, one reviewer, every task gated, saturated arrivals."""
    r = one_mode(Workload(), ReviewerPool(), sync_mode())
    assert r.throughput_per_hour == pytest.approx(180.0, rel=0.005)
    assert r.routes == {"approve": 10_000}
    assert r.human_minutes_per_1k == pytest.approx(1000 * 20 / 60)


@pytest.mark.parametrize(("rho", "tol"), [(0.5, 0.05), (0.8, 0.10)])
def test_md1_mean_wait_below_saturation(rho: float, tol: float) -> None:
    """Poisson arrivals, one reviewer, fixed decision time s: Wq = λs²/(2(1−ρ))."""
    s = 20.0
    lam = rho / s
    w = Workload(tasks=40_000, arrivals_per_hour=lam * 3600, agents=None, work=NO_WORK)
    r = one_mode(w, ReviewerPool(decision=Dist("fixed", s)), sync_mode(), seed=3)
    expected = lam * s * s / (2 * (1 - rho))
    assert r.gated_latency_mean_s - s == pytest.approx(expected, rel=tol)
    assert r.throughput_per_hour == pytest.approx(lam * 3600, rel=0.03)
    assert r.utilisation == pytest.approx(rho, rel=0.03)


def test_working_hours_stretch_a_saturated_queue_over_days() -> None:
    """9-17 reviewers, 20 s fixed: 1440 decisions per day, so 2880 tasks end at 17:00 on
    day 1, i.e. 32 h after the 09:00 start; nobody decides at night."""
    w = Workload(tasks=2880, agents=2, work=NO_WORK)
    pool = ReviewerPool(hours=(9, 17), decision=Dist("fixed", 20.0))
    r = one_mode(w, pool, sync_mode())
    assert r.makespan_h == pytest.approx(32.0)
    assert r.throughput_per_hour == pytest.approx(2880 / 32)
    night = [busy for hour, _, _, busy in r.series if (9 + round(hour)) % 24 not in range(9, 18)]
    assert night and all(b == 0 for b in night)


def test_reviewers_scale_saturated_throughput() -> None:
    w = Workload(tasks=3000, agents=8, work=NO_WORK)
    r = one_mode(w, ReviewerPool(count=3), sync_mode())
    assert r.throughput_per_hour == pytest.approx(3 * 180, rel=1e-6)


# -- the model's accounting ------------------------------------------------------------------


def test_every_error_is_accounted_for_once() -> None:
    c = compare(Workload(tasks=3000), ReviewerPool(expiry_hours=1.0), seed=5)
    for r in c.rows:
        assert r.errors == r.prevented + r.caught_after + r.missed + r.never_reviewed, r.mode
        assert sum(r.routes.values()) == 3000
    assert c.rows[0].errors > 0


def test_same_seed_same_result_other_seed_other_result() -> None:
    a = compare(Workload(tasks=2000), ReviewerPool(), seed=7).to_dict(series=True)
    b = compare(Workload(tasks=2000), ReviewerPool(), seed=7).to_dict(series=True)
    c = compare(Workload(tasks=2000), ReviewerPool(), seed=8).to_dict(series=True)
    assert a == b
    assert a["rows"] != c["rows"]


def test_routes_come_from_the_real_policy() -> None:
    tasks = generate_tasks(Workload(tasks=500), ReviewerPool(), seed=1)
    routes = route_tasks(hybrid_mode(0.7, review=0.3).policy, tasks)
    for t, route in zip(tasks, routes, strict=True):
        want = "approve" if t.risk > 0.7 else "review" if t.risk > 0.3 else "auto"
        assert route == want
    # a custom policy's tool rules apply to the simulated tool names
    policy = RiskPolicy([Rule(tool="transfer_*", route="approve"), Rule(tool="*", score=0.0)])
    routes = route_tasks(policy, tasks)
    assert {t.tool for t, r in zip(tasks, routes, strict=True) if r == "approve"} == {
        "transfer_funds"
    }
    assert "deny" in route_tasks(hybrid_mode(0.5, deny=0.6).policy, tasks)


def test_orderings_of_sync_hybrid_async() -> None:
    c = compare(Workload(tasks=5000), ReviewerPool(), seed=2)
    sync, asyn = c.row("sync"), c.row("async")
    assert sync is not None and asyn is not None
    h50, h70, h85 = (r for r in c.rows if r.kind == "hybrid")
    # throughput: gating everything is slowest; hybrids keep (nearly) async's
    assert sync.throughput_per_hour < h50.throughput_per_hour <= asyn.throughput_per_hour
    assert asyn.throughput_per_hour > 5 * sync.throughput_per_hour
    # latency added: sync queues, async adds none
    assert sync.latency_p95_s > h50.latency_p95_s >= h70.latency_p95_s >= asyn.latency_p95_s == 0
    # errors stopped before they ran: more gating, more prevented; async prevents none
    assert sync.prevented > h50.prevented > h70.prevented >= h85.prevented >= asyn.prevented == 0
    assert sync.never_reviewed == 0 < h50.never_reviewed
    assert sync.human_minutes_per_1k > h50.human_minutes_per_1k > asyn.human_minutes_per_1k
    assert asyn.caught_after > 0 and sync.caught_after == 0
    assert sync.irreversible_reached < h50.irreversible_reached <= asyn.irreversible_reached


def test_hybrid_at_or_below_high_risk_cut_is_as_safe_as_sync_and_near_async() -> None:
    c = compare(Workload(tasks=5000, high_risk=0.7), ReviewerPool(), seed=4, factor=3)
    v = {x["threshold"]: x for x in c.verdicts()}
    sync = c.row("sync")
    assert sync is not None and sync.high_risk_irreversible_errors > 0
    assert v[0.5]["as_safe_as_sync"] and v[0.7]["as_safe_as_sync"]
    assert v[0.5]["best_of_both"] and v[0.7]["best_of_both"]
    assert v[0.85]["as_safe_as_sync"] is False and not v[0.85]["best_of_both"]


def test_recall_and_sampling_change_what_is_caught() -> None:
    w = Workload(tasks=3000)
    perfect = one_mode(w, ReviewerPool(recall=1.0), sync_mode())
    assert perfect.missed == 0 and perfect.prevented == perfect.errors
    unsampled = one_mode(w, ReviewerPool(sample_rate=0.0), async_mode())
    assert unsampled.caught_after == 0 and unsampled.never_reviewed == unsampled.errors


# -- planning sweep ---------------------------------------------------------------------------


def _sweep_workload() -> Workload:
    return Workload(tasks=3000, arrivals_per_hour=300, agents=None, work=NO_WORK)


def test_sweep_picks_fewest_reviewers_meeting_the_sla() -> None:
    w = _sweep_workload()
    modes = [sync_mode(), hybrid_mode(0.5), async_mode()]
    # ρ = 300 * 20 / 3600 = 1.67 for one reviewer gating everything: needs two
    sync2 = one_mode(w, ReviewerPool(count=2), sync_mode())
    per_1k = sync2.to_dict()["irreversible_per_1k"]
    sla = SLA(latency_p95=600.0, max_irreversible=per_1k)
    result = sweep(w, ReviewerPool(), [1, 2, 3], modes, sla)
    assert len(result.cells) == 9
    best = result.best
    assert best is not None and (best.reviewers, best.mode) == (2, "all-sync")
    one_sync = next(c for c in result.cells if c.reviewers == 1 and c.mode == "all-sync")
    assert not one_sync.meets and any("p95" in m for m in one_sync.misses)
    impossible = sweep(w, ReviewerPool(), [1], modes, SLA(latency_p95=1.0, max_irreversible=0))
    assert impossible.best is None


def test_sla_parse_and_errors() -> None:
    sla = SLA.parse("p95=5m, throughput=1000,irreversible=0.5")
    assert (sla.latency_p95, sla.min_throughput, sla.max_irreversible) == (300.0, 1000.0, 0.5)
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        SLA.parse("latency<5")
    with pytest.raises(ConfigurationError, match="is empty"):
        SLA.parse(" ")


@pytest.mark.parametrize(
    ("spec", "kind", "mean"),
    [
        ("20", "fixed", 20.0),
        ("exp:2m", "exponential", 120.0),
        ("lognormal:30:0.8", "lognormal", 30.0),
    ],
)
def test_dist_parse_and_mean(spec: str, kind: str, mean: float) -> None:
    import random

    d = Dist.parse(spec)
    assert (d.kind, d.mean) == (kind, mean)
    rng = random.Random(0)
    avg = sum(d.sample(rng) for _ in range(40_000)) / 40_000
    assert avg == pytest.approx(mean, rel=0.03)


@pytest.mark.parametrize("bad", ["gamma:3", "exp:", "fixed:-1", "lognormal:20:x", "exp:20:1"])
def test_bad_distribution_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        Dist.parse(bad, "--decision")


def test_invalid_scenarios_say_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="--agents N"):
        Workload(agents=None)
    with pytest.raises(ConfigurationError, match=r"\(9, 17\)"):
        ReviewerPool(hours=(17, 9))
    with pytest.raises(ConfigurationError, match="e.g. 9-17"):
        ReviewerPool.parse_hours("nine to five")


# -- replay from a real SQLite store -------------------------------------------------------------

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def _request(rid: str, tool: str, score: float, route: str, status: str, minute: int):  # type: ignore[no-untyped-def]
    at = T0 + timedelta(minutes=minute)
    decided = at + timedelta(seconds=30) if route == "approve" else None
    return ApprovalRecord(
        request_id=rid,
        thread_id=f"t-{rid}",
        node="tools",
        tool=tool,
        args={"amount": 100},
        digest="sha256:" + "0" * 64,
        score=score,
        route=route,
        reasons=["test"],
        status=status,  # type: ignore[arg-type]
        created_at=at,
        updated_at=at,
        decided_at=decided,
    )


def _verdict(rid: str, label: str) -> ReviewRecord:
    span = f"{abs(hash(rid)) % 16**16:016x}"
    return ReviewRecord(
        review_id=annotation_key("default", span, "hitl_verdict", "human:alice"),
        project="default",
        span_id=span,
        name="hitl_verdict",
        identifier="human:alice",
        annotator_kind="HUMAN",
        source="hitl",
        created_at=T0,
        updated_at=T0 + timedelta(hours=1),
        collected_at=T0 + timedelta(hours=1),
        label=label,
        score=1.0 if label == "correct" else 0.0,
        reviewer="alice",
        request_id=rid,
    )


def make_history_store(path: Path) -> str:
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        store.setup()
        rows = [
            _request("r1", "transfer_funds", 0.90, "review", "review", 0),  # unsafe (verdict)
            _request("r2", "send_email", 0.95, "approve", "rejected", 1),  # wrong (rejected)
            _request("r3", "lookup_account", 0.10, "auto", "approved", 2),  # auto: unknown
            _request("r4", "transfer_funds", 0.60, "review", "review", 3),  # correct (verdict)
            _request("r5", "transfer_funds", 0.92, "approve", "approved", 4),  # right
        ]
        rows[2] = replace(rows[2], status="review")  # an auto-run action nobody judged
        for rec in rows:
            store.put_request(rec)
        store.put_review(_verdict("r1", "unsafe"), closes=False)
        store.put_review(_verdict("r4", "correct"), closes=False)
    return url


def test_replay_reads_history_and_ground_truth(tmp_path: Path) -> None:
    url = make_history_store(tmp_path / "hist.db")
    hist = load_history(url, ReviewerPool(recall=1.0), irreversible=["transfer_*"])
    assert [t.tool for t in hist.tasks][:2] == ["transfer_funds", "send_email"]
    assert (hist.known_wrong, hist.known_right, hist.unknown) == (2, 2, 1)
    assert hist.recorded_routes == {"review": 2, "approve": 2, "auto": 1}
    assert hist.recorded_decision_median_s == 30.0
    assert [t.arrival for t in hist.tasks] == [0.0, 60.0, 120.0, 180.0, 240.0]
    assert [t.irreversible for t in hist.tasks] == [True, False, False, True, True]


def test_replay_shows_what_another_threshold_would_have_done(tmp_path: Path) -> None:
    url = make_history_store(tmp_path / "hist.db")
    pool = ReviewerPool(recall=1.0, sample_rate=1.0)
    hist = load_history(url, pool, irreversible=["transfer_*"])
    modes = [hybrid_mode(0.85), hybrid_mode(0.97)]
    low, high = compare(hist.workload(), pool, modes, tasks=hist.tasks).rows
    # at 0.85 both known errors (0.90, 0.95) wait at a gate and are stopped
    assert (low.prevented, low.irreversible_reached, low.routes["approve"]) == (2, 0, 3)
    # at 0.97 they run: the reversible e-mail is caught and undone, the transfer is not
    assert (high.prevented, high.caught_after, high.remediated) == (0, 2, 1)
    assert high.irreversible_reached == 1


def test_replay_of_an_empty_store_says_where_to_point(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with open_store(url) as store:
        store.setup()
    with pytest.raises(ConfigurationError, match="holds no requests"):
        load_history(url)
