"""Guidance items: what reviewers told the agent, with scope, example and provenance.

The data model of the feedback loop. :func:`~hitl_langgraph.feedback.derive_guidance`
(in ``derive``) builds a :class:`GuidanceSet` from collected reviews; the set's
``version`` is a hash of what its active items tell the agent, so the same reviews give
the same version in every process.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ..errors import ConfigurationError
from ._streams import content_hash

__all__ = [
    "GUIDANCE_NAME",
    "VERDICT_NAME",
    "CorrectedExample",
    "GuidanceConfig",
    "GuidanceItem",
    "GuidanceSet",
    "ItemStatus",
    "Scope",
    "guidance_version",
    "normalize_instruction",
]

VERDICT_NAME = "hitl_verdict"
GUIDANCE_NAME = "hitl_guidance"
ItemStatus = Literal["active", "pending", "conflict", "overruled", "expired"]


@dataclass(frozen=True)
class Scope:
    """Where an item applies: a graph node and/or a tool, optionally one tenant.

    ``None`` means "any" for node and tool. An item with a tenant applies only to runs
    of that tenant; one without applies to every tenant.
    """

    node: str | None = None
    tool: str | None = None
    tenant: str | None = None

    def key(self) -> list[str | None]:
        return [self.node, self.tool, self.tenant]

    def applies(self, *, node: str | None, tools: Iterable[str] | None, tenant: str | None) -> bool:
        """Whether this scope covers a prompt of ``node`` offering ``tools`` for ``tenant``.

        Unknown ``tools`` (``None``) exclude nothing; unknown ``node`` excludes
        node-scoped items (they are for one node's prompt only).
        """
        if self.node is not None and self.node != node:
            return False
        if self.tool is not None and tools is not None and self.tool not in set(tools):
            return False
        return self.tenant is None or self.tenant == tenant

    def describe(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (("node", self.node), ("tool", self.tool), ("tenant", self.tenant))
            if v
        ]
        return " ".join(parts) or "everywhere"


@dataclass(frozen=True)
class CorrectedExample:
    """What happened and what the reviewer says should have happened."""

    input: str | None
    did: str | None
    should: str | None


@dataclass(frozen=True)
class GuidanceItem:
    """One instruction distilled from reviews, with everything needed to trace it back."""

    id: str
    instruction: str
    scope: Scope
    status: ItemStatus
    reviewers: tuple[str, ...]
    support: int
    span_ids: tuple[str, ...]
    review_ids: tuple[str, ...]
    annotation_ids: tuple[str, ...]
    request_ids: tuple[str, ...]
    labels: tuple[str, ...]
    created: datetime
    updated: datetime
    expires: datetime | None = None
    example: CorrectedExample | None = None
    owner_backed: bool = False
    note: str = ""
    judged_wrong: bool = False
    """Some review behind it judged the action wrong (else it is advice on a good one)."""

    def prompt_key(self) -> list[Any]:
        """What the agent is told (the part the version hash covers)."""
        ex = None if self.example is None else asdict(self.example)
        return [self.id, self.instruction, self.scope.key(), ex, self.judged_wrong]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("created", "updated", "expires"):
            out[k] = None if out[k] is None else out[k].isoformat()
        for k in ("reviewers", "span_ids", "review_ids", "annotation_ids", "request_ids", "labels"):
            out[k] = list(out[k])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuidanceItem:
        d = dict(data)
        d["scope"] = Scope(**d["scope"])
        d["example"] = None if d.get("example") is None else CorrectedExample(**d["example"])
        for k in ("created", "updated", "expires"):
            d[k] = None if d.get(k) is None else datetime.fromisoformat(d[k])
        for k in ("reviewers", "span_ids", "review_ids", "annotation_ids", "request_ids", "labels"):
            d[k] = tuple(d.get(k) or ())
        return cls(**d)


def guidance_version(items: Iterable[GuidanceItem]) -> str:
    """``gv-`` + a hash of what the active ``items`` tell the agent."""
    return content_hash(sorted(i.prompt_key() for i in items), "gv-")


@dataclass(frozen=True)
class GuidanceSet:
    """Every derived item by status, and the version id of the active ones."""

    active: tuple[GuidanceItem, ...] = ()
    pending: tuple[GuidanceItem, ...] = ()
    conflicts: tuple[GuidanceItem, ...] = ()
    inactive: tuple[GuidanceItem, ...] = ()
    """Expired and overruled items."""
    version: str = field(default="")

    def __post_init__(self) -> None:
        if not self.version:
            object.__setattr__(self, "version", guidance_version(self.active))

    def applicable(
        self, *, node: str | None, tools: Iterable[str] | None = None, tenant: str | None = None
    ) -> list[GuidanceItem]:
        """The active items whose scope covers this prompt."""
        names = None if tools is None else list(tools)
        return [i for i in self.active if i.scope.applies(node=node, tools=names, tenant=tenant)]

    def for_node(
        self, node: str | None, *, tools: Iterable[str] | None = None, tenant: str | None = None
    ) -> GuidanceSet:
        """The active items for one prompt, as a set with its own version id."""
        return GuidanceSet(active=tuple(self.applicable(node=node, tools=tools, tenant=tenant)))

    def item(self, item_id: str) -> GuidanceItem | None:
        for group in (self.active, self.pending, self.conflicts, self.inactive):
            for it in group:
                if it.id == item_id:
                    return it
        return None

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-able form, as published in the audit trail and in Phoenix metadata."""
        return {
            "version": self.version,
            "active": [i.to_dict() for i in self.active],
            "pending": [i.id for i in self.pending],
            "conflicts": [i.id for i in self.conflicts],
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> GuidanceSet:
        """Rebuild the active items (pending/conflict ids are kept only as ids)."""
        active = tuple(GuidanceItem.from_dict(d) for d in data.get("active", ()))
        return cls(active=active, version=str(data.get("version") or guidance_version(active)))


@dataclass(frozen=True)
class GuidanceConfig:
    """How reviews become guidance.

    Args:
        min_reviews: Distinct reviewers needed to activate an item (default 2).
        owners: Reviewers whose single review activates an item (and wins conflicts).
        wrong_labels: Verdict labels meaning the action was wrong.
        right_labels: Verdict labels meaning it was right.
        verdict_name: Annotation name of verdicts.
        guidance_name: Annotation name of free-form guidance.
        human_only: Count only ``annotator_kind == "HUMAN"`` annotations.
        expire_after: Items lapse this long after their newest review (``None``: never).
        max_example_chars: Bound on each part of the corrected example.
    """

    min_reviews: int = 2
    owners: frozenset[str] = frozenset()
    wrong_labels: frozenset[str] = frozenset({"incorrect", "unsafe"})
    right_labels: frozenset[str] = frozenset({"correct"})
    verdict_name: str = VERDICT_NAME
    guidance_name: str = GUIDANCE_NAME
    human_only: bool = True
    expire_after: timedelta | None = None
    max_example_chars: int = 300

    def __post_init__(self) -> None:
        if self.min_reviews < 1:
            raise ConfigurationError(f"min_reviews must be >= 1, got {self.min_reviews!r}")
        object.__setattr__(self, "owners", frozenset(self.owners))
        object.__setattr__(self, "wrong_labels", frozenset(self.wrong_labels))
        object.__setattr__(self, "right_labels", frozenset(self.right_labels))


def normalize_instruction(text: str) -> str:
    """The merge key of an instruction: NFKC, lower case, single spaces, no end marks."""
    t = unicodedata.normalize("NFKC", text)
    t = (
        t.replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
    )
    t = re.sub(r"\s+", " ", t).strip().lower()
    return t.strip(" .!;:,\"'")
