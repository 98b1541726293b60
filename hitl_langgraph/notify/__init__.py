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
    sign,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "CallableNotifier",
    "Notification",
    "Notifier",
    "WebhookNotifier",
    "notifier_observer",
    "notify_all",
    "sign",
    "verify_signature",
]
