"""Guidance from verdicts: collected reviews become small, versioned guidance items.

:func:`derive_guidance` is a pure function of the collected reviews, their resolved
contexts and a :class:`GuidanceConfig`, so the same reviews always give the same
:class:`GuidanceSet` and the same version id (a hash of the active items). The rules:

* **What counts.** A human annotation (``annotator_kind`` HUMAN) named
  ``hitl_verdict`` labelled incorrect/unsafe with an explanation, or named
  ``hitl_guidance`` with an explanation. A verdict and a guidance note by the same
  reviewer on the same span pair up: the note is the instruction, the verdict its label.
* **Merging.** Instructions with the same normalized text (case, spacing, end
  punctuation and quotes ignored) in the same scope (node, tool, tenant) are one item.
* **Activation.** An item is *active* once ``min_reviews`` distinct reviewers back it
  (an anonymous review, as Phoenix's UI writes with auth off, counts once per span) or
  one designated owner does. Otherwise it is *pending*.
* **Conflicts.** An item is flagged *conflict* and not applied when (a) a span it rests
  on was also judged correct by another reviewer, or (b) another item in its scope says
  the opposite (same words once negations are set aside: "always ask" vs "never ask").
  An owner's side wins either way; the other item is *overruled*.
* **Expiry.** With ``expire_after`` (or a review's ``metadata["expires_at"]``) an item
  lapses after its newest review plus that time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ..store.review_records import ReviewRecord
from ._streams import content_hash
from .context import ReviewContext, describe_action
from .guidance import (
    CorrectedExample,
    GuidanceConfig,
    GuidanceItem,
    GuidanceSet,
    ItemStatus,
    Scope,
    normalize_instruction,
)

__all__ = ["InstructionOf", "derive_guidance"]

InstructionOf = Callable[[str, Scope], str]
"""Maps a reviewer's text (and its scope) to the instruction (e.g. a distillation)."""

_NEGATIONS = frozenset({"not", "never", "no", "dont", "don't", "cannot", "can't", "avoid"})
_FILLERS = frozenset({"always", "do", "please", "must", "should", "you"})
_WORD = re.compile(r"[\w']+")


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _polarity(text: str) -> tuple[str, int]:
    words = [w.lower() for w in _WORD.findall(text)]
    neg = sum(1 for w in words if w in _NEGATIONS or w.endswith("n't"))
    core = " ".join(
        w for w in words if w not in _NEGATIONS and w not in _FILLERS and not w.endswith("n't")
    )
    return core, neg % 2


@dataclass
class _Evidence:
    review: ReviewRecord
    reviewer_key: str
    reviewer: str
    label: str | None
    text: str
    ctx: ReviewContext
    owner: bool
    annotation_ids: list[str]
    review_ids: list[str]


def _reviewer(r: ReviewRecord) -> tuple[str, str]:
    """(counting key, display name). Anonymous reviews (UI, auth off) are one reviewer
    together: they can never make up a quorum of distinct reviewers on their own."""
    name = r.reviewer or r.identifier
    if name:
        return name, name
    return "anonymous", "anonymous"


