"""Notifiers: a real webhook on 127.0.0.1 (HMAC checked), callables, and failure isolation."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from inbox_graphs import MemLedger, build_app, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import ConfigurationError, MemoryStore, NotAuthorized
from hitl_langgraph.inbox import Inbox, Reviewer
from hitl_langgraph.notify import (
    SIGNATURE_HEADER,
    CallableNotifier,
    Notification,
    WebhookNotifier,
    notifier_observer,
    verify_signature,
)

SECRET = "s3cret-key"


class Receiver:
    """A local HTTP endpoint recording what it receives; ``status``/``delay`` configurable."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, bytes]] = []  # (case-insensitive headers, body)
        self.status = 200
        self.delay = 0.0
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                receiver.requests.append((self.headers, body))
                receiver.got.set()
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def note(kind: str = "decided") -> Notification:
    return Notification(
        kind=kind,
        request_id="req_1",
        at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        tool="transfer_funds",
        args={"amount": 9000},
        reviewer="alice",
        reviewer_roles=("finance",),
        decision="approve",
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_posts_signed_json(receiver: Receiver) -> None:
    hook = WebhookNotifier(receiver.url, SECRET, headers={"X-Api-Key": "k"})
    hook.notify(note())
    assert hook.flush(5) and hook.sent == 1 and hook.failed == 0
    ((headers, body),) = receiver.requests
    ts, delivery = headers[SIGNATURE_HEADER].split(",")[:2]
    assert delivery == f"id={headers['X-HITL-Delivery']}"
    signed = f"{ts[2:]}.{delivery[3:]}.".encode() + body
    expected = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"{ts},{delivery},{expected}"
    assert not verify_signature("other-key", body, headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET, body + b" ", headers[SIGNATURE_HEADER])
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET, body, None)
    assert headers["Content-Type"] == "application/json" and headers["X-Api-Key"] == "k"
    assert headers["X-HITL-Event"] == "decided"
    payload = json.loads(body)
    assert payload["id"] == headers["X-HITL-Delivery"]
    n = payload["notification"]
    assert n["kind"] == "decided" and n["reviewer"] == "alice" and n["args"] == {"amount": 9000}
    assert n["at"] == "2026-01-01T00:00:00+00:00"
    hook.close()


def test_webhook_failures_are_counted_never_raised(receiver: Receiver) -> None:
    receiver.status = 500
    hook = WebhookNotifier(receiver.url, SECRET, background=False, retries=1)
    hook.notify(note())
    assert hook.failed == 1 and hook.sent == 0 and "HTTP 500" in (hook.last_error or "")
    assert len(receiver.requests) == 2  # one retry

    dead = WebhookNotifier(f"http://127.0.0.1:{free_port()}/", SECRET, background=False)
    dead.notify(note())
    assert dead.failed == 1 and "refused" in (dead.last_error or "").lower()

    receiver.status, receiver.delay = 200, 2.5
    slow = WebhookNotifier(receiver.url, SECRET, timeout=0.2, background=False)
    t = time.monotonic()
    slow.notify(note())
    # the 0.2 s timeout cuts the 2.5 s answer short: 1 s is 5x the timeout and 2.5x below
    # what waiting for the answer would take
    assert time.monotonic() - t < 1.0 and slow.failed == 1


def test_background_delivery_never_blocks_the_caller(receiver: Receiver) -> None:
    receiver.delay = 0.2
    hook = WebhookNotifier(receiver.url, SECRET, queue_size=2, timeout=3)
    t = time.monotonic()
    for _ in range(5):
        hook.notify(note())
    # queued, not sent inline: five inline sends would take >= 1 s (0.2 s each), queueing
    # takes microseconds; 0.5 s is 2x below the first and far above the second
    assert time.monotonic() - t < 0.5
    assert hook.flush(10)
    assert hook.sent + hook.dropped == 5 and hook.dropped >= 1
    hook.close()
    assert not hook._thread or not hook._thread.is_alive()


def test_kinds_filter_and_validation(receiver: Receiver) -> None:
    hook = WebhookNotifier(receiver.url, SECRET, kinds={"expired"}, background=False)
    hook.notify(note("decided"))
    hook.notify(note("expired"))
    assert [h["X-HITL-Event"] for h, _ in receiver.requests] == ["expired"]
    with pytest.raises(ConfigurationError, match="http"):
        WebhookNotifier("ftp://x", SECRET)
    with pytest.raises(ConfigurationError, match="secret"):
        WebhookNotifier(receiver.url, "")


def test_callable_notifier_swallows_errors() -> None:
    def boom(n: Notification) -> None:
        raise RuntimeError("slack is down")

    cb = CallableNotifier(boom)
    cb.notify(note())
    assert cb.failed == 1 and cb.sent == 0
    with pytest.raises(ConfigurationError):
        CallableNotifier(42)  # type: ignore[arg-type]


def test_gate_and_inbox_notify_on_request_decision_and_refusal(receiver: Receiver) -> None:
    store = MemoryStore()
    hook = WebhookNotifier(receiver.url, SECRET)
    seen: list[Notification] = []

    def broken(n: Notification) -> None:
        raise RuntimeError("never breaks the gate")

    observers = (notifier_observer(hook), notifier_observer(CallableNotifier(broken)))
    ledger = MemLedger()
    app = build_app(store, InMemorySaver(), ledger, transfer(), observers=observers)
    inbox = Inbox(store, app, notifiers=[hook, seen.append, broken])
    _, _, rid = interrupted(app)
    with pytest.raises(NotAuthorized):
        inbox.approve(rid, reviewer=Reviewer("eve", {"ops"}))
    assert inbox.approve(rid, reviewer=Reviewer("alice", {"finance"})).resumed
    assert ledger.count("transfer_funds") == 1
    assert hook.flush(5)
    kinds = [h["X-HITL-Event"] for h, _ in receiver.requests]
    assert kinds == ["requested", "refused", "decided"], kinds
    assert [n.kind for n in seen] == ["refused", "decided"]
    assert seen[1].reviewer == "alice" and seen[1].reviewer_roles == ("finance",)
    assert seen[1].tool == "transfer_funds" and seen[1].request_id == rid
    for headers, body in receiver.requests:
        assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER])
    hook.close()


def test_unreachable_webhook_does_not_slow_the_gate() -> None:
    store = MemoryStore()
    hook = WebhookNotifier(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=5)
    ledger = MemLedger()
    app = build_app(
        store, InMemorySaver(), ledger, transfer(), observers=(notifier_observer(hook),)
    )
    inbox = Inbox(store, app, notifiers=[hook])
    t = time.monotonic()
    _, _, rid = interrupted(app)
    inbox.approve(rid, reviewer=Reviewer("alice", {"finance"}))
    # a gate that waited on the hook could wait its 5 s timeout per notification; the run
    # and the decision take well under 1 s, so 2 s keeps 2x margin on both sides
    assert time.monotonic() - t < 2 and ledger.count("transfer_funds") == 1
    assert hook.flush(10) and hook.failed == 2
    hook.close()
