"""Signing the decisions the inbox records (Ed25519, ``evidence`` extra).

The inbox signs when it has a signer: ``inbox.signer = Ed25519Signer.from_file(...)``
(or any :class:`~hitl_langgraph.store.keys.Signer`, e.g. a KMS hook), or
``HITL_SIGNING_KEY_FILE``. The signature covers the request id, the action digest the
reviewer was shown, the decision, the reviewer's id and roles and the time; it is kept
in the request row (checked by the gate before it runs anything) and in the ``decided``
audit event (checked by auditors in an evidence bundle).
"""

from __future__ import annotations

import os
from typing import Any

from ..gates.signatures import SIGNATURE_KEY
from ..store.keys import (
    SIGNING_KEY_FILE_ENV,
    Signer,
    decision_payload,
    sign_payload,
    signer_from_env,
)
from ._base import Prepared

__all__ = ["decision_signature", "signer_of", "with_signature"]

_env_cache: dict[str, Signer | None] = {}


def signer_of(inbox: Any) -> Signer | None:
    s = getattr(inbox, "signer", None)
    if s is not None:
        return s  # type: ignore[no-any-return]
    path = os.environ.get(SIGNING_KEY_FILE_ENV, "")
    if not path:
        return None
    if path not in _env_cache:
        _env_cache[path] = signer_from_env()
    return _env_cache[path]


def decision_signature(inbox: Any, prep: Prepared) -> dict[str, Any] | None:
    """The signature record of ``prep``'s decision, or ``None`` without a signer.
    Ed25519 is deterministic, so calling it twice gives the same record."""
    signer = signer_of(inbox)
    if signer is None:
        return None
    rec = prep.record
    roles = sorted(prep.reviewer.roles)
    at = prep.at.isoformat()
    payload = decision_payload(
        request_id=rec.request_id,
        digest=rec.digest,
        decision=prep.decision,
        reviewer=prep.reviewer.id,
        roles=roles,
        at=at,
    )
    return {**sign_payload(signer, payload), "reviewer": prep.reviewer.id, "roles": roles, "at": at}


def with_signature(inbox: Any, prep: Prepared, metadata: dict[str, Any]) -> dict[str, Any]:
    sig = decision_signature(inbox, prep)
    return metadata if sig is None else {**metadata, SIGNATURE_KEY: sig}
