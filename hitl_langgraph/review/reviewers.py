"""Reviewers as Phoenix users: who made a verdict in the UI, and with which roles.

With authentication on (``PHOENIX_ENABLE_AUTH=true``, ``PHOENIX_SECRET=...``), Phoenix
stamps every annotation made in its UI with the logged-in user (``user_id``, and the
identifier ``px-app:<user id>``). :class:`ReviewerDirectory` maps those Phoenix users to
:class:`~hitl_langgraph.inbox.Reviewer` ids and roles, so a UI verdict is collected under
the reviewer who made it and the queue's authority rules (``required_roles``) apply to
it as they do to inbox decisions.

The mapping lives in the store's hash-chained audit trail (stream
``hitl_review:reviewers``, one ``reviewer_registered`` event per grant), so who was given
which roles, and when, is itself audited. ``hitl review users add NAME --role ROLE``
creates the Phoenix user through Phoenix's admin REST API (``POST /v1/users``, with an
admin API key or ``PHOENIX_ADMIN_SECRET`` as the bearer token) and records the mapping.

With authentication off, UI annotations carry no user: they are collected as
``anonymous`` and count as **at most one reviewer** for guidance that needs several.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import utc_now
from ..errors import ConfigurationError
from ..store.base import ApprovalStore
from ..store.records import AuditEvent
from .phoenix_client import PhoenixClient, PhoenixError

__all__ = [
    "ANONYMOUS",
    "REVIEWERS_STREAM",
    "PhoenixReviewer",
    "ReviewerDirectory",
    "add_reviewer",
]

REVIEWERS_STREAM = "hitl_review:reviewers"
_REGISTERED = "reviewer_registered"
ANONYMOUS = "anonymous"
"""The reviewer of a UI verdict made with authentication off (no Phoenix user)."""

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
PHOENIX_ROLES = ("ADMIN", "MEMBER", "VIEWER")


@dataclass(frozen=True)
class PhoenixReviewer:
    """One mapping: a Phoenix user and the reviewer id and roles it stands for."""

    name: str
    roles: frozenset[str]
    phoenix_user_id: str
    email: str = ""
    phoenix_role: str = "MEMBER"
    registered_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": sorted(self.roles),
            "phoenix_user_id": self.phoenix_user_id,
            "email": self.email,
            "phoenix_role": self.phoenix_role,
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
        }


class ReviewerDirectory:
    """Phoenix user id → reviewer, read from the store's audit trail (cached, follows
    new grants on every lookup)."""

    def __init__(self, store: ApprovalStore) -> None:
        self.store = store
        self._seq = 0
        self._by_user: dict[str, PhoenixReviewer] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        with self._lock:
            for ev in self.store.list_audit(request_id=REVIEWERS_STREAM, after_seq=self._seq):
                self._seq = max(self._seq, ev.seq or 0)
                if ev.event != _REGISTERED:
                    continue
                d = ev.data
                r = PhoenixReviewer(
                    name=str(d["name"]),
                    roles=frozenset(str(x) for x in d.get("roles") or ()),
                    phoenix_user_id=str(d["phoenix_user_id"]),
                    email=str(d.get("email") or ""),
                    phoenix_role=str(d.get("phoenix_role") or "MEMBER"),
                    registered_at=ev.at,
                )
                # one Phoenix user maps to one reviewer; a name moves with its user
                self._by_user = {k: v for k, v in self._by_user.items() if v.name != r.name} | {
                    r.phoenix_user_id: r
                }

    def register(
        self,
        name: str,
        roles: Iterable[str],
        *,
        phoenix_user_id: str,
        email: str = "",
        phoenix_role: str = "MEMBER",
        actor: str | None = None,
        at: datetime | None = None,
    ) -> PhoenixReviewer:
        """Record that Phoenix user ``phoenix_user_id`` is reviewer ``name`` with ``roles``."""
        _check_name(name)
        role_set = frozenset(str(r) for r in roles)
        self.store.append_audit(
            AuditEvent(
                event=_REGISTERED,
                at=at or utc_now(),
                request_id=REVIEWERS_STREAM,
                actor=actor or "hitl review users",
                data={
                    "name": name,
                    "roles": sorted(role_set),
                    "phoenix_user_id": phoenix_user_id,
                    "email": email,
                    "phoenix_role": phoenix_role,
                },
            )
        )
        found = self.by_user_id(phoenix_user_id)
        assert found is not None
        return found

    def by_user_id(self, phoenix_user_id: str | None) -> PhoenixReviewer | None:
        if not phoenix_user_id:
            return None
        self._refresh()
        return self._by_user.get(phoenix_user_id)

    def by_name(self, name: str) -> PhoenixReviewer | None:
        self._refresh()
        return next((r for r in self._by_user.values() if r.name == name), None)

    def all(self) -> list[PhoenixReviewer]:
        self._refresh()
        return sorted(self._by_user.values(), key=lambda r: r.name)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"reviewer name {name!r} is not usable: 1-64 letters, digits, '_', '.', '@' or '-'"
        )


def add_reviewer(
    client: PhoenixClient,
    store: ApprovalStore,
    name: str,
    roles: Iterable[str],
    *,
    email: str | None = None,
    password: str | None = None,
    phoenix_role: str = "MEMBER",
) -> tuple[PhoenixReviewer, str | None]:
    """Create Phoenix user ``name`` (or adopt the existing one) and map it to a reviewer.

    Args:
        client: A client whose API key is an admin's (or ``PHOENIX_ADMIN_SECRET``).
        roles: The reviewer's roles for the queue's authority rules.
        email: Defaults to ``<name>@reviewers.invalid`` (Phoenix requires one).
        password: The initial password; a random one is generated (and returned) when
            ``None``. Phoenix asks the user to change it at first login.
        phoenix_role: ``MEMBER`` (default), ``ADMIN`` or ``VIEWER``. A ``VIEWER`` cannot
            annotate in the UI.

    Returns:
        The mapping, and the generated password (``None`` if one was given or the user
        existed already).

    Raises:
        ConfigurationError: A bad name or Phoenix role, or Phoenix refused (auth off:
            there are no users to create; not an admin key).
    """
    _check_name(name)
    role = phoenix_role.upper()
    if role not in PHOENIX_ROLES:
        raise ConfigurationError(
            f"Phoenix role {phoenix_role!r} is not one of {', '.join(PHOENIX_ROLES)}"
        )
    try:
        users = client.list_users()
    except PhoenixError as exc:
        raise ConfigurationError(
            f"Phoenix at {client.base_url} would not list its users ({exc}). Reviewers are "
            "Phoenix users: run Phoenix with PHOENIX_ENABLE_AUTH=true and PHOENIX_SECRET set, "
            "and give this command an admin API key (PHOENIX_API_KEY) or PHOENIX_ADMIN_SECRET"
        ) from exc
    existing = next((u for u in users if u.get("username") == name), None)
    generated: str | None = None
    if existing is None:
        if password is None:
            generated = password = secrets.token_urlsafe(12)
        try:
            user = client.create_user(
                username=name, email=email or f"{name}@reviewers.invalid", role=role,
                password=password,
            )  # fmt: skip
        except PhoenixError as exc:
            raise ConfigurationError(f"Phoenix refused to create user {name!r}: {exc}") from exc
    else:
        user = existing
    mapped = ReviewerDirectory(store).register(
        name,
        roles,
        phoenix_user_id=str(user["id"]),
        email=str(user.get("email") or ""),
        phoenix_role=str(user.get("role") or role),
    )
    return mapped, generated
