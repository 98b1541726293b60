"""The risk policy: score a proposed action in [0, 1] and route it.

Pure and synchronous: no I/O, no clock. A :class:`RiskPolicy` holds ordered
:class:`Rule` objects (the first rule whose tool glob and predicate match gives the base
score) and optional custom scorers (each may raise the score, never lower it below the
rule's). The score is mapped to a :data:`Route` by :class:`Thresholds`; a rule may also
force a route. Every :class:`Assessment` carries the reasons that produced it, so a
reviewer sees why they were asked.
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol, Union, runtime_checkable

from .._display_hooks import html_for
from ..errors import ConfigurationError, PolicyError
from .action import Action, canonical_json

__all__ = [
    "DECISION_TYPES",
    "Adjuster",
    "Assessment",
    "DecisionType",
    "RiskContext",
    "RiskPolicy",
    "Route",
    "Rule",
    "Scorer",
    "Thresholds",
]

Route = Literal["auto", "review", "approve", "deny"]
"""Where an action goes: run, run then deferred review, block for a human, never run."""

DecisionType = Literal["approve", "edit", "reject", "respond"]
DECISION_TYPES: tuple[DecisionType, ...] = ("approve", "edit", "reject", "respond")
_ROUTES: tuple[Route, ...] = ("auto", "review", "approve", "deny")


@dataclass(frozen=True)
class RiskContext:
    """What a scorer may look at besides the action: the graph state and the run config."""

    state: Any = None
    config: Mapping[str, Any] | None = None

    @property
    def thread_id(self) -> str | None:
        conf = (self.config or {}).get("configurable", {})
        tid = conf.get("thread_id")
        return None if tid is None else str(tid)

    @property
    def user_id(self) -> str | None:
        """The requester: ``configurable.user_id`` (or ``metadata.user_id``) of the run."""
        cfg = self.config or {}
        uid = cfg.get("configurable", {}).get("user_id") or cfg.get("metadata", {}).get("user_id")
        return None if uid is None else str(uid)


ScoreResult = Union[float, int, tuple[float, str], None]


@runtime_checkable
class Scorer(Protocol):
    """A custom scorer: return a score in [0, 1] (optionally with a reason), or ``None``."""

    def __call__(self, action: Action, context: RiskContext) -> ScoreResult: ...


AdjustResult = Union[float, int, tuple[float, str], None]


@runtime_checkable
class Adjuster(Protocol):
    """Moves the rule's score by a signed delta in [-1, 1] (optionally with a reason).

    Return ``None`` (or ``0``) to leave the score alone. The adjusted score is clamped to
    ``[rule.floor, 1]``; scorers are applied afterwards and can still raise it.
    """

    def __call__(self, action: Action, context: RiskContext) -> AdjustResult: ...


ArgScore = Union[float, int, Callable[..., Any]]


@dataclass(frozen=True)
class Thresholds:
    """Score cut-offs. A score strictly above ``approve`` blocks; above ``review`` is reviewed.

    ``deny`` (off by default) denies anything scored strictly above it.
    """

    review: float = 0.5
    approve: float = 0.85
    deny: float | None = None

    def __post_init__(self) -> None:
        for name in ("review", "approve"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"Thresholds.{name} must be in [0, 1], got {value!r}")
        if self.review > self.approve:
            raise ConfigurationError(
                f"Thresholds.review ({self.review}) must not exceed Thresholds.approve "
                f"({self.approve})"
            )
        if self.deny is not None and not self.approve <= self.deny <= 1.0:
            raise ConfigurationError(
                f"Thresholds.deny must be in [approve={self.approve}, 1], got {self.deny!r}"
            )

    def route(self, score: float) -> Route:
        if self.deny is not None and score > self.deny:
            return "deny"
        if score > self.approve:
            return "approve"
        if score > self.review:
            return "review"
        return "auto"


@dataclass(frozen=True)
class Rule:
    """Scores the actions whose tool name matches ``tool`` (a glob) and ``when`` (if given).

    ``score`` is a number or a callable. A callable taking one parameter receives the
    action's args; one taking two receives ``(action, context)``. ``route`` forces a route
    whatever the score. ``approver_roles`` limits who may decide (empty: anyone);
    ``quorum`` is how many distinct approvals are needed; ``expires_after`` sets the
    request's deadline and ``on_expiry`` the decision then applied.
    ``editor_may_approve_followup``: when a reviewer's edit turns another request into
    an action this rule gates, that reviewer may approve the follow-up (default: no,
    another reviewer must).
    """

    tool: str = "*"
    score: ArgScore = 0.0
    when: Callable[..., bool] | None = None
    route: Route | None = None
    name: str | None = None
    reason: str | None = None
    approver_roles: frozenset[str] = field(default_factory=frozenset)
    allowed_decisions: tuple[DecisionType, ...] = DECISION_TYPES
    quorum: int = 1
    expires_after: timedelta | None = None
    on_expiry: Literal["reject", "approve"] = "reject"
    floor: float = 0.0
    editor_may_approve_followup: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "approver_roles", frozenset(self.approver_roles))
        object.__setattr__(self, "allowed_decisions", tuple(self.allowed_decisions))
        if self.route is not None and self.route not in _ROUTES:
            raise ConfigurationError(f"Rule.route must be one of {_ROUTES}, got {self.route!r}")
        bad = [d for d in self.allowed_decisions if d not in DECISION_TYPES]
        if bad or not self.allowed_decisions:
            raise ConfigurationError(
                f"Rule.allowed_decisions must be a non-empty subset of {DECISION_TYPES}, "
                f"got {self.allowed_decisions!r}"
            )
        if self.quorum < 1:
            raise ConfigurationError(f"Rule.quorum must be >= 1, got {self.quorum!r}")
        if not 0.0 <= self.floor <= 1.0:
            raise ConfigurationError(f"Rule.floor must be in [0, 1], got {self.floor!r}")
        if not callable(self.score):
            _check_score(self.score, self.label)

    @property
    def label(self) -> str:
        return self.name or f"tool={self.tool}"

    def matches(self, action: Action, context: RiskContext) -> bool:
        if not fnmatch.fnmatchcase(action.tool, self.tool):
            return False
        if self.when is None:
            return True
        return bool(_call_flexible(self.when, action, context))

    def evaluate(self, action: Action, context: RiskContext) -> float:
        if callable(self.score):
            raw = _call_flexible(self.score, action, context)
            value = _check_score(raw, self.label)
        else:
            value = float(self.score)
        return max(value, self.floor)

    def fingerprint(self) -> str:
        def part(v: Any) -> str:
            if callable(v):
                return getattr(v, "__qualname__", type(v).__name__)
            return canonical_json(v) if not isinstance(v, frozenset) else canonical_json(sorted(v))

        return "|".join(
            f"{k}={part(getattr(self, k))}"
            for k in (
                "tool",
                "score",
                "when",
                "route",
                "name",
                "approver_roles",
                "quorum",
                "allowed_decisions",
                "floor",
                "on_expiry",
            )
        )


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return 1
    return len(params)


def _call_flexible(fn: Callable[..., Any], action: Action, context: RiskContext) -> Any:
    if _arity(fn) >= 2:
        return fn(action, context)
    return fn(dict(action.args))


def _check_score(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise PolicyError(
            f"{where}: a score must be a number in [0, 1], got {type(raw).__name__} {raw!r}"
        )
    value = float(raw)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise PolicyError(
            f"{where}: a score must be in [0, 1], got {value!r}; clamp it with min/max"
        )
    return value


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", type(fn).__name__))


def _check_delta(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise PolicyError(
            f"{where}: a delta must be a number in [-1, 1], got {type(raw).__name__} {raw!r}"
        )
    value = float(raw)
    if math.isnan(value) or not -1.0 <= value <= 1.0:
        raise PolicyError(f"{where}: a delta must be in [-1, 1], got {value!r}")
    return value


@dataclass(frozen=True)
class Assessment:
    """The policy's verdict on one action: score, route, and why."""

    action: Action
    score: float
    route: Route
    reasons: tuple[str, ...]
    rule: str | None = None
    approver_roles: frozenset[str] = frozenset()
    allowed_decisions: tuple[DecisionType, ...] = DECISION_TYPES
    quorum: int = 1
    expires_after: timedelta | None = None
    on_expiry: Literal["reject", "approve"] = "reject"
    policy_version: str = ""
    editor_may_approve_followup: bool = False

    def __repr__(self) -> str:
        return (
            f"Assessment({self.action.tool} score={self.score:.2f} route={self.route} "
            f"reasons={list(self.reasons)!r})"
        )

    def _repr_html_(self) -> str | None:
        return html_for("assessment", self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.action.tool,
            "args": dict(self.action.args),
            "digest": self.action.digest,
            "score": self.score,
            "route": self.route,
            "reasons": list(self.reasons),
            "rule": self.rule,
            "approver_roles": sorted(self.approver_roles),
            "allowed_decisions": list(self.allowed_decisions),
            "quorum": self.quorum,
            "policy_version": self.policy_version,
        }


