"""Quorum approvals (four-eyes and up), made race-free with the store's claims.

``update_request`` can compare-and-set only on ``status``, so two reviewers appending to
``approvals`` at once could lose one of the approvals. Instead each approval takes one
of ``quorum`` numbered *slots* in the execution journal (``claim_execution`` succeeds
for exactly one caller per key, across threads and processes):

* ``quorum:<request_id>:reviewer:<id>`` - at most one approval per reviewer;
* ``quorum:<request_id>:slot:<k>`` for ``k = 1..N`` - the reviewer tries the slots in
  order and keeps the first free one; the slot's ``worker`` field holds the approval
  (reviewer, roles, time, reason) as JSON.

Whoever takes slot ``N`` completes the quorum and sets the status to ``approved`` (a
status compare-and-set, so a concurrent rejection still wins or loses cleanly). The
slots are the source of truth; the row's ``approvals`` list is a copy kept for display.
If the completing reviewer crashes after taking slot ``N``, the next approval attempt
finds every slot taken and completes the quorum for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..policy.text import canonical_id
from ..store.base import ApprovalStore
from ..store.records import ApprovalRecord
from .authority import Reviewer, same_person

__all__ = ["QuorumVote", "approvals_of", "reviewer_key", "slot_key", "take_slot"]


def slot_key(request_id: str, k: int) -> str:
    return f"quorum:{request_id}:slot:{k}"


def reviewer_key(request_id: str, reviewer_id: str) -> str:
    """One approval per person: keyed by the canonical id (``Alice`` is ``alice``)."""
    return f"quorum:{request_id}:reviewer:{canonical_id(reviewer_id)}"


@dataclass(frozen=True)
class QuorumVote:
    """The outcome of :func:`take_slot`."""

    slot: int | None
    """The slot taken (1-based), or ``None`` if every slot was already taken."""
    duplicate: bool
    """The reviewer already approved this request (nothing was taken)."""
    approvals: list[dict[str, Any]]
    """Every approval recorded in the slots, in slot order."""


def approvals_of(store: ApprovalStore, record: ApprovalRecord) -> list[dict[str, Any]]:
    """The approvals recorded in ``record``'s slots (quorum 1: the row's own list)."""
    if record.quorum <= 1:
        return list(record.approvals)
    out: list[dict[str, Any]] = []
    for k in range(1, record.quorum + 1):
        ex = store.get_execution(slot_key(record.request_id, k))
        if ex is None:
            break
        try:
            vote = json.loads(ex.worker)
        except ValueError:
            vote = {"reviewer": ex.worker}
        if isinstance(vote, dict):
            out.append(vote)
    return out


def take_slot(
    store: ApprovalStore,
    record: ApprovalRecord,
    reviewer: Reviewer,
    *,
    at: datetime,
    reason: str | None,
) -> QuorumVote:
    """Record ``reviewer``'s approval in the next free slot of ``record``'s quorum."""
    rid = record.request_id
    current = approvals_of(store, record)
    if any(same_person(str(v.get("reviewer")), reviewer.id) for v in current):
        return QuorumVote(None, True, current)
    if not store.claim_execution(reviewer_key(rid, reviewer.id), worker=reviewer.id, at=at):
        return QuorumVote(None, True, approvals_of(store, record))
    vote = json.dumps(
        {
            "reviewer": reviewer.id,
            "roles": sorted(reviewer.roles),
            "at": at.isoformat(),
            "reason": reason,
        },
        sort_keys=True,
    )
    for k in range(len(current) + 1, record.quorum + 1):
        if store.claim_execution(slot_key(rid, k), worker=vote, at=at):
            return QuorumVote(k, False, approvals_of(store, record))
    store.release_execution(reviewer_key(rid, reviewer.id))  # not counted: may vote again
    return QuorumVote(None, False, approvals_of(store, record))
