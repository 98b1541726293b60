"""Checking decision signatures before a gate runs anything (issue: signed decisions).

When a :class:`~hitl_langgraph.store.keys.DecisionVerifier` is configured (the engine's
``decision_verifier`` attribute, or ``HITL_DECISION_PUBLIC_KEYS``), a gate only applies
a decision that was recorded first (through the inbox, which signs it) and whose
Ed25519 signature covers *this* request id, the digest of the action the gate is about
to run (computed by the gate itself, not read from the store), the recorded decision,
the reviewer and their roles. A row forged or edited in the database, or a signature
copied from another request, is refused with :class:`~hitl_langgraph.errors.NotAuthorized`
(and the refusal is audited by the engine).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import NotAuthorized
from ..store.keys import PUBLIC_KEYS_ENV, DecisionVerifier, decision_payload, verifier_from_env
from ..store.records import ApprovalRecord

__all__ = [
    "SIGNATURE_KEY",
    "SIGNED_STATUSES",
    "check_signed",
    "decision_verifier_of",
]

SIGNED_STATUSES = frozenset({"approved", "edited"})
"""Recorded decisions that run an action, so must carry a valid signature. Rejections,
expiry and cancellation never run anything and are not signature-gated."""

SIGNATURE_KEY = "decision_signature"
"""Where the inbox keeps a decision's signature in the request row's metadata."""

_env_cache: dict[str, DecisionVerifier | None] = {}


def decision_verifier_of(engine: Any) -> DecisionVerifier | None:
    """The engine's verifier: its ``decision_verifier`` attribute, else one built from
    ``HITL_DECISION_PUBLIC_KEYS`` (cached per value), else ``None`` (signing off)."""
    v = getattr(engine, "decision_verifier", None)
    if v is not None:
        return v  # type: ignore[no-any-return]
    spec = os.environ.get(PUBLIC_KEYS_ENV, "")
    if not spec:
        return None
    if spec not in _env_cache:
        _env_cache[spec] = verifier_from_env()
    return _env_cache[spec]


def check_signed(
    verifier: DecisionVerifier,
    request_id: str,
    digests: tuple[str, ...],
    stored: ApprovalRecord,
) -> None:
    """Raise :class:`NotAuthorized` unless ``stored``'s decision carries a valid signature
    for ``request_id`` and one of the action ``digests`` the gate computed itself (the
    request-bound digest; the bare action digest of rows written before it)."""
    sig = stored.metadata.get(SIGNATURE_KEY) if isinstance(stored.metadata, dict) else None
    why: str | None
    if not isinstance(sig, dict):
        why = "the decision is not signed"
    else:
        for digest in digests:
            payload = decision_payload(
                request_id=request_id,
                digest=digest,
                decision=stored.decision or {},
                reviewer=sig.get("reviewer"),
                roles=sig.get("roles") or (),
                at=str(sig.get("at")),
            )
            why = verifier.verify(sig, payload)
            if why is None:
                break
        if why is None and sig.get("reviewer") not in (stored.decided_by, None):
            closers = str(stored.decided_by or "").split(",")
            if sig.get("reviewer") not in closers:
                why = (
                    f"signed by {sig.get('reviewer')!r} but recorded as decided by "
                    f"{stored.decided_by!r}"
                )
    if why is not None:
        raise NotAuthorized(
            f"request {request_id}: refusing the recorded {stored.status!r} decision: {why}. "
            "Decision signing is on, so only decisions recorded and signed through the inbox "
            "are applied; decide again through the inbox (or the CLI/UI)",
            request_id=request_id,
        )
