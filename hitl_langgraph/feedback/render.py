"""Render the active guidance for one prompt into a bounded block, most relevant first.

Relevance, in order: how specifically the item's scope matches the prompt (node and
tool and tenant named beat "anywhere"), then the token overlap between the current input
and the item (its instruction and corrected example; a Jaccard index over lower-cased
word tokens without stop words), then how many reviewers back it, then its id (so ties
always break the same way). Items are added while they fit in ``budget`` characters; an
item that does not fit is left out whole (never cut mid-sentence) and counted in
``omitted``. Each line ends with the item id, so every sentence the agent is told can be
traced back to the reviews behind it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .guidance import GuidanceItem, GuidanceSet, guidance_version

__all__ = ["RenderedGuidance", "render_guidance", "similarity", "tokens"]

HEADER = "Reviewer guidance (from human reviews of earlier runs; follow it):"
_TOKEN = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "a an and are as at be by for from has have i in is it of on or that the this to "
    "was were will with you your me my we our do did not"
)
_STOP = frozenset(_STOP_WORDS.split())


def tokens(text: str | None) -> frozenset[str]:
    """Lower-cased word tokens of ``text`` without stop words."""
    if not text:
        return frozenset()
    return frozenset(t for t in _TOKEN.findall(text.lower()) if t not in _STOP)


def similarity(a: str | None, b: str | None) -> float:
    """Jaccard index of the token sets of ``a`` and ``b`` (0 when either is empty)."""
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


@dataclass(frozen=True)
class RenderedGuidance:
    """The block for one prompt and what went into it.

    Attributes:
        text: The block ("" when nothing applies: the prompt is then the base prompt).
        version: The guidance version of the items rendered (``gv-...``).
        source_version: The version of the whole set it was rendered from.
        item_ids: The items rendered, in order.
        omitted: Applicable items left out for the budget.
        items: The rendered items themselves (for provenance).
    """

    text: str
    version: str
    source_version: str
    item_ids: tuple[str, ...]
    omitted: int
    items: tuple[GuidanceItem, ...] = ()

    @property
    def span_ids(self) -> tuple[str, ...]:
        """The reviewed spans behind the rendered items."""
        return tuple(sorted({s for i in self.items for s in i.span_ids}))

    @property
    def reviewers(self) -> tuple[str, ...]:
        return tuple(sorted({r for i in self.items for r in i.reviewers}))


def _specificity(item: GuidanceItem, node: str | None, tools: Sequence[str] | None) -> int:
    s = item.scope
    score = 0
    if s.node is not None and s.node == node:
        score += 2
    if s.tool is not None and tools is not None and s.tool in tools:
        score += 1
    if s.tenant is not None:
        score += 1
    return score


def _item_text(item: GuidanceItem) -> str:
    ex = item.example
    parts = [item.instruction]
    if ex is not None:
        parts += [ex.input or "", ex.did or ""]
    return " ".join(parts)


def _lines(item: GuidanceItem, examples: bool) -> str:
    line = f"- {item.instruction} [{item.id}]"
    ex = item.example
    if examples and ex is not None and (ex.input or ex.did):
        bits = []
        if ex.input:
            bits.append(f"asked: {ex.input!r}")
        if ex.did:
            bits.append(f"the agent did: {ex.did}")
        verdict = (
            "reviewers said that was wrong"
            if item.judged_wrong
            else "reviewers judged it right and added the instruction"
        )
        line += "\n  Example - " + "; ".join(bits) + f"; {verdict}."
    return line


def rank(
    items: Iterable[GuidanceItem],
    *,
    node: str | None,
    tools: Sequence[str] | None,
    input: str | None,
) -> list[GuidanceItem]:
    """``items`` ordered most relevant first (see the module docstring)."""
    return sorted(
        items,
        key=lambda i: (
            -_specificity(i, node, tools),
            -similarity(input, _item_text(i)),
            -i.support,
            i.id,
        ),
    )


def render_guidance(
    guidance: GuidanceSet,
    *,
    node: str | None,
    tools: Iterable[str] | None = None,
    tenant: str | None = None,
    input: str | None = None,
    budget: int = 1200,
    examples: bool = True,
    header: str = HEADER,
) -> RenderedGuidance:
    """Render the items of ``guidance`` that apply to this prompt within ``budget`` chars.

    Args:
        guidance: The guidance set (only its active items are used).
        node: The graph node whose prompt this is.
        tools: The tools the prompt offers (``None``: unknown, nothing excluded by tool).
        tenant: The run's tenant; tenant-scoped items of other tenants never apply.
        input: The current user input, for relevance.
        budget: Maximum length of the block in characters (header included).
        examples: Add each item's corrected example under it when it fits.
        header: The first line of the block.

    Returns:
        The :class:`RenderedGuidance` (its ``text`` is "" when nothing applies).
    """
    names = None if tools is None else list(tools)
    ranked = rank(
        guidance.applicable(node=node, tools=names, tenant=tenant),
        node=node,
        tools=names,
        input=input,
    )
    chosen: list[GuidanceItem] = []
    lines: list[str] = []
    used = len(header)
    for item in ranked:
        for text in (
            (_lines(item, True), _lines(item, False)) if examples else (_lines(item, False),)
        ):
            if used + 1 + len(text) <= budget:
                lines.append(text)
                chosen.append(item)
                used += 1 + len(text)
                break
    text = "\n".join([header, *lines]) if lines else ""
    return RenderedGuidance(
        text=text,
        version=guidance_version(chosen),
        source_version=guidance.version,
        item_ids=tuple(i.id for i in chosen),
        omitted=len(ranked) - len(chosen),
        items=tuple(chosen),
    )
