"""Adaptive risk: review outcomes move the risk score of each action class.

An *action class* is a tool plus an args bucket (``bucket=`` per tool, e.g.
:func:`amount_bands` ``("amount", [100, 1000])`` -> ``amount<100``,
``amount[100,1000)``, ``amount>=1000``; default one bucket ``*`` per tool). Each reviewed
request counts once: *wrong* if any human verdict on it says incorrect/unsafe, else
*right* if one says correct.

The delta for a class with ``n`` reviewed requests of which ``w`` were wrong shrinks the
observed rate towards the expected one (``baseline``) with ``prior_strength`` pseudo
reviews, then scales it:

    rate  = (w + baseline * prior_strength) / (n + prior_strength)
    delta = clamp(gain * (rate - baseline), -max_decrease, +max_increase)

so 7 wrong of 20 gives +0.21 and 0 of 20 gives -0.08 with the defaults; fewer than
``min_reviews`` reviews give 0. Plugged into :class:`~hitl_langgraph.RiskPolicy` as an
adjuster (``RiskPolicy(rules, adjusters=[adaptive])``), the delta is added to the
rule's score and clamped to ``[rule.floor, 1]``: a class that keeps coming back wrong
climbs into ``approve`` (gated synchronously), one that keeps being approved drifts
down, never below its rule's floor. The reason reads
``adjusted by reviews: +0.21 from 7 of 20 wrong (transfer_funds|*, priors rp-...)``.

The priors are *published*: :meth:`AdaptiveRisk.refresh` (run by the feedback loop)
computes them from the store and, when they changed, appends a ``risk_priors_version``
audit event (stream ``hitl_feedback:risk``) with the snapshot, its version id and what
changed. Agents read the latest snapshot from the store, cached for ``ttl`` seconds.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigurationError
from ..policy.action import Action
from ..policy.risk import RiskContext
from ..store.base import ApprovalStore
from ..store.review_records import ReviewRecord
from ._streams import RISK_STREAM, StreamReader, TTLCache, content_hash, publish, utc_now
from .context import ReviewContext
from .guidance import VERDICT_NAME

__all__ = [
    "RISK_EVENT",
    "ActionClass",
    "AdaptiveConfig",
    "AdaptiveRisk",
    "Bucketer",
    "ClassPrior",
    "PriorsSnapshot",
    "amount_bands",
    "review_delta",
]

RISK_EVENT = "risk_priors_version"
Bucketer = Callable[[Mapping[str, Any]], str]


def amount_bands(field: str, edges: Sequence[float]) -> Bucketer:
    """A bucket function by numeric bands of ``args[field]`` (edges ascending).

    A missing or non-numeric value goes to ``<field>=?``.
    """
    bounds = sorted(float(e) for e in edges)
    if not bounds:
        raise ConfigurationError("amount_bands needs at least one edge")

    def fmt(x: float) -> str:
        return str(int(x)) if x.is_integer() else str(x)

    def bucket(args: Mapping[str, Any]) -> str:
        value = args.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return f"{field}=?"
        if value < bounds[0]:
            return f"{field}<{fmt(bounds[0])}"
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            if lo <= value < hi:
                return f"{field}[{fmt(lo)},{fmt(hi)})"
        return f"{field}>={fmt(bounds[-1])}"

    return bucket


@dataclass(frozen=True)
class ActionClass:
    """A tool and an args bucket."""

    tool: str
    bucket: str = "*"

    @property
    def key(self) -> str:
        return f"{self.tool}|{self.bucket}"


@dataclass(frozen=True)
class AdaptiveConfig:
    """The update rule (see the module docstring)."""

    baseline: float = 0.1
    prior_strength: float = 4.0
    gain: float = 1.0
    max_increase: float = 0.4
    max_decrease: float = 0.15
    min_reviews: int = 3
    wrong_labels: frozenset[str] = frozenset({"incorrect", "unsafe"})
    right_labels: frozenset[str] = frozenset({"correct"})
    verdict_name: str = VERDICT_NAME
    human_only: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.baseline < 1.0:
            raise ConfigurationError(f"baseline must be in [0, 1), got {self.baseline!r}")
        for name in ("max_increase", "max_decrease"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigurationError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.prior_strength < 0 or self.gain < 0 or self.min_reviews < 1:
            raise ConfigurationError("prior_strength and gain must be >= 0, min_reviews >= 1")


def review_delta(reviewed: int, wrong: int, config: AdaptiveConfig | None = None) -> float:
    """The bounded score delta for ``wrong`` of ``reviewed`` (0 below ``min_reviews``)."""
    cfg = config or AdaptiveConfig()
    if reviewed < cfg.min_reviews:
        return 0.0
    k = cfg.prior_strength
    rate = (wrong + cfg.baseline * k) / (reviewed + k)
    delta = cfg.gain * (rate - cfg.baseline)
    return round(min(max(delta, -cfg.max_decrease), cfg.max_increase), 4)


@dataclass(frozen=True)
class ClassPrior:
    """The review record of one action class and the delta it earns."""

    key: str
    tool: str
    bucket: str
    reviewed: int
    wrong: int
    delta: float

    def reason(self, version: str) -> str:
        return (
            f"adjusted by reviews: {self.delta:+.2f} from {self.wrong} of {self.reviewed} "
            f"wrong ({self.key}, priors {version})"
        )


@dataclass(frozen=True)
class PriorsSnapshot:
    """Every class prior and the snapshot's version id (``rp-`` + hash)."""

    priors: Mapping[str, ClassPrior]
    version: str

    @classmethod
    def build(cls, priors: Mapping[str, ClassPrior], config: AdaptiveConfig) -> PriorsSnapshot:
        body = [asdict(priors[k]) for k in sorted(priors)]
        cfg = {k: sorted(v) if isinstance(v, frozenset) else v for k, v in asdict(config).items()}
        return cls(priors=dict(priors), version=content_hash([body, cfg], "rp-"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "priors": [asdict(self.priors[k]) for k in sorted(self.priors)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriorsSnapshot:
        priors = {p["key"]: ClassPrior(**p) for p in data.get("priors", ())}
        return cls(priors=priors, version=str(data.get("version", "")))


EMPTY = PriorsSnapshot(priors={}, version="rp-none")


class AdaptiveRisk:
    """Risk-policy adjuster driven by review outcomes (see the module docstring).

    Args:
        store: The approval store (reviews and requests are read from it; the priors
            are published to its audit trail).
        buckets: Per-tool bucket functions (``{"transfer_funds": amount_bands(...)}``).
        config: The update rule.
        ttl: Seconds between reads of the published priors (agent side).
        clock: Injectable wall clock (audit timestamps).
        monotonic: Injectable monotonic clock (the cache).
        worker_id: Names the publisher in the audit trail.
    """

    def __init__(
        self,
        store: ApprovalStore,
        *,
        buckets: Mapping[str, Bucketer] | None = None,
        config: AdaptiveConfig | None = None,
        ttl: float = 5.0,
        clock: Callable[[], Any] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.buckets = dict(buckets or {})
        self.config = config or AdaptiveConfig()
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:adaptive"
        self._reader = StreamReader(store, RISK_STREAM, RISK_EVENT)
        self._cache: TTLCache[tuple[int, PriorsSnapshot]] = TTLCache(
            self._load, ttl=ttl, monotonic=monotonic
        )

    # -- classes ---------------------------------------------------------------------
    def classify(self, tool: str, args: Mapping[str, Any]) -> ActionClass:
        """The class of a call to ``tool`` with ``args``."""
        fn = self.buckets.get(tool)
        return ActionClass(tool, "*" if fn is None else str(fn(args)))

    # -- loop side -------------------------------------------------------------------
    def outcomes(
        self,
        reviews: Sequence[ReviewRecord],
        contexts: Mapping[str, ReviewContext] | None = None,
    ) -> dict[str, bool]:
        """``request_id -> wrong`` for every reviewed request (human verdicts only)."""
        cfg = self.config
        out: dict[str, bool] = {}
        for r in reviews:
            if r.name != cfg.verdict_name or (cfg.human_only and r.annotator_kind != "HUMAN"):
                continue
            ctx = (contexts or {}).get(r.review_id)
            rid = r.request_id or (ctx.request_id if ctx else None)
            if rid is None or r.label is None:
                continue
            if r.label in cfg.wrong_labels:
                out[rid] = True
            elif r.label in cfg.right_labels:
                out.setdefault(rid, False)
        return out

    def compute(self, outcomes: Mapping[str, bool]) -> PriorsSnapshot:
        """The priors for these outcomes (requests are read from the store)."""
        counts: dict[str, list[int]] = {}
        classes: dict[str, ActionClass] = {}
        for rid in sorted(outcomes):
            rec = self.store.get_request(rid)
            if rec is None:
                continue
            cls = self.classify(rec.tool, rec.args)
            classes[cls.key] = cls
            c = counts.setdefault(cls.key, [0, 0])
            c[0] += 1
            c[1] += int(outcomes[rid])
        priors = {
            key: ClassPrior(
                key=key,
                tool=classes[key].tool,
                bucket=classes[key].bucket,
                reviewed=n,
                wrong=w,
                delta=review_delta(n, w, self.config),
            )
            for key, (n, w) in counts.items()
        }
        return PriorsSnapshot.build(priors, self.config)

    def refresh(
        self,
        reviews: Sequence[ReviewRecord] | None = None,
        contexts: Mapping[str, ReviewContext] | None = None,
    ) -> tuple[PriorsSnapshot, list[dict[str, Any]]]:
        """Recompute from the store and publish if the priors changed.

        Returns:
            The snapshot and the changes published (empty when unchanged).
        """
        if reviews is None:
            reviews = self.store.list_reviews(None, name=self.config.verdict_name, limit=1_000_000)
        snap = self.compute(self.outcomes(reviews, contexts))
        seq, old = self._load()
        if snap.version == old.version:
            return snap, []
        changes = [
            {
                "class": key,
                "old_delta": old.priors[key].delta if key in old.priors else 0.0,
                "new_delta": p.delta,
                "reviewed": p.reviewed,
                "wrong": p.wrong,
            }
            for key, p in sorted(snap.priors.items())
            if key not in old.priors or old.priors[key] != p
        ]
        n = int(self._latest_n()) + 1
        data = {"snapshot": snap.to_dict(), "parent": old.version, "changes": changes}
        publish(
            self.store, RISK_STREAM, RISK_EVENT, data, n=n, at=self.clock(), worker=self.worker_id
        )
        self._cache.invalidate()
        return snap, changes

    def _latest_n(self) -> int:
        ev = self._reader.latest()
        return 0 if ev is None else int(ev.data.get("n", 0))

    # -- agent side ------------------------------------------------------------------
    def _load(self) -> tuple[int, PriorsSnapshot]:
        ev = self._reader.latest()
        if ev is None:
            return 0, EMPTY
        return ev.seq or 0, PriorsSnapshot.from_dict(ev.data.get("snapshot", {}))

    def current(self) -> PriorsSnapshot:
        """The published priors (cached for ``ttl`` seconds)."""
        return self._cache.get()[1]

    def __call__(self, action: Action, context: RiskContext) -> tuple[float, str] | None:
        """The adjuster: this action's class delta and the reason, or ``None``."""
        snap = self.current()
        prior = snap.priors.get(self.classify(action.tool, action.args).key)
        if prior is None or prior.delta == 0.0:
            return None
        return prior.delta, prior.reason(snap.version)