class RiskPolicy:
    """Scores and routes actions. See the module docstring for the semantics.

    Args:
        rules: ordered rules; the first that matches gives the base score.
        scorers: custom scorers; the final score is the maximum of the (adjusted) rule
            score and every scorer's, each contribution named in the reasons.
        adjusters: called after the rule scored a matched action; each returns a signed
            delta (with a reason) added to the rule's score, the sum clamped to
            ``[rule.floor, 1]`` (see :class:`Adjuster`). Not applied to unmatched actions.
        thresholds: score cut-offs (default: above 0.5 review, above 0.85 approve).
        unmatched: route for an action no rule matches. Default ``"approve"``: an
            unknown tool is blocked until a human decides (fail closed).
        version: a label recorded with every request and decision; by default a digest
            of the rules and thresholds.
    """

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        scorers: Iterable[Scorer] = (),
        adjusters: Iterable[Adjuster] = (),
        thresholds: Thresholds | None = None,
        unmatched: Route = "approve",
        version: str | None = None,
    ) -> None:
        for r in rules:
            if not isinstance(r, Rule):
                raise ConfigurationError(
                    f"RiskPolicy(rules=...) takes Rule objects, got {type(r).__name__}"
                )
        if unmatched not in _ROUTES:
            raise ConfigurationError(f"unmatched must be one of {_ROUTES}, got {unmatched!r}")
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.scorers: tuple[Scorer, ...] = tuple(scorers)
        self.adjusters: tuple[Adjuster, ...] = tuple(adjusters)
        self.thresholds = thresholds or Thresholds()
        self.unmatched: Route = unmatched
        self.version = version or self._default_version()

    def _default_version(self) -> str:
        text = "\n".join(r.fingerprint() for r in self.rules)
        text += f"\n{self.thresholds}\n{self.unmatched}\n"
        text += ",".join(getattr(s, "__qualname__", type(s).__name__) for s in self.scorers)
        if self.adjusters:  # appended only when present: existing versions stay the same
            text += "\nadjusters:" + ",".join(_name(a) for a in self.adjusters)
        return "auto-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def rule_for(self, action: Action, context: RiskContext | None = None) -> Rule | None:
        ctx = context or RiskContext()
        for rule in self.rules:
            if rule.matches(action, ctx):
                return rule
        return None

    def assess(
        self,
        action: Action,
        *,
        state: Any = None,
        config: Mapping[str, Any] | None = None,
    ) -> Assessment:
        """Score ``action`` and pick its route. Never raises for a misbehaving callable:
        a rule or scorer that raises routes the action to ``approve`` (fail closed), with
        the exception named in the reasons. A callable returning a non-score raises
        :class:`PolicyError`, since that is a bug in the policy, not in the action."""
        ctx = RiskContext(state=state, config=config)
        reasons: list[str] = []
        forced: Route | None = None
        rule: Rule | None = None
        try:
            rule = self.rule_for(action, ctx)
        except Exception as exc:
            return self._failed(action, f"rule predicate raised {exc!r}", None)
        if rule is None:
            score = {"auto": 0.0, "review": self.thresholds.review, "approve": 1.0, "deny": 1.0}[
                self.unmatched
            ]
            forced = self.unmatched
            reasons.append(f"no rule matches tool {action.tool!r}: unmatched -> {self.unmatched}")
        else:
            try:
                score = rule.evaluate(action, ctx)
            except PolicyError:
                raise
            except Exception as exc:
                return self._failed(action, f"rule {rule.label} raised {exc!r}", rule)
            reasons.append(rule.reason or f"rule {rule.label} scored {score:.2f}")
            forced = rule.route
            adjusted = self._adjust(action, ctx, rule, score, reasons)
            if isinstance(adjusted, Assessment):
                return adjusted
            score = adjusted
        for scorer in self.scorers:
            name = getattr(scorer, "__qualname__", type(scorer).__name__)
            try:
                result = scorer(action, ctx)
            except Exception as exc:
                return self._failed(action, f"scorer {name} raised {exc!r}", rule)
            if result is None:
                continue
            why = None
            if isinstance(result, tuple):
                result, why = result
            value = _check_score(result, f"scorer {name}")
            if value > score:
                reasons.append(why or f"scorer {name} raised the score to {value:.2f}")
                score = value
        route = forced if forced is not None else self.thresholds.route(score)
        if forced is not None and rule is not None and rule.route is not None:
            reasons.append(f"rule {rule.label} forces route {forced}")
        elif forced is None:
            reasons.append(f"score {score:.2f} -> {route} ({self._band(route)})")
        return self._make(action, score, route, reasons, rule)

    def _adjust(
        self, action: Action, ctx: RiskContext, rule: Rule, score: float, reasons: list[str]
    ) -> float | Assessment:
        """Add every adjuster's delta to ``score``, clamped to ``[rule.floor, 1]``."""
        if not self.adjusters:
            return score
        total = score
        for adjuster in self.adjusters:
            name = _name(adjuster)
            try:
                result = adjuster(action, ctx)
            except Exception as exc:
                return self._failed(action, f"adjuster {name} raised {exc!r}", rule)
            if result is None:
                continue
            why = None
            if isinstance(result, tuple):
                result, why = result
            delta = _check_delta(result, f"adjuster {name}")
            if delta == 0.0:
                continue
            total += delta
            reasons.append(why or f"adjuster {name}: {delta:+.2f}")
        clamped = min(max(total, rule.floor), 1.0)
        if clamped != total:
            bound = "rule floor" if clamped == rule.floor else "maximum"
            reasons.append(f"adjusted score clamped to the {bound} {clamped:.2f}")
        return clamped

    def _band(self, route: Route) -> str:
        t = self.thresholds
        return {
            "auto": f"<= {t.review}",
            "review": f"> {t.review}",
            "approve": f"> {t.approve}",
            "deny": f"> {t.deny}",
        }[route]

    def _failed(self, action: Action, why: str, rule: Rule | None) -> Assessment:
        return self._make(
            action, 1.0, "approve", [f"{why}; failing closed: approval required"], rule
        )

    def _make(
        self, action: Action, score: float, route: Route, reasons: list[str], rule: Rule | None
    ) -> Assessment:
        return Assessment(
            action=action,
            score=round(score, 6),
            route=route,
            reasons=tuple(reasons),
            rule=None if rule is None else rule.label,
            approver_roles=frozenset() if rule is None else rule.approver_roles,
            allowed_decisions=DECISION_TYPES if rule is None else rule.allowed_decisions,
            quorum=1 if rule is None else rule.quorum,
            expires_after=None if rule is None else rule.expires_after,
            on_expiry="reject" if rule is None else rule.on_expiry,
            policy_version=self.version,
            editor_may_approve_followup=rule is not None and rule.editor_may_approve_followup,
        )
