"""The reviewer a request was authenticated as, from the Agent Server's custom auth.

With ``auth`` in ``langgraph.json`` the server authenticates every request; your
``@auth.authenticate`` handler returns the user (``identity``, ``permissions`` and any
extra fields). :func:`reviewer_from_user` maps that user to a
:class:`~hitl_langgraph.inbox.Reviewer`, so the identity and roles recorded and checked
for a decision are the ones the server verified - not names a client typed.

Roles are read from the user's ``roles`` field if it has one, else from permissions
written ``role:<name>`` (``role:finance`` -> ``finance``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import NotAuthorized
from ..inbox.authority import Reviewer

__all__ = ["ROLE_PREFIX", "reviewer_from_user"]

ROLE_PREFIX = "role:"


def _field(user: Any, name: str) -> Any:
    if isinstance(user, Mapping):
        return user.get(name)
    try:
        return user[name]
    except (KeyError, TypeError, IndexError):
        return getattr(user, name, None)


def reviewer_from_user(user: Any) -> Reviewer:
    """The :class:`Reviewer` for an authenticated server user (``request.user`` in a
    custom route, ``ctx.user`` in an ``@auth.on`` handler, or the dict your
    ``@auth.authenticate`` returned). Raises :class:`NotAuthorized` for an
    unauthenticated user."""
    if user is None or not bool(_field(user, "is_authenticated") in (None, True)):
        raise NotAuthorized(
            "no authenticated user: the Agent Server's auth must authenticate the caller "
            "(configure `auth` in langgraph.json and send a token)"
        )
    identity = _field(user, "identity")
    if not isinstance(identity, str) or not identity.strip():
        raise NotAuthorized(
            "the authenticated user has no identity; return {'identity': ...} from your "
            "@auth.authenticate handler"
        )
    roles_field = _field(user, "roles")
    roles: Iterable[str]
    if isinstance(roles_field, (list, tuple, set, frozenset)):
        roles = [str(r) for r in roles_field]
    else:
        perms = _field(user, "permissions") or ()
        roles = [p[len(ROLE_PREFIX) :] for p in perms if str(p).startswith(ROLE_PREFIX)]
    return Reviewer(identity, roles)
