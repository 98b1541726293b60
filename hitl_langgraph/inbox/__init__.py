"""The approval inbox: pending requests across threads, decided once, by authorized reviewers.

Layer 5: may import ``audit``, ``notify``, ``gates``, ``store``, ``policy`` and the foundation.

::

    from hitl_langgraph.inbox import Inbox, Reviewer

    inbox = Inbox(store, graph)                      # graph=None: record only (split mode)
    page = inbox.pending(tool="transfer_*", role="finance")
    result = inbox.approve(page.items[0].request_id, reviewer=Reviewer("alice", {"finance"}))

See :class:`Inbox` for the semantics (authority, exactly-once, quorum, deadlines).
"""

from __future__ import annotations

from .authority import SYSTEM_ACTOR, Reviewer, check_authority
from .deadlines import EscalationStep
from .inbox import DECIDED_STATUSES, Inbox
from .results import ApplyReport, DecisionResult, Escalation, Page, ReconcileReport, SweepReport

__all__ = [
    "DECIDED_STATUSES",
    "SYSTEM_ACTOR",
    "ApplyReport",
    "DecisionResult",
    "Escalation",
    "EscalationStep",
    "Inbox",
    "Page",
    "ReconcileReport",
    "Reviewer",
    "SweepReport",
    "check_authority",
]
