"""Four escalation sweepers at once: each step of each request is applied exactly once.

The sweepers are forced to race: each reads the pending requests, then waits at a barrier
until all four hold the same (stale) snapshot, so every one of them tries every step. Only
the escalation claim in the execution journal stops a step from being audited and
notified four times.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from inbox_graphs import MemLedger, build_app, inbox_policy, interrupted, transfer
from langgraph.checkpoint.memory import InMemorySaver

from hitl_langgraph import open_store
from hitl_langgraph.inbox import EscalationStep, Inbox
from hitl_langgraph.notify import Notification
from hitl_langgraph.store import MemoryStore
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.testing import FrozenClock

SWEEPERS = 4
REQUESTS = 3
STEPS = [
    EscalationStep(after=timedelta(minutes=30), add_roles={"finance-lead"}),
    EscalationStep(after=timedelta(minutes=50), add_roles={"cfo"}),
]


def stale_reads(store: ApprovalStore, barrier: threading.Barrier) -> None:
    """Make each thread's first ``list_requests`` wait until every sweeper has read."""
    real = store.list_requests
    waited: set[int] = set()

    def list_requests(*args: Any, **kwargs: Any) -> Any:
        rows = real(*args, **kwargs)
        me = threading.get_ident()
        if me not in waited:
            waited.add(me)
            barrier.wait(60)
        return rows

    store.list_requests = list_requests  # type: ignore[method-assign]


def test_concurrent_sweepers_escalate_each_step_once(store_url: str) -> None:
    clock = FrozenClock()
    shared = MemoryStore() if store_url == "memory://" else None
    stores = [shared or open_store(store_url) for _ in range(SWEEPERS)]
    app = build_app(
        stores[0], InMemorySaver(), MemLedger(), transfer(), policy=inbox_policy(), clock=clock
    )
    rids = [interrupted(app)[2] for _ in range(REQUESTS)]
    clock.advance(minutes=51)  # both steps are due for every request

    barrier = threading.Barrier(SWEEPERS)
    if shared is not None:
        stale_reads(shared, barrier)
    else:
        for st in stores:
            stale_reads(st, barrier)
    seen: list[Notification] = []
    lock = threading.Lock()

    def notify(n: Notification) -> None:
        with lock:
            seen.append(n)

    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def sweep(i: int) -> None:
        try:
            inbox = Inbox(stores[i], clock=clock, escalation=STEPS, notifiers=[notify])
            results[i] = inbox.escalate_due()
        except BaseException as exc:  # reported below with the sweeper's number
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(SWEEPERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    applied = Counter((e.request_id, e.step) for got in results.values() for e in got)
    assert applied == Counter({(rid, step): 1 for rid in rids for step in (0, 1)})
    audited = Counter(
        (e.request_id, e.data["step"]) for e in stores[0].list_audit() if e.event == "escalated"
    )
    assert audited == applied
    assert Counter((n.request_id, n.extra["step"]) for n in seen if n.kind == "escalated") == (
        applied
    )
    for rid in rids:
        rec = stores[0].get_request(rid)
        assert rec is not None and rec.status == "pending"
        assert rec.approver_roles == ["cfo", "finance", "finance-lead"]
    assert stores[0].verify_audit().ok
    if shared is None:
        for st in stores:
            st.close()
