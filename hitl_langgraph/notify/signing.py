"""Webhook signatures that cover a timestamp and a delivery id, with stale/replay refusal.

The header ``X-HITL-Signature-256`` reads ``t=<unix seconds>,id=<delivery id>,sha256=<hex>``
where the HMAC-SHA256 is over ``f"{t}.{id}.".encode() + body``. A receiver checks it with
:func:`verify_signature` (``True``/``False``) or :func:`check_delivery` (raises
:class:`~hitl_langgraph.errors.WebhookRejected` saying why):

* the signature must match (constant-time compare);
* ``t`` must be within ``tolerance`` seconds of the receiver's clock (default 5 minutes);
* the delivery id must not have been accepted before: a :class:`ReplayCache` remembers
  accepted ids until they would be stale anyway. The default is one in-memory cache per
  process (:func:`default_replay_cache`); several receiver processes should share one
  (implement :class:`ReplayCache` over Redis or a database table with a unique key).

A header in the old form (``sha256=<hex>`` over the body alone) has no timestamp and is
refused, since nothing stops it being replayed forever.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..errors import WebhookRejected

__all__ = [
    "DEFAULT_TOLERANCE",
    "InMemoryReplayCache",
    "ReplayCache",
    "check_delivery",
    "default_replay_cache",
    "sign",
    "sign_delivery",
    "verify_signature",
]

DEFAULT_TOLERANCE = 300.0
"""Seconds a delivery's timestamp may differ from the receiver's clock."""


@runtime_checkable
class ReplayCache(Protocol):
    """Remembers accepted delivery ids (must be atomic across the receivers sharing it)."""

    def add(self, delivery_id: str, expires_at: float) -> bool:
        """Record ``delivery_id`` until ``expires_at``; ``False`` if it was already there."""
        ...


class InMemoryReplayCache:
    """A thread-safe, per-process :class:`ReplayCache` (expired ids are pruned)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, delivery_id: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) > 1024:
                for key in [k for k, exp in self._seen.items() if exp < now]:
                    del self._seen[key]
            exp = self._seen.get(delivery_id)
            if exp is not None and exp >= now:
                return False
            self._seen[delivery_id] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._seen)


_DEFAULT_CACHE = InMemoryReplayCache()


def default_replay_cache() -> InMemoryReplayCache:
    """The process-wide cache :func:`verify_signature` uses when given none."""
    return _DEFAULT_CACHE


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256>`` over ``body`` alone (kept for compatibility; a receiver
    refuses it: use :func:`sign_delivery`)."""
    return "sha256=" + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def _mac(secret: str | bytes, body: bytes, timestamp: int, delivery: str) -> str:
    signed = f"{timestamp}.{delivery}.".encode() + body
    return hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()


def sign_delivery(
    secret: str | bytes, body: bytes, *, delivery: str, timestamp: int | None = None
) -> str:
    """The header value for one delivery: ``t=<ts>,id=<delivery>,sha256=<hex>``."""
    if not delivery or "," in delivery or "=" in delivery:
        raise WebhookRejected(f"delivery id must be non-empty without ',' or '=', got {delivery!r}")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},id={delivery},sha256={_mac(secret, body, ts, delivery)}"


def _parse(header: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in header.strip().split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or key in parts:
            raise WebhookRejected(f"malformed signature header {header!r}")
        parts[key] = value
    return parts


def check_delivery(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    replay_cache: ReplayCache | None = None,
    now: float | None = None,
) -> str:
    """Verify one delivery and remember it; return its delivery id or raise why not."""
    if not header:
        raise WebhookRejected("no signature header: the delivery is not signed")
    parts = _parse(header)
    if "t" not in parts or "id" not in parts:
        raise WebhookRejected(
            "the signature has no timestamp and delivery id (an old-style 'sha256=' header "
            "can be replayed forever); upgrade the sender to sign t=,id=,sha256="
        )
    try:
        ts = int(parts["t"])
    except ValueError:
        raise WebhookRejected(f"signature timestamp {parts['t']!r} is not unix seconds") from None
    delivery = parts["id"]
    expected = _mac(secret, body, ts, delivery)
    if not hmac.compare_digest(expected, parts.get("sha256", "")):
        raise WebhookRejected("signature mismatch: wrong secret, or the body was changed")
    clock = time.time() if now is None else now
    if abs(clock - ts) > tolerance:
        raise WebhookRejected(
            f"stale delivery {delivery}: signed at {ts}, {abs(clock - ts):.0f} s from now "
            f"(tolerance {tolerance:.0f} s); check the clocks or drop it"
        )
    cache = default_replay_cache() if replay_cache is None else replay_cache
    if not cache.add(delivery, ts + tolerance + 1):
        raise WebhookRejected(f"replayed delivery {delivery}: it was already accepted")
    return delivery


def verify_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    replay_cache: ReplayCache | None = None,
    now: float | None = None,
) -> bool:
    """``True`` if the delivery is authentic, fresh and not replayed (:func:`check_delivery`)."""
    try:
        check_delivery(
            secret, body, header, tolerance=tolerance, replay_cache=replay_cache, now=now
        )
    except WebhookRejected:
        return False
    return True
