"""Notifications of gate events: signed webhooks and callables, never raising into a gate.

Layer 4: may import ``gates.events``, ``store`` records and the foundation; never ``inbox``.
"""

from __future__ import annotations

from .notifiers import (
    SIGNATURE_HEADER,
    CallableNotifier,
    Notification,
    Notifier,
    WebhookNotifier,
    notifier_observer,
    notify_all,
)
from .signing import (
    InMemoryReplayCache,
    ReplayCache,
    check_delivery,
    default_replay_cache,
    sign,
    sign_delivery,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "CallableNotifier",
    "InMemoryReplayCache",
    "Notification",
    "Notifier",
    "ReplayCache",
    "WebhookNotifier",
    "check_delivery",
    "default_replay_cache",
    "notifier_observer",
    "notify_all",
    "sign",
    "sign_delivery",
    "verify_signature",
]
