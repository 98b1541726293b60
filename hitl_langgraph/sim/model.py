"""The scenario: a task stream (:class:`Workload`), the people (:class:`ReviewerPool`), an SLA.

Every random draw of a task (arrival, tool, risk, whether it is wrong, whether a reviewer
would notice, how long its decision takes) is made once, up front, by
:func:`generate_tasks`, from named streams of one seed. Every mode then sees the *same*
tasks (common random numbers), so differences between modes are the modes' doing, not
sampling noise: a hybrid that gates a task catches its error exactly when all-sync does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["SLA", "Dist", "ReviewerPool", "Task", "Tool", "Workload", "generate_tasks"]

DistKind = Literal["fixed", "exponential", "lognormal"]
_KINDS: dict[str, DistKind] = {
    "fixed": "fixed",
    "exp": "exponential",
    "exponential": "exponential",
    "lognormal": "lognormal",
    "lognorm": "lognormal",
}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str, what: str) -> float:
    """``"20"``, ``"20s"``, ``"2m"`` or ``"1.5h"`` in seconds."""
    raw = text.strip().lower()
    scale = 1.0
    if raw and raw[-1] in _UNITS:
        raw, scale = raw[:-1], _UNITS[raw[-1]]
    try:
        value = float(raw) * scale
    except ValueError:
        raise ConfigurationError(
            f"{what}: {text!r} is not a duration; write seconds (20), or 20s, 2m, 1.5h"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{what}: a duration must be finite and >= 0, got {text!r}")
    return value


@dataclass(frozen=True)
class Dist:
    """A duration distribution in seconds: ``fixed``, ``exponential`` or ``lognormal``.

    ``mean`` is the mean for every kind (a lognormal's ``mu`` is derived from it and
    ``sigma``), so switching kinds keeps the offered load the same.
    """

    kind: DistKind = "fixed"
    mean: float = 20.0
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "exponential", "lognormal"):
            raise ConfigurationError(
                f"Dist.kind must be fixed, exponential or lognormal, got {self.kind!r}"
            )
        if not math.isfinite(self.mean) or self.mean < 0:
            raise ConfigurationError(f"Dist.mean must be a duration >= 0, got {self.mean!r}")
        if self.kind == "exponential" and self.mean == 0:
            raise ConfigurationError("an exponential Dist needs mean > 0; use fixed:0 for none")
        if not self.sigma > 0:
            raise ConfigurationError(f"Dist.sigma must be > 0, got {self.sigma!r}")

    @classmethod
    def parse(cls, spec: str, what: str = "distribution") -> Dist:
        """``"20"``/``"fixed:20"``, ``"exp:20"``, ``"lognormal:20:0.8"`` (durations may
        carry s/m/h units)."""
        parts = spec.split(":")
        if len(parts) == 1:
            return cls("fixed", seconds(parts[0], what))
        kind = _KINDS.get(parts[0].strip().lower())
        if kind is None or len(parts) > (3 if kind == "lognormal" else 2):
            raise ConfigurationError(
                f"{what}: {spec!r} must look like 20, fixed:20, exp:20 or lognormal:20:0.5"
            )
        sigma = 0.5
        if len(parts) == 3:
            try:
                sigma = float(parts[2])
            except ValueError:
                raise ConfigurationError(f"{what}: sigma {parts[2]!r} is not a number") from None
        return cls(kind, seconds(parts[1], what), sigma)

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.mean
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.mean)
        if self.mean == 0:
            return 0.0
        mu = math.log(self.mean) - self.sigma**2 / 2
        return rng.lognormvariate(mu, self.sigma)

    def __str__(self) -> str:
        if self.kind == "lognormal":
            return f"lognormal:{self.mean:g}s:{self.sigma:g}"
        return f"{'exp' if self.kind == 'exponential' else 'fixed'}:{self.mean:g}s"


@dataclass(frozen=True)
class Tool:
    """A tool the agents call: its name (policy rules match it), share and reversibility."""

    name: str
    weight: float = 1.0
    irreversible: bool = False


DEFAULT_TOOLS: tuple[Tool, ...] = (
    Tool("lookup_account", 0.30, irreversible=False),
    Tool("update_record", 0.30, irreversible=False),
    Tool("send_email", 0.25, irreversible=True),
    Tool("transfer_funds", 0.15, irreversible=True),
)


@dataclass(frozen=True)
class Workload:
    """The synthetic task stream.

    Args:
        tasks: how many tasks to simulate.
        arrivals_per_hour: Poisson arrival rate; ``None`` = saturated (a backlog: every
            free agent takes the next task at once).
        agents: agent workers proposing actions in parallel (``None``: unlimited, every
            task starts on arrival). A blocking gate does *not* hold an agent: the run is
            checkpointed at the interrupt, as the package does, and resumes later.
        work: the agent's time to propose a task's action (before any gate).
        risk_alpha, risk_beta: the Beta distribution of true risk in [0, 1]; the policy
            scores ``args["risk"]``.
        error_low, error_high: probability that the action is wrong at risk 0 and at
            risk 1 (linear in between).
        tools: the tool mix; irreversible tools cannot be undone after they ran.
        high_risk: tasks whose risk is strictly above this are "high-risk" in the report.
    """

    tasks: int = 10_000
    arrivals_per_hour: float | None = None
    agents: int | None = 8
    work: Dist = field(default_factory=lambda: Dist("exponential", 20.0))
    risk_alpha: float = 2.0
    risk_beta: float = 5.0
    error_low: float = 0.01
    error_high: float = 0.5
    tools: tuple[Tool, ...] = DEFAULT_TOOLS
    high_risk: float = 0.7

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ConfigurationError(f"Workload.tasks must be >= 1, got {self.tasks}")
        if self.arrivals_per_hour is not None and not self.arrivals_per_hour > 0:
            raise ConfigurationError(
                f"Workload.arrivals_per_hour must be > 0 (or None for saturated), "
                f"got {self.arrivals_per_hour!r}"
            )
        if self.agents is not None and self.agents < 1:
            raise ConfigurationError(
                f"Workload.agents must be >= 1 (or None for unlimited), got {self.agents}"
            )
        if self.arrivals_per_hour is None and self.agents is None:
            raise ConfigurationError(
                "a saturated workload needs a finite number of agents: set agents=N "
                "(--agents N) or an arrival rate (--rate PER_HOUR)"
            )
        if not (self.risk_alpha > 0 and self.risk_beta > 0):
            raise ConfigurationError("Workload.risk_alpha and risk_beta must be > 0")
        for name in ("error_low", "error_high", "high_risk"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"Workload.{name} must be in [0, 1], got {value!r}")
        if not self.tools or any(t.weight < 0 for t in self.tools):
            raise ConfigurationError("Workload.tools must be non-empty with weights >= 0")
        if sum(t.weight for t in self.tools) <= 0:
            raise ConfigurationError("Workload.tools: at least one weight must be > 0")

    @property
    def saturated(self) -> bool:
        return self.arrivals_per_hour is None

    def error_rate(self, risk: float) -> float:
        return self.error_low + (self.error_high - self.error_low) * risk


@dataclass(frozen=True)
class ReviewerPool:
    """The humans.

    Args:
        count: reviewers working in parallel.
        hours: daily working hours ``(start, end)`` in clock hours, e.g. ``(9, 17)``;
            ``None`` = around the clock. The simulation starts at ``start_hour`` of day 0.
        weekdays_only: no work on days 5 and 6 of each week (day 0 is a Monday).
        decision: time to decide one blocking gate (context switch included).
        batch_item: time per item when reviewing deferred items in a batch.
        batch_size: items taken per batch; a waiting gate waits for at most one batch.
        recall: probability that a reviewer notices a wrong action.
        sample_rate: share of ``review``-routed actions sampled for a human.
        expiry_hours: a sampled item still unreviewed this long after it ran is dropped
            (counted as never reviewed); ``None`` = kept until reviewed.
        start_hour: clock hour at time 0.
    """

    count: int = 1
    hours: tuple[float, float] | None = None
    weekdays_only: bool = False
    decision: Dist = field(default_factory=lambda: Dist("fixed", 20.0))
    batch_item: Dist = field(default_factory=lambda: Dist("fixed", 6.0))
    batch_size: int = 20
    recall: float = 0.9
    sample_rate: float = 0.25
    expiry_hours: float | None = 72.0
    start_hour: float = 9.0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigurationError(f"ReviewerPool.count must be >= 1, got {self.count}")
        if self.hours is not None:
            start, end = self.hours
            if not 0 <= start < end <= 24:
                raise ConfigurationError(
                    f"ReviewerPool.hours must be (start, end) with 0 <= start < end <= 24, "
                    f"got {self.hours!r}; e.g. (9, 17), or None for 24h"
                )
        if self.batch_size < 1:
            raise ConfigurationError(f"ReviewerPool.batch_size must be >= 1, got {self.batch_size}")
        for name in ("recall", "sample_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"ReviewerPool.{name} must be in [0, 1], got {value!r}")
        if self.expiry_hours is not None and not self.expiry_hours > 0:
            raise ConfigurationError("ReviewerPool.expiry_hours must be > 0 (or None)")
        if not 0 <= self.start_hour < 24:
            raise ConfigurationError("ReviewerPool.start_hour must be in [0, 24)")

    @staticmethod
    def parse_hours(text: str) -> tuple[float, float] | None:
        """``"24h"`` (or ``"24"``, ``"always"``) -> ``None``; ``"9-17"`` -> ``(9, 17)``."""
        raw = text.strip().lower()
        if raw in ("24h", "24", "always", "24/7"):
            return None
        start, sep, end = raw.partition("-")
        try:
            if not sep:
                raise ValueError
            return (float(start), float(end))
        except ValueError:
            raise ConfigurationError(
                f"--hours {text!r} must be 24h or START-END in clock hours, e.g. 9-17"
            ) from None

    def on_shift(self, t: float) -> bool:
        """Whether reviewers work at virtual time ``t`` (seconds since the start)."""
        if self.hours is None and not self.weekdays_only:
            return True
        hour = self.start_hour + t / 3600.0
        day = int(hour // 24)
        if self.weekdays_only and day % 7 >= 5:
            return False
        if self.hours is None:
            return True
        h = hour - day * 24
        return self.hours[0] <= h < self.hours[1]

    def next_shift(self, t: float) -> float:
        """The first time ``>= t`` at which reviewers work."""
        if self.on_shift(t):
            return t
        hour = self.start_hour + t / 3600.0
        day = int(hour // 24)
        start = 0.0 if self.hours is None else self.hours[0]
        for d in range(day, day + 9):
            candidate = ((d * 24 + start) - self.start_hour) * 3600.0
            if candidate >= t and self.on_shift(candidate):
                return candidate
        raise ConfigurationError("ReviewerPool never works: check hours and weekdays_only")

    def shift_seconds(self, until: float) -> float:
        """On-shift seconds per reviewer in ``[0, until]``."""
        if self.hours is None and not self.weekdays_only:
            return until
        total, t = 0.0, 0.0
        step = 900.0  # quarter-hour resolution is exact for whole/half/quarter hours
        while t < until:
            dt = min(step, until - t)
            if self.on_shift(t):
                total += dt
            t += dt
        return total


@dataclass(frozen=True)
class SLA:
    """Targets a configuration must meet in a sweep; ``None`` = no target.

    ``latency_p95`` (seconds added per task), ``min_throughput`` (tasks/hour),
    ``max_irreversible`` (irreversible errors reaching the world per 1,000 tasks),
    ``max_unreviewed`` (errors never seen by a human per 1,000 tasks).
    """

    latency_p95: float | None = None
    min_throughput: float | None = None
    max_irreversible: float | None = None
    max_unreviewed: float | None = None

    @classmethod
    def parse(cls, spec: str) -> SLA:
        """``"p95=5m,throughput=1000,irreversible=0.5,unreviewed=20"``."""
        keys = {
            "p95": "latency_p95",
            "throughput": "min_throughput",
            "irreversible": "max_irreversible",
            "unreviewed": "max_unreviewed",
        }
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            name = keys.get(key.strip().lower())
            if not sep or name is None:
                raise ConfigurationError(
                    f"--sla {spec!r}: {part!r} is not KEY=VALUE with KEY one of "
                    f"{', '.join(keys)}; e.g. --sla p95=5m,throughput=1000"
                )
            if name == "latency_p95":
                values[name] = seconds(raw, "--sla p95")
            else:
                try:
                    values[name] = float(raw)
                except ValueError:
                    raise ConfigurationError(f"--sla {key}: {raw!r} is not a number") from None
        if not values:
            raise ConfigurationError("--sla is empty; e.g. --sla p95=5m,throughput=1000")
        return cls(**values)

    def misses(self, row: dict[str, float]) -> list[str]:
        """What ``row`` (a :meth:`ModeResult.to_dict`) fails; empty when it meets the SLA."""
        out = []
        if self.latency_p95 is not None and row["latency_p95_s"] > self.latency_p95:
            out.append(f"p95 {row['latency_p95_s']:.0f}s > {self.latency_p95:.0f}s")
        if self.min_throughput is not None and row["throughput_per_hour"] < self.min_throughput:
            out.append(f"throughput {row['throughput_per_hour']:.0f}/h < {self.min_throughput:g}")
        if self.max_irreversible is not None and row["irreversible_per_1k"] > self.max_irreversible:
            out.append(
                f"irreversible {row['irreversible_per_1k']:.2f}/1k > {self.max_irreversible:g}"
            )
        if self.max_unreviewed is not None and row["unreviewed_per_1k"] > self.max_unreviewed:
            out.append(f"unreviewed {row['unreviewed_per_1k']:.1f}/1k > {self.max_unreviewed:g}")
        return out

    def __str__(self) -> str:
        parts = []
        if self.latency_p95 is not None:
            parts.append(f"p95 <= {self.latency_p95:g}s")
        if self.min_throughput is not None:
            parts.append(f"throughput >= {self.min_throughput:g}/h")
        if self.max_irreversible is not None:
            parts.append(f"irreversible <= {self.max_irreversible:g}/1k")
        if self.max_unreviewed is not None:
            parts.append(f"unreviewed <= {self.max_unreviewed:g}/1k")
        return ", ".join(parts)


@dataclass(frozen=True)
class Task:
    """One task with every draw made in advance (see the module docstring)."""

    index: int
    arrival: float
    tool: str
    risk: float
    irreversible: bool
    wrong: bool
    caught_draw: float
    sample_draw: float
    work: float
    decision: float
    review: float
    args: dict[str, object] = field(default_factory=dict)


def generate_tasks(workload: Workload, pool: ReviewerPool, seed: int = 0) -> list[Task]:
    """The task stream of ``workload`` for ``seed`` (same seed, same tasks)."""
    streams = {
        name: random.Random(f"hitl-sim:{seed}:{name}")
        for name in ("arrival", "task", "work", "decision", "review")
    }
    arr, tsk = streams["arrival"], streams["task"]
    tools: Sequence[Tool] = workload.tools
    weights = [t.weight for t in tools]
    rate = None if workload.arrivals_per_hour is None else workload.arrivals_per_hour / 3600.0
    t = 0.0
    out: list[Task] = []
    for i in range(workload.tasks):
        if rate is not None:
            t += arr.expovariate(rate)
        tool = tsk.choices(tools, weights)[0]
        risk = tsk.betavariate(workload.risk_alpha, workload.risk_beta)
        wrong = tsk.random() < workload.error_rate(risk)
        out.append(
            Task(
                index=i,
                arrival=t,
                tool=tool.name,
                risk=risk,
                irreversible=tool.irreversible,
                wrong=wrong,
                caught_draw=tsk.random(),
                sample_draw=tsk.random(),
                work=workload.work.sample(streams["work"]),
                decision=pool.decision.sample(streams["decision"]),
                review=pool.batch_item.sample(streams["review"]),
                args={"risk": risk, "irreversible": tool.irreversible},
            )
        )
    return out