def _evidence(
    reviews: Sequence[ReviewRecord],
    contexts: Mapping[str, ReviewContext],
    cfg: GuidanceConfig,
    instruction_of: InstructionOf | None,
) -> tuple[list[_Evidence], dict[str, list[tuple[str, str | None, bool]]]]:
    """Pair verdicts with guidance notes; also return every verdict label per span."""
    groups: dict[tuple[str, str], dict[str, ReviewRecord]] = {}
    verdicts: dict[str, list[tuple[str, str | None, bool]]] = {}
    for r in reviews:
        if cfg.human_only and r.annotator_kind != "HUMAN":
            continue
        if (r.metadata or {}).get("hitl_unauthorized"):
            continue  # a reviewer without a required role: stored, never counted
        if r.name not in (cfg.verdict_name, cfg.guidance_name):
            continue
        groups.setdefault((r.span_id.lower(), r.identifier), {})[r.name] = r
        key, name = _reviewer(r)
        if r.name == cfg.verdict_name:
            verdicts.setdefault(r.span_id.lower(), []).append((key, r.label, name in cfg.owners))
    out: list[_Evidence] = []
    for (_, _ident), pair in sorted(groups.items()):
        verdict, note = pair.get(cfg.verdict_name), pair.get(cfg.guidance_name)
        label = None if verdict is None else verdict.label
        text = (note.explanation if note is not None else None) or ""
        if not text.strip() and verdict is not None and label in cfg.wrong_labels:
            text = verdict.explanation or ""
        if not text.strip():
            continue
        main = note or verdict
        assert main is not None
        key, name = _reviewer(main)
        ctx = contexts.get(main.review_id) or (contexts.get(verdict.review_id) if verdict else None)
        ctx = ctx or ReviewContext(request_id=main.request_id, trace_id=main.trace_id)
        scope = _scope(main, ctx)
        instruction = _tidy(text)
        if instruction_of is not None:
            instruction = _tidy(instruction_of(instruction, scope)) or instruction
        both = [x for x in (verdict, note) if x is not None]
        ids = [x.phoenix_id for x in both if x.phoenix_id]
        rids = [x.review_id for x in both]
        owner = name in cfg.owners
        out.append(_Evidence(main, key, name, label, instruction, ctx, owner, ids, rids))
    return out, verdicts


def _scope(r: ReviewRecord, ctx: ReviewContext) -> Scope:
    meta = r.metadata or {}
    return Scope(
        node=meta.get("node", ctx.node),
        tool=meta.get("tool", ctx.tool),
        tenant=meta.get("tenant", ctx.tenant),
    )


