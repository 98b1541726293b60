"""Custom auth for the example deployment (``auth`` in ``langgraph.auth.json``).

A demo token table from ``HITL_EXAMPLE_TOKENS`` (JSON: token -> {"identity", "roles"}).
In production verify a JWT from your identity provider here instead; whatever you
return is what :func:`hitl_langgraph.server.reviewer_from_user` turns into the
reviewer recorded for a decision (roles from ``roles`` or ``role:<name>`` permissions).
"""

from __future__ import annotations

import json
import os

from langgraph_sdk import Auth

auth = Auth()
TOKENS: dict[str, dict[str, object]] = json.loads(os.environ.get("HITL_EXAMPLE_TOKENS", "{}"))


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    scheme, _, token = (authorization or "").partition(" ")
    user = TOKENS.get(token) if scheme.lower() == "bearer" else None
    if user is None:
        raise Auth.exceptions.HTTPException(status_code=401, detail="unknown or missing token")
    roles = [str(r) for r in user.get("roles", [])]  # type: ignore[attr-defined]
    return {
        "identity": str(user["identity"]),
        "permissions": [f"role:{r}" for r in roles],
    }
