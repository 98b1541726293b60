"""Who may decide what: the :class:`Reviewer` identity and the authority checks.

The identity always comes from the caller (your authenticated session, the CLI's
``--as``), never from a resume payload. The checks, in the order they run:

1. ``"system"`` is reserved for decisions the inbox makes itself (expiry); no reviewer
   may use it.
2. **Roles**: a request whose rule lists ``approver_roles`` may be decided (any decision
   type) only by a reviewer holding at least one of them. No roles on the rule: anyone.
3. **Separation of duties** (on by default): the requester, i.e. the ``user_id`` of the
   run that proposed the action, may not *approve* or *edit* their own request, since
   both make an action run. Rejecting or answering one's own request (withdrawing it)
   stays allowed. A request with no recorded requester cannot be checked and passes.
4. **Decision type**: it must be one the rule allows.
5. **Edited follow-ups**: the reviewer whose edit created a follow-up request may not
   approve or edit that follow-up unless the rule gating it sets
   ``editor_may_approve_followup``.

Ids are compared canonically (:func:`~hitl_langgraph.policy.text.canonical_id`: NFKC,
case-folded, invisible characters removed), so ``Carol``, ``CAROL`` and ``carol\u200b``
are the requester ``carol``. An id mixing scripts (``carоl`` with a Cyrillic ``о``) or
looking like another id on the request without being it is refused outright.

A refusal raises :class:`~hitl_langgraph.errors.NotAuthorized` (or ``InvalidDecision``
for a disallowed type); the inbox records it in the audit trail and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError, InvalidDecision, NotAuthorized
from ..policy.text import canonical_id, confusable, mixed_script, unsafe_text
from ..store.records import ApprovalRecord

__all__ = ["SYSTEM_ACTOR", "Reviewer", "check_authority", "check_edit_target", "same_person"]

SYSTEM_ACTOR = "system"
"""The actor recorded for decisions the inbox applies itself (expiry, escalation)."""

_EXECUTING = frozenset({"approve", "edit"})


@dataclass(frozen=True)
class Reviewer:
    """The person deciding: a stable id (as your identity provider names them) and roles.

    ``Reviewer("alice", {"finance"})`` or ``Reviewer(id="alice", roles=["finance"])``.
    """

    id: str
    roles: frozenset[str] = field(default_factory=frozenset)

    def __init__(self, id: str, roles: Iterable[str] = ()) -> None:
        if not isinstance(id, str) or not id.strip():
            raise ConfigurationError(
                f"Reviewer id must be a non-empty string (the reviewer's user id), got {id!r}"
            )
        if isinstance(roles, str):
            raise ConfigurationError(
                f"Reviewer roles must be a collection of role names, not the string {roles!r}; "
                f"write roles={{{roles!r}}}"
            )
        bad = unsafe_text(id, "the reviewer id")
        if bad is not None:
            raise InvalidDecision(
                f"{bad}; a reviewer id must be plain text (take it from your identity provider)"
            )
        if not canonical_id(id):
            raise ConfigurationError(
                f"Reviewer id {id!r} has no visible characters; use the reviewer's user id"
            )
        object.__setattr__(self, "id", id.strip())
        object.__setattr__(self, "roles", frozenset(str(r) for r in roles))

    @property
    def key(self) -> str:
        """The canonical id every comparison uses (quorum, separation of duties, audit)."""
        return canonical_id(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "roles": sorted(self.roles)}


def _who(reviewer: Reviewer) -> str:
    roles = ", ".join(sorted(reviewer.roles)) or "no roles"
    return f"reviewer {reviewer.id!r} ({roles})"


def same_person(a: str | None, b: str | None) -> bool:
    """Whether two ids name the same person (canonical comparison; ``None`` never matches)."""
    return a is not None and b is not None and canonical_id(a) == canonical_id(b)


def check_identity(
    record: ApprovalRecord, reviewer: Reviewer, others: Iterable[str | None]
) -> None:
    """Refuse a mixed-script id, or one confusable with another id on the request."""
    rid = record.request_id
    scripts = mixed_script(reviewer.id)
    if scripts:
        raise NotAuthorized(
            f"reviewer id {reviewer.id!r} mixes scripts ({', '.join(sorted(scripts))}), so it "
            f"can pass for another person's id; request {rid} was not decided. Use the "
            "reviewer's id exactly as the identity provider issues it",
            request_id=rid,
        )
    lookalike = confusable(reviewer.id, [record.requester, *others])
    if lookalike is not None:
        raise NotAuthorized(
            f"reviewer id {reviewer.id!r} looks like {lookalike!r}, another id on request "
            f"{rid}, without being it; refused as a possible impersonation",
            request_id=rid,
        )


def check_authority(
    record: ApprovalRecord,
    reviewer: Reviewer,
    decision: str,
    *,
    separation_of_duties: bool = True,
    others: Iterable[str | None] = (),
    edited_by: str | None = None,
) -> None:
    """Raise unless ``reviewer`` may make a ``decision`` on ``record``. See the module doc.

    ``others``: the other ids on the request (approvers so far), for the confusable check;
    ``edited_by``: the reviewer whose edit created ``record`` (a follow-up), if any.
    """
    rid = record.request_id
    if reviewer.key == SYSTEM_ACTOR:
        raise NotAuthorized(
            f"the reviewer id {SYSTEM_ACTOR!r} is reserved for decisions the inbox applies "
            f"itself (expiry); decide request {rid} as a named reviewer",
            request_id=rid,
        )
    needed = set(record.approver_roles)
    if needed and not needed & reviewer.roles:
        raise NotAuthorized(
            f"{_who(reviewer)} may not decide request {rid} ({record.tool}): it needs one of "
            f"the roles {sorted(needed)}; ask someone who holds one",
            request_id=rid,
        )
    if (
        separation_of_duties
        and decision in _EXECUTING
        and same_person(record.requester, reviewer.id)
    ):
        raise NotAuthorized(
            f"{_who(reviewer)} requested {rid} ({record.tool}) and may not {decision} it "
            "(separation of duties); another reviewer must decide",
            request_id=rid,
        )
    check_identity(record, reviewer, others)
    if (
        decision in _EXECUTING
        and same_person(edited_by, reviewer.id)
        and not record.metadata.get("editor_may_approve_followup")
    ):
        raise NotAuthorized(
            f"{_who(reviewer)} edited request {record.parent_request_id} into this follow-up "
            f"({rid}, {record.tool}) and may not {decision} it too; another reviewer must "
            "(or set editor_may_approve_followup=True on the rule)",
            request_id=rid,
        )
    if record.allowed_decisions and decision not in record.allowed_decisions:
        raise InvalidDecision(
            f"decision {decision!r} is not allowed for {record.tool} (request {rid}); "
            f"allowed: {list(record.allowed_decisions)}",
            request_id=rid,
        )


def check_edit_target(
    record: ApprovalRecord, reviewer: Reviewer, target_roles: Iterable[str], target_tool: str
) -> None:
    """Refuse an edit whose *new* action needs roles the reviewer lacks.

    ``target_roles`` are the ``approver_roles`` of the rule that gates the edited action.
    Without this check a reviewer allowed to decide a low-stakes call could rewrite it into
    one they may not approve.
    """
    needed = set(target_roles)
    if needed and not needed & reviewer.roles:
        raise NotAuthorized(
            f"{_who(reviewer)} may not edit request {record.request_id} into a call to "
            f"{target_tool}: that action needs one of the roles {sorted(needed)}",
            request_id=record.request_id,
        )