def _expiry(ev: Sequence[_Evidence], cfg: GuidanceConfig) -> datetime | None:
    explicit = [
        datetime.fromisoformat(str(e.review.metadata["expires_at"]))
        for e in ev
        if (e.review.metadata or {}).get("expires_at")
    ]
    if explicit:
        return min(explicit)
    if cfg.expire_after is None:
        return None
    return max(e.review.created_at for e in ev) + cfg.expire_after


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    text = _tidy(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _build(scope: Scope, ev: list[_Evidence], cfg: GuidanceConfig, now: datetime) -> GuidanceItem:
    ev = sorted(ev, key=lambda e: (e.review.created_at, e.review.review_id))
    first, last = ev[0], ev[-1]
    keys = sorted({e.reviewer_key for e in ev})
    owner = any(e.owner for e in ev)
    latest = next((e for e in reversed(ev) if e.ctx.tool or e.ctx.input), last)
    example = CorrectedExample(
        input=_clip(latest.ctx.input, cfg.max_example_chars),
        did=_clip(describe_action(latest.ctx.tool, latest.ctx.args), cfg.max_example_chars) or None,
        should=_clip(latest.text, cfg.max_example_chars),
    )
    expires = _expiry(ev, cfg)
    active = owner or len(keys) >= cfg.min_reviews
    status: ItemStatus = "active" if active else "pending"
    note = "" if active else f"{len(keys)} of {cfg.min_reviews} reviewers"
    if expires is not None and now >= expires:
        status, note = "expired", f"expired at {expires.isoformat()}"
    return GuidanceItem(
        id=content_hash([scope.key(), normalize_instruction(first.text)], "g-", 10),
        instruction=first.text,
        scope=scope,
        status=status,
        reviewers=tuple(sorted({e.reviewer for e in ev})),
        support=len(keys),
        span_ids=tuple(sorted({e.review.span_id for e in ev})),
        review_ids=tuple(sorted({i for e in ev for i in e.review_ids})),
        annotation_ids=tuple(sorted({i for e in ev for i in e.annotation_ids})),
        request_ids=tuple(sorted({e.ctx.request_id for e in ev if e.ctx.request_id})),
        labels=tuple(sorted({e.label for e in ev if e.label})),
        created=first.review.created_at,
        updated=last.review.updated_at,
        expires=expires,
        example=example,
        owner_backed=owner,
        judged_wrong=any(e.label in cfg.wrong_labels for e in ev if e.label),
        note=note,
    )


def derive_guidance(
    reviews: Sequence[ReviewRecord],
    contexts: Mapping[str, ReviewContext],
    config: GuidanceConfig | None = None,
    *,
    now: datetime,
    instruction_of: InstructionOf | None = None,
) -> GuidanceSet:
    """Derive the guidance set from collected reviews (pure and deterministic).

    Args:
        reviews: Collected reviews (``store.list_reviews(...)``); other annotation
            names and non-human annotators are ignored (see :class:`GuidanceConfig`).
        contexts: The resolved context of each review, by ``review_id``.
        config: Activation, conflict and expiry rules.
        now: The derivation time (expiry is checked against it).
        instruction_of: Maps a reviewer's text (and its scope) to the instruction, e.g.
            a recorded distillation; default: the text itself.

    Returns:
        The :class:`GuidanceSet`; its ``version`` hashes the active items.
    """
    cfg = config or GuidanceConfig()
    evidence, verdicts = _evidence(reviews, contexts, cfg, instruction_of)
    grouped: dict[str, tuple[Scope, list[_Evidence]]] = {}
    for e in evidence:
        scope = _scope(e.review, e.ctx)
        key = content_hash([scope.key(), normalize_instruction(e.text)], "k", 16)
        grouped.setdefault(key, (scope, []))[1].append(e)
    items: list[GuidanceItem] = []
    for scope, ev in grouped.values():
        kept, contested = _uncontested(ev, verdicts, cfg)
        if not kept:
            items.append(
                replace(
                    _build(scope, ev, cfg, now),
                    status="overruled",
                    note="an owner judged it correct",
                )
            )
            continue
        item = _build(scope, kept, cfg, now)
        if contested and not item.owner_backed and item.status != "expired":
            item = replace(item, status="conflict", note="a reviewer judged the same span correct")
        items.append(item)
    items = _polarity_conflicts(items)
    by = {
        s: tuple(sorted((i for i in items if i.status == s), key=lambda i: i.id))
        for s in ("active", "pending", "conflict")
    }
    rest = tuple(
        sorted((i for i in items if i.status in ("expired", "overruled")), key=lambda i: i.id)
    )
    return GuidanceSet(
        active=by["active"], pending=by["pending"], conflicts=by["conflict"], inactive=rest
    )


def _uncontested(
    ev: list[_Evidence],
    verdicts: Mapping[str, list[tuple[str, str | None, bool]]],
    cfg: GuidanceConfig,
) -> tuple[list[_Evidence], bool]:
    """Drop evidence an owner overruled; report whether any other evidence is contested."""
    kept: list[_Evidence] = []
    contested = False
    for e in ev:
        if e.label is not None and e.label in cfg.right_labels:
            kept.append(e)
            continue
        against = [
            (k, owner)
            for k, label, owner in verdicts.get(e.review.span_id.lower(), [])
            if k != e.reviewer_key and label in cfg.right_labels
        ]
        if any(owner for _, owner in against) and not e.owner:
            continue
        contested = contested or bool(against)
        kept.append(e)
    return kept, contested


def _polarity_conflicts(items: list[GuidanceItem]) -> list[GuidanceItem]:
    live = [i for i in items if i.status in ("active", "pending", "conflict")]
    cores = {i.id: _polarity(i.instruction) for i in live}
    out: list[GuidanceItem] = []
    for item in items:
        if item.id not in cores or not cores[item.id][0]:
            out.append(item)
            continue
        core, parity = cores[item.id]
        rivals = [
            o
            for o in live
            if o.id != item.id and o.scope == item.scope and cores[o.id] == (core, 1 - parity)
        ]
        if not rivals or item.owner_backed and not any(o.owner_backed for o in rivals):
            out.append(item)
        elif any(o.owner_backed for o in rivals) and not item.owner_backed:
            out.append(
                replace(
                    item,
                    status="overruled",
                    note=f"an owner-backed item says the opposite ({rivals[0].id})",
                )
            )
        else:
            out.append(
                replace(
                    item, status="conflict", note=f"contradicts {', '.join(o.id for o in rivals)}"
                )
            )
    return out
