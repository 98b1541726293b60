"""The discrete-event engine: one heap of events on a virtual clock, no threads, no wall clock.

A task's life: it arrives (Poisson, or at once from a saturated backlog), waits for a free
agent, the agent works on it for ``task.work`` seconds and proposes its action, and the
action takes the route its mode's policy gave it:

* ``auto`` runs at once and nobody looks at it;
* ``review`` runs at once; with probability ``sample_rate`` it joins the deferred review
  queue, which reviewers work through in batches (``batch_item`` seconds per item); an
  item unreviewed after ``expiry_hours`` is dropped;
* ``approve`` blocks at a gate: the agent is freed (the run is checkpointed), the action
  waits for a reviewer, who decides in ``task.decision`` seconds; a wrong action the
  reviewer notices (``recall``) is rejected, anything else runs when decided;
* ``deny`` never runs.

Reviewers take waiting gates before deferred items (a gate blocks a run; a batch does
not) and work only on shift. A wrong action is *prevented* (stopped before it ran),
*caught after* (a later review noticed it: undone if reversible, too late if not),
*missed* (a human saw it and did not notice) or *never reviewed*.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import ReviewerPool, Task, Workload

__all__ = ["ModeResult", "percentile", "simulate"]

_ARRIVE, _WORK_DONE, _GATE_DONE, _BATCH_DONE, _WAKE, _SAMPLE = range(6)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of an ascending sequence; 0 if empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


class _Level:
    """A queue length over time: its time-weighted mean and its maximum."""

    __slots__ = ("area", "last_t", "level", "peak")

    def __init__(self) -> None:
        self.area = 0.0
        self.last_t = 0.0
        self.level = 0
        self.peak = 0

    def set(self, t: float, level: int) -> None:
        self.area += self.level * (t - self.last_t)
        self.last_t = t
        self.level = level
        self.peak = max(self.peak, level)

    def mean(self, until: float) -> float:
        if until <= 0:
            return 0.0
        return (self.area + self.level * max(0.0, until - self.last_t)) / until


@dataclass
class ModeResult:
    """What one mode did to one task stream. Times in seconds unless named otherwise."""

    mode: str
    reviewers: int
    tasks: int
    routes: dict[str, int]
    latency_median_s: float
    latency_p95_s: float
    gated_latency_mean_s: float
    gated_latency_p95_s: float
    throughput_per_hour: float
    makespan_h: float
    human_minutes_per_1k: float
    utilisation: float
    gate_queue_mean: float
    gate_queue_max: int
    review_queue_mean: float
    review_queue_max: int
    errors: int
    prevented: int
    caught_after: int
    time_to_catch_median_s: float
    time_to_catch_p95_s: float
    missed: int
    never_reviewed: int
    remediated: int
    irreversible_reached: int
    high_risk_irreversible_errors: int
    high_risk_irreversible_reached: int
    expired: int
    threshold: float | None = None
    kind: str = "custom"
    series: list[tuple[float, int, int, int]] = field(default_factory=list)
    """Hourly samples: (hour, gate queue, review queue, busy reviewers)."""

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            k: v for k, v in self.__dict__.items() if k != "series" and not k.startswith("_")
        }
        per_1k = 1000.0 / self.tasks
        data["irreversible_per_1k"] = self.irreversible_reached * per_1k
        data["unreviewed_per_1k"] = self.never_reviewed * per_1k
        data["gated_share"] = self.routes.get("approve", 0) / self.tasks
        if series:
            data["series"] = [
                {"hour": h, "gate_queue": g, "review_queue": r, "busy": b}
                for h, g, r, b in self.series
            ]
        return data


def simulate(
    tasks: Sequence[Task],
    routes: Sequence[str],
    workload: Workload,
    pool: ReviewerPool,
    *,
    mode: str = "",
    kind: str = "custom",
    threshold: float | None = None,
) -> ModeResult:
    """Run ``tasks`` with their ``routes`` (from :func:`~hitl_langgraph.sim.route_tasks`)
    through ``pool``; ``workload`` supplies the agents and the arrival model."""
    n = len(tasks)
    if n == 0 or len(routes) != n:
        raise ValueError("simulate() needs one route per task and at least one task")
    heap: list[tuple[float, int, int, int, int]] = []
    seq = 0

    def push(t: float, kind_: int, a: int = 0, b: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind_, a, b))

    saturated = workload.saturated
    free_agents = n if workload.agents is None else workload.agents
    agent_queue: deque[int] = deque()
    backlog = 0  # next task index of a saturated backlog
    gate_q: deque[int] = deque()
    review_q: deque[int] = deque()
    gate_len, review_len = _Level(), _Level()
    idle = list(range(pool.count))
    waking = False
    batches: dict[int, list[int]] = {}
    batch_ids = 0
    recall, sample_rate, batch_size = pool.recall, pool.sample_rate, pool.batch_size
    expiry = None if pool.expiry_hours is None else pool.expiry_hours * 3600.0
    always_on = pool.hours is None and not pool.weekdays_only

    entered = [0.0] * n  # gate entry, or execution time for deferred review
    latency = [0.0] * n
    done = [0.0] * n
    busy = 0.0
    route_count: dict[str, int] = {}
    catch_times: list[float] = []
    gated_lat: list[float] = []
    series: list[tuple[float, int, int, int]] = []
    c = {
        "errors": 0,
        "prevented": 0,
        "caught": 0,
        "missed": 0,
        "never": 0,
        "remediated": 0,
        "irrev": 0,
        "hr_irrev": 0,
        "hr_irrev_reached": 0,
        "expired": 0,
    }
    high = workload.high_risk

    def ran_wrong(task: Task) -> None:
        """A wrong action ran (whatever happens to it later)."""
        if task.irreversible:
            c["irrev"] += 1
            if task.risk > high:
                c["hr_irrev_reached"] += 1

    def start(i: int, t: float) -> None:
        push(t + tasks[i].work, _WORK_DONE, i)

    def dispatch(t: float) -> None:
        nonlocal waking, busy, batch_ids
        if not idle or not (gate_q or review_q):
            return
        if not always_on and not pool.on_shift(t):
            if not waking:
                waking = True
                push(pool.next_shift(t), _WAKE)
            return
        while idle and (gate_q or review_q):
            if gate_q:
                i = gate_q.popleft()
                gate_len.set(t, len(gate_q))
                dur = tasks[i].decision
                busy += dur
                push(t + dur, _GATE_DONE, idle.pop(), i)
                continue
            batch: list[int] = []
            dur = 0.0
            while review_q and len(batch) < batch_size:
                j = review_q.popleft()
                if expiry is not None and t - entered[j] > expiry:
                    c["expired"] += 1
                    if tasks[j].wrong:
                        c["never"] += 1
                    continue
                batch.append(j)
                dur += tasks[j].review
            review_len.set(t, len(review_q))
            if batch:
                busy += dur
                batch_ids += 1
                batches[batch_ids] = batch
                push(t + dur, _BATCH_DONE, idle.pop(), batch_ids)

    if saturated:
        first = min(n, free_agents)
        for i in range(first):
            start(i, 0.0)
        backlog, free_agents = first, free_agents - first
    else:
        push(tasks[0].arrival, _ARRIVE, 0)
    push(3600.0, _SAMPLE)
    t = horizon = 0.0
    while heap:
        t, _, ev, a, b = heapq.heappop(heap)
        if ev != _SAMPLE:
            horizon = t
        if ev == _WORK_DONE:
            task = tasks[a]
            if saturated and backlog < n:
                start(backlog, t)
                backlog += 1
            elif agent_queue:
                start(agent_queue.popleft(), t)
            else:
                free_agents += 1
            route = routes[a]
            route_count[route] = route_count.get(route, 0) + 1
            if task.wrong:
                c["errors"] += 1
                if task.irreversible and task.risk > high:
                    c["hr_irrev"] += 1
            if route == "approve":
                entered[a] = t
                gate_q.append(a)
                gate_len.set(t, len(gate_q))
                dispatch(t)
                continue
            done[a] = t
            if route == "deny":
                if task.wrong:
                    c["prevented"] += 1
                continue
            if task.wrong:
                ran_wrong(task)
            if route == "review" and task.sample_draw < sample_rate:
                entered[a] = t
                review_q.append(a)
                review_len.set(t, len(review_q))
                dispatch(t)
            elif task.wrong:
                c["never"] += 1
        elif ev == _ARRIVE:
            if a + 1 < n:
                push(tasks[a + 1].arrival, _ARRIVE, a + 1)
            if free_agents > 0:
                free_agents -= 1
                start(a, t)
            else:
                agent_queue.append(a)
        elif ev == _GATE_DONE:
            task = tasks[b]
            idle.append(a)
            latency[b] = t - entered[b]
            gated_lat.append(latency[b])
            done[b] = t
            if task.wrong:
                if task.caught_draw < recall:
                    c["prevented"] += 1
                else:
                    c["missed"] += 1
                    ran_wrong(task)
            dispatch(t)
        elif ev == _BATCH_DONE:
            idle.append(a)
            for j in batches.pop(b):
                task = tasks[j]
                if not task.wrong:
                    continue
                if task.caught_draw < recall:
                    c["caught"] += 1
                    catch_times.append(t - entered[j])
                    if not task.irreversible:
                        c["remediated"] += 1
                else:
                    c["missed"] += 1
            dispatch(t)
        elif ev == _WAKE:
            waking = False
            dispatch(t)
        else:  # _SAMPLE
            series.append((t / 3600.0, len(gate_q), len(review_q), pool.count - len(idle)))
            if heap:
                push(t + 3600.0, _SAMPLE)
    makespan = max(done)
    lat_sorted = sorted(latency)
    gated_lat.sort()
    catch_times.sort()
    on_shift = pool.shift_seconds(horizon) * pool.count
    return ModeResult(
        mode=mode,
        reviewers=pool.count,
        tasks=n,
        routes=route_count,
        latency_median_s=percentile(lat_sorted, 50),
        latency_p95_s=percentile(lat_sorted, 95),
        gated_latency_mean_s=sum(gated_lat) / len(gated_lat) if gated_lat else 0.0,
        gated_latency_p95_s=percentile(gated_lat, 95),
        throughput_per_hour=n / makespan * 3600.0 if makespan > 0 else math.inf,
        makespan_h=makespan / 3600.0,
        human_minutes_per_1k=busy / 60.0 / n * 1000.0,
        utilisation=min(1.0, busy / on_shift) if on_shift > 0 else 0.0,
        gate_queue_mean=gate_len.mean(makespan),
        gate_queue_max=gate_len.peak,
        review_queue_mean=review_len.mean(horizon),
        review_queue_max=review_len.peak,
        errors=c["errors"],
        prevented=c["prevented"],
        caught_after=c["caught"],
        time_to_catch_median_s=percentile(catch_times, 50),
        time_to_catch_p95_s=percentile(catch_times, 95),
        missed=c["missed"],
        never_reviewed=c["never"],
        remediated=c["remediated"],
        irreversible_reached=c["irrev"],
        high_risk_irreversible_errors=c["hr_irrev"],
        high_risk_irreversible_reached=c["hr_irrev_reached"],
        expired=c["expired"],
        threshold=threshold,
        kind=kind,
        series=series,
    )
