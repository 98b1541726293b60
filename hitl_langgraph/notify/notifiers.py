"""Notifications on request, decision, expiry and escalation.

A :class:`Notifier` receives :class:`Notification` objects. Two come with the library:

* :class:`WebhookNotifier` - POSTs each notification as JSON, signed with HMAC-SHA256
  over a timestamp, the delivery id and the exact body bytes (header
  ``X-HITL-Signature-256: t=<ts>,id=<delivery>,sha256=<hex>``; check it with
  :func:`verify_signature`, which refuses stale and replayed deliveries; see
  :mod:`hitl_langgraph.notify.signing`). Delivery runs on a background thread with a bounded
  queue and a short timeout, so a slow or dead endpoint never delays a gate; failures
  and drops are logged and counted (``sent``, ``failed``, ``dropped``).
* :class:`CallableNotifier` - calls a function (Slack client, e-mail, a test list).

The gate engine reports requests through its observers: pass
``observers=[notifier_observer(notifier)]`` to :class:`~hitl_langgraph.GatedToolNode`.
The :class:`~hitl_langgraph.inbox.Inbox` calls its ``notifiers`` directly on decisions,
refusals, expiry and escalation. Nothing a notifier does (raise, hang, crash) can block
or break a gate or a decision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..gates.events import GateEvent, GateObserver
from ..store.records import ApprovalRecord
from .signing import sign, sign_delivery, verify_signature

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

logger = logging.getLogger("hitl_langgraph.notify")

SIGNATURE_HEADER = "X-HITL-Signature-256"


@dataclass(frozen=True)
class Notification:
    """What happened to one approval request, as JSON-able fields.

    ``kind`` is one of ``requested``, ``decided``, ``approval`` (one vote of a quorum),
    ``objection``, ``refused``, ``expired``, ``escalated``, ``executed``, ``denied``.
    """

    kind: str
    request_id: str
    at: datetime
    thread_id: str | None = None
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    digest: str | None = None
    score: float | None = None
    route: str | None = None
    decision: str | None = None
    reviewer: str | None = None
    reviewer_roles: tuple[str, ...] = ()
    reason: str | None = None
    approver_roles: tuple[str, ...] = ()
    expires_at: datetime | None = None
    policy_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "request_id": self.request_id,
            "at": self.at.isoformat(),
            "thread_id": self.thread_id,
            "tool": self.tool,
            "args": self.args,
            "digest": self.digest,
            "score": self.score,
            "route": self.route,
            "decision": self.decision,
            "reviewer": self.reviewer,
            "reviewer_roles": list(self.reviewer_roles),
            "reason": self.reason,
            "approver_roles": list(self.approver_roles),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "policy_version": self.policy_version,
            "extra": self.extra,
        }

    @classmethod
    def from_record(
        cls,
        kind: str,
        record: ApprovalRecord,
        *,
        at: datetime,
        decision: str | None = None,
        reviewer: str | None = None,
        reviewer_roles: Iterable[str] = (),
        reason: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Notification:
        return cls(
            kind=kind,
            request_id=record.request_id,
            at=at,
            thread_id=record.thread_id,
            tool=record.tool,
            args=dict(record.args),
            digest=record.digest,
            score=record.score,
            route=record.route,
            decision=decision,
            reviewer=reviewer,
            reviewer_roles=tuple(sorted(reviewer_roles)),
            reason=reason,
            approver_roles=tuple(record.approver_roles),
            expires_at=record.expires_at,
            policy_version=record.policy_version,
            extra=dict(extra or {}),
        )

    @classmethod
    def from_gate_event(cls, event: GateEvent) -> Notification:
        return cls(
            kind=event.kind,
            request_id=event.request_id,
            at=event.at,
            thread_id=event.thread_id,
            tool=event.tool,
            args=dict(event.args),
            digest=event.digest,
            score=event.score,
            route=event.route,
            decision=event.decision,
            reviewer=event.reviewer,
            reviewer_roles=tuple(event.reviewer_roles),
            reason="; ".join(event.reasons) or None,
            policy_version=event.policy_version,
            extra={**event.extra, **({"error": event.error} if event.error else {})},
        )


@runtime_checkable
class Notifier(Protocol):
    """Anything with ``notify(notification)``. It should not raise; if it does, the
    caller logs it and carries on."""

    def notify(self, notification: Notification) -> None: ...


def notify_all(notifiers: Iterable[Notifier], notification: Notification) -> None:
    """Call each notifier; log and swallow whatever they raise."""
    for n in notifiers:
        try:
            n.notify(notification)
        except Exception:
            logger.exception("notifier %r failed on %s notification", n, notification.kind)


def notifier_observer(
    notifier: Notifier, *, kinds: Iterable[str] = ("requested", "decided", "denied")
) -> GateObserver:
    """A gate observer that forwards the engine's events of ``kinds`` to ``notifier``.

    ``GatedToolNode(..., observers=[notifier_observer(WebhookNotifier(url, secret))])``.
    """
    wanted = frozenset(kinds)

    def observe(event: GateEvent) -> None:
        # a decision recorded through the Inbox was already notified by the Inbox (with the
        # reviewer's roles); the gate only reports it to observers such as tracing
        if event.kind == "decided" and event.extra.get("recorded_first"):
            return
        if event.kind in wanted:
            notify_all((notifier,), Notification.from_gate_event(event))

    return observe


class CallableNotifier:
    """Calls ``fn(notification)``; an exception is logged and counted, never raised."""

    def __init__(
        self, fn: Callable[[Notification], object], *, kinds: Iterable[str] | None = None
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"CallableNotifier needs a callable, got {fn!r}")
        self.fn = fn
        self.kinds = None if kinds is None else frozenset(kinds)
        self.sent = 0
        self.failed = 0

    def notify(self, notification: Notification) -> None:
        if self.kinds is not None and notification.kind not in self.kinds:
            return
        try:
            self.fn(notification)
        except Exception:
            self.failed += 1
            logger.exception("notification callback %r failed", self.fn)
        else:
            self.sent += 1


class WebhookNotifier:
    """POST notifications as signed JSON to ``url``.

    Args:
        url: the receiving endpoint (``http://`` or ``https://``).
        secret: the shared HMAC key; the receiver verifies with :func:`verify_signature`.
        timeout: seconds per HTTP request (default 2).
        kinds: only these notification kinds are sent (default: all).
        headers: extra HTTP headers (e.g. an API key).
        background: deliver on a daemon thread (default). ``False`` posts in the
            caller's thread, still bounded by ``timeout`` and never raising.
        queue_size: notifications waiting for the background thread; when full, new
            ones are dropped (counted in ``dropped``) instead of blocking.
        retries: extra attempts after a failed POST (with 0.2 s, 0.4 s... pauses).

    The body is ``{"id", "sent_at", "notification": {...}}``; headers carry
    ``X-HITL-Event`` (the kind), ``X-HITL-Delivery`` (the id) and the signature.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        timeout: float = 2.0,
        kinds: Iterable[str] | None = None,
        headers: Mapping[str, str] | None = None,
        background: bool = True,
        queue_size: int = 1000,
        retries: int = 0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"WebhookNotifier url must be http(s)://..., got {url!r}")
        if not secret:
            raise ConfigurationError("WebhookNotifier needs a non-empty secret to sign bodies")
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.kinds = None if kinds is None else frozenset(kinds)
        self.headers = dict(headers or {})
        self.retries = max(0, retries)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._counter_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str, bytes] | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=queue_size)
            self._thread = threading.Thread(
                target=self._run, name="hitl-webhook-notifier", daemon=True
            )
            self._thread.start()

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.url!r})"

    @staticmethod
    def encode(notification: Notification) -> tuple[str, bytes]:
        """``(delivery_id, body)`` for ``notification``."""
        delivery = uuid.uuid4().hex
        envelope = {
            "id": delivery,
            "sent_at": datetime.now(timezone.utc).isoformat(),
            "notification": notification.to_dict(),
        }
        return delivery, json.dumps(envelope, sort_keys=True, default=str).encode()

    def notify(self, notification: Notification) -> None:
        if self.kinds is not None and notification.kind not in self.kinds:
            return
        try:
            delivery, body = self.encode(notification)
        except Exception as exc:  # an unserialisable extra: count it, never raise
            self._fail(f"could not encode the notification: {exc!r}")
            return
        if self._queue is None:
            self._deliver(notification.kind, delivery, body)
            return
        try:
            self._queue.put_nowait((notification.kind, delivery, body))
        except queue.Full:
            with self._counter_lock:
                self.dropped += 1
            logger.warning(
                "webhook %s: queue full, dropped a %s notification", self.url, notification.kind
            )

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                if item is None:  # close()
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, kind: str, delivery: str, body: bytes) -> bool:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "hitl-langgraph-webhook/1",
            "X-HITL-Event": kind,
            "X-HITL-Delivery": delivery,
            SIGNATURE_HEADER: sign_delivery(self.secret, body, delivery=delivery),
            **self.headers,
        }
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.2 * (2 ** (attempt - 1)))
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    if 200 <= resp.status < 300:
                        with self._counter_lock:
                            self.sent += 1
                        return True
                    error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
            except Exception as exc:  # timeout, refused, DNS, TLS: all just failures
                error = repr(exc)
        self._fail(f"POST {self.url} failed: {error}")
        return False

    def _fail(self, message: str) -> None:
        with self._counter_lock:
            self.failed += 1
            self.last_error = message
        logger.warning("webhook notifier: %s", message)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds for queued notifications; ``True`` if drained."""
        if self._queue is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout`` s) and stop the background thread."""
        if self._queue is None or self._thread is None:
            return
        self.flush(timeout)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=max(0.0, timeout))


def notifiers_from(items: Sequence[Notifier | Callable[[Notification], object]]) -> list[Notifier]:
    """Accept notifier objects or plain functions (wrapped in :class:`CallableNotifier`)."""
    out: list[Notifier] = []
    for item in items:
        if isinstance(item, Notifier):
            out.append(item)
        elif callable(item):
            out.append(CallableNotifier(item))
        else:
            raise ConfigurationError(
                f"notifiers must be Notifier objects (with .notify) or callables, got {item!r}"
            )
    return out
