"""The review tables (sampling decisions, verdicts, Phoenix outbox) behave the same on the
memory, SQLite and Postgres stores (the ``store`` fixture runs each test on all three)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.store import (
    ApprovalStore,
    BudgetWindow,
    OutboxEntry,
    ReviewRecord,
    ReviewSample,
    annotation_key,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
P = "proj"


def sample(request_id: str, **changes: Any) -> ReviewSample:
    base = ReviewSample(
        request_id=request_id,
        project=P,
        sampled=True,
        probability=0.5,
        draw=0.25,
        score=0.6,
        reason="sampled",
        decided_at=T0,
        due_at=T0 + timedelta(hours=24),
        priority=2,
        tool="transfer_funds",
        thread_id="t-1",
        trace_id="a" * 32,
        span_id=f"{abs(hash(request_id)) % 16**16:016x}",
        policy_version="v1",
        metadata={"node": "tools", "n": 1},
    )
    return replace(base, **changes)


def entry(span_id: str = "00f067aa0ba902b7", **changes: Any) -> OutboxEntry:
    name = changes.pop("name", "review_request")
    identifier = changes.pop("identifier", "code:hitl")
    payload = changes.pop(
        "payload",
        {
            "span_id": span_id,
            "name": name,
            "annotator_kind": "CODE",
            "identifier": identifier,
            "result": {"label": "requested", "score": 0.5},
            "metadata": {"priority": 2},
        },
    )
    base = OutboxEntry(
        entry_id=annotation_key(P, span_id, name, identifier),
        project=P,
        span_id=span_id,
        name=name,
        identifier=identifier,
        payload=payload,
        created_at=T0,
        updated_at=T0,
    )
    return replace(base, **changes)


def review(span_id: str = "00f067aa0ba902b7", **changes: Any) -> ReviewRecord:
    name = changes.pop("name", "hitl_verdict")
    identifier = changes.pop("identifier", "human:alice")
    base = ReviewRecord(
        review_id=annotation_key(P, span_id, name, identifier),
        project=P,
        span_id=span_id,
        name=name,
        identifier=identifier,
        annotator_kind="HUMAN",
        source="hitl",
        created_at=T0,
        updated_at=T0,
        collected_at=T0,
        label="correct",
        score=1.0,
        explanation="fine",
        reviewer="alice",
        request_id="r1",
        trace_id="a" * 32,
        metadata={"via": "test"},
    )
    return replace(base, **changes)


# -- sampling decisions -------------------------------------------------------------------


def test_sample_is_put_if_absent_and_round_trips(store: ApprovalStore) -> None:
    s = sample("r1")
    stored, created = store.put_review_sample(s)
    assert created and stored == s
    again, created = store.put_review_sample(replace(s, sampled=False, reason="other"))
    assert not created and again == s
    assert store.get_review_sample("r1") == s
    assert store.get_review_sample("nope") is None
    odd = sample("r2", thread_id=None, trace_id=None, span_id=None, metadata={})
    store.put_review_sample(odd)
    assert store.get_review_sample("r2") == odd


def test_budget_turns_samples_down_atomically_with_the_insert(store: ApprovalStore) -> None:
    hour = BudgetWindow("hour", T0 - timedelta(hours=1), 2)
    for i in range(2):
        stored, _ = store.put_review_sample(sample(f"r{i}"), budgets=[hour])
        assert stored.sampled
    store.put_review_sample(sample("not-drawn", sampled=False, reason="not drawn"), budgets=[hour])
    over, created = store.put_review_sample(sample("r3"), budgets=[hour])
    assert created and not over.sampled and over.reason == "budget hour (2) exhausted"
    assert store.get_review_sample("r3") == over
    # samples before the window and other projects do not count
    later = BudgetWindow("hour", T0 + timedelta(minutes=1), 2)
    ok, _ = store.put_review_sample(
        sample("r4", decided_at=T0 + timedelta(minutes=2)), budgets=[later]
    )
    assert ok.sampled
    other, _ = store.put_review_sample(sample("o1", project="other"), budgets=[hour])
    assert other.sampled
    day = BudgetWindow("day", T0 - timedelta(days=1), 3)
    denied, _ = store.put_review_sample(sample("r5"), budgets=[later, day])
    assert not denied.sampled and denied.reason == "budget day (3) exhausted"


def test_outbox_is_written_with_a_sample_only_if_it_stays_sampled(store: ApprovalStore) -> None:
    one = BudgetWindow("hour", T0 - timedelta(hours=1), 1)
    store.put_review_sample(sample("r1"), budgets=[one], outbox=entry("1" * 16))
    store.put_review_sample(sample("r2"), budgets=[one], outbox=entry("2" * 16))
    store.put_review_sample(sample("r3", sampled=False), outbox=entry("3" * 16))
    store.put_review_sample(sample("r1"), outbox=entry("4" * 16))  # replay: not created
    assert [e.span_id for e in store.list_outbox()] == ["1" * 16]


def test_samples_list_oldest_due_first_with_filters_and_keyset(store: ApprovalStore) -> None:
    for i, hours in enumerate([5, 1, 3, 1]):
        store.put_review_sample(
            sample(f"r{i}", due_at=T0 + timedelta(hours=hours), span_id=f"{i:016x}")
        )
    store.put_review_sample(sample("skip", sampled=False))
    store.put_review_sample(sample("elsewhere", project="other"))
    rows = store.list_review_samples(P)
    assert [r.request_id for r in rows] == ["r1", "r3", "r2", "r0"]
    assert [r.request_id for r in store.list_review_samples(P, limit=2)] == ["r1", "r3"]
    after = (rows[1].due_at, rows[1].request_id)
    assert [r.request_id for r in store.list_review_samples(P, after=after)] == ["r2", "r0"]
    assert [r.request_id for r in store.list_review_samples(P, sampled=False)] == ["skip"]
    assert len(store.list_review_samples(None, sampled=None)) == 6
    picked = store.list_review_samples(P, span_ids=[f"{2:016x}", f"{0:016x}"])
    assert [r.request_id for r in picked] == ["r2", "r0"]
    assert store.list_review_samples(P, span_ids=[]) == []
    assert store.count_review_samples(P) == 4
    assert store.count_review_samples(P, sampled=None) == 5
    assert store.count_review_samples(P, due_before=T0 + timedelta(hours=2)) == 2
    assert store.count_review_samples(P, since=T0 + timedelta(seconds=1)) == 0
    with pytest.raises(ConfigurationError):
        store.list_review_samples(P, limit=-1)


def test_review_closes_its_sample_once_and_stats_follow(store: ApprovalStore) -> None:
    now = T0 + timedelta(hours=30)
    store.put_review_sample(sample("r1"))  # due T0+24h: past due at `now`
    store.put_review_sample(
        sample("r2", decided_at=T0 + timedelta(hours=1), due_at=now + timedelta(hours=1))
    )
    store.put_review_sample(sample("r3", sampled=False))
    stats = store.review_stats(P, now=now)
    assert (stats.sampled, stats.reviewed, stats.pending, stats.past_due) == (2, 0, 2, 1)
    assert stats.oldest_pending_at == T0 and stats.next_due_at == T0 + timedelta(hours=24)

    at = T0 + timedelta(hours=2)
    store.put_review(review(request_id="r1", updated_at=at), closes=True)
    store.put_review(
        review(
            identifier="human:bob", reviewer="bob", request_id="r1", updated_at=at + timedelta(1)
        ),
        closes=True,
    )
    closed = store.get_review_sample("r1")
    assert closed is not None and closed.reviewed_at == at and closed.reviewed_by == "alice"
    store.put_review(review(span_id="1" * 16, request_id="r2"))  # closes=False: stays open
    assert [s.request_id for s in store.list_review_samples(P)] == ["r2"]
    assert [s.request_id for s in store.list_review_samples(P, reviewed=True)] == ["r1"]
    assert store.count_review_samples(P, reviewed=True) == 1
    stats = store.review_stats(P, now=now)
    assert (stats.sampled, stats.reviewed, stats.pending, stats.past_due) == (2, 1, 1, 0)
    assert stats.oldest_pending_at == T0 + timedelta(hours=1)
    empty = store.review_stats("nobody", now=now)
    assert (empty.sampled, empty.pending, empty.oldest_pending_at) == (0, 0, None)


# -- collected verdicts -------------------------------------------------------------------


def test_put_review_upserts_on_the_annotation_key(store: ApprovalStore) -> None:
    r = review()
    stored, changed = store.put_review(r)
    assert changed and stored == r
    # the same verdict again (say, collected back from Phoenix): unchanged, id filled in
    echo = replace(
        r, source="API", phoenix_id="U3BhbkFubm90YXRpb246MQ==", updated_at=T0 + timedelta(1)
    )
    stored, changed = store.put_review(echo)
    assert not changed and stored.phoenix_id == echo.phoenix_id and stored.source == "hitl"
    # a newer, different verdict replaces it; an older one does not
    newer = replace(r, label="unsafe", score=0.0, updated_at=T0 + timedelta(hours=1))
    stored, changed = store.put_review(newer)
    assert changed and stored == newer
    stale = replace(r, label="incorrect", score=0.0, updated_at=T0 + timedelta(minutes=1))
    stored, changed = store.put_review(stale)
    assert not changed and stored.label == "unsafe"
    (only,) = store.list_reviews(P)
    assert only.label == "unsafe" and only.phoenix_id is None  # replaced row, fresh id
    # another identifier is another row: an LLM verdict never replaces a human one
    store.put_review(review(identifier="llm:judge", annotator_kind="LLM", label="incorrect"))
    assert {x.identifier for x in store.list_reviews(P, span_id=r.span_id)} == {
        "human:alice",
        "llm:judge",
    }


def test_list_reviews_filters_and_keyset(store: ApprovalStore) -> None:
    for i in range(3):
        store.put_review(
            review(span_id=f"{i:016x}", request_id=f"r{i}", collected_at=T0 + timedelta(i))
        )
    store.put_review(
        review(name="hitl_guidance", label=None, score=None, explanation="slower", request_id="g")
    )
    store.put_review(review(span_id="9" * 16, project="other"))
    assert len(store.list_reviews()) == 5
    assert len(store.list_reviews(P)) == 4
    assert [r.request_id for r in store.list_reviews(P, name="hitl_verdict")] == ["r0", "r1", "r2"]
    assert [r.name for r in store.list_reviews(P, request_id="r1")] == ["hitl_verdict"]
    first = store.list_reviews(P, name="hitl_verdict", limit=1)
    rest = store.list_reviews(
        P, name="hitl_verdict", after=(first[0].collected_at, first[0].review_id)
    )
    assert [r.request_id for r in rest] == ["r1", "r2"]
    (guidance,) = store.list_reviews(P, name="hitl_guidance")
    assert guidance.label is None and guidance.explanation == "slower"


def test_review_and_its_outbox_entries_are_written_together(store: ApprovalStore) -> None:
    verdict = entry(name="hitl_verdict", identifier="human:alice")
    guidance = entry(name="hitl_guidance", identifier="human:alice")
    store.put_review(review(), outbox=[verdict, guidance])
    assert {e.name for e in store.list_outbox()} == {"hitl_verdict", "hitl_guidance"}


# -- outbox ---------------------------------------------------------------------------------


def test_outbox_upsert_mark_and_revisions(store: ApprovalStore) -> None:
    e = entry()
    assert store.put_outbox(e) == e
    assert store.put_outbox(replace(e, created_at=T0 + timedelta(1))) == e  # same payload
    assert store.mark_outbox(
        e.entry_id,
        revision=1,
        status="pending",
        at=T0,
        error="boom",
        next_attempt_at=T0 + timedelta(minutes=1),
    )
    (retry,) = store.list_outbox()
    assert (retry.attempts, retry.last_error, retry.next_attempt_at) == (
        1,
        "boom",
        T0 + timedelta(minutes=1),
    )
    assert store.list_outbox(due_at=T0) == []
    assert store.list_outbox(due_at=T0 + timedelta(minutes=1)) == [retry]

    assert store.mark_outbox(
        e.entry_id, revision=1, status="mirrored", at=T0 + timedelta(2), phoenix_id="px-1"
    )
    (done,) = store.list_outbox(status="mirrored")
    assert (
        done.attempts == 2 and done.mirrored_at == T0 + timedelta(2) and done.phoenix_id == "px-1"
    )
    assert done.next_attempt_at is None and done.last_error is None
    assert store.put_outbox(e) == done  # re-queueing the same write keeps it mirrored
    assert store.count_outbox() == 0 and store.count_outbox(status="mirrored") == 1

    changed_payload = {**e.payload, "metadata": {"priority": 1}}
    again = store.put_outbox(replace(e, payload=changed_payload, updated_at=T0 + timedelta(3)))
    assert (again.revision, again.status, again.attempts, again.phoenix_id) == (
        2,
        "pending",
        0,
        None,
    )
    assert again.payload == changed_payload and again.created_at == T0
    assert not store.mark_outbox(e.entry_id, revision=1, status="mirrored", at=T0)  # stale send
    assert store.list_outbox() == [again]
    assert not store.mark_outbox("unknown", revision=1, status="mirrored", at=T0)
    assert store.mark_outbox(e.entry_id, revision=2, status="failed", at=T0, error="422: bad")
    assert store.count_outbox(status="failed") == 1 and store.count_outbox(status=None) == 1
    with pytest.raises(ConfigurationError):
        store.count_outbox(status="lost")  # type: ignore[arg-type]


def test_outbox_order_project_and_limit(store: ApprovalStore) -> None:
    for i in (3, 1, 2):
        store.put_outbox(entry(f"{i:016x}", created_at=T0 + timedelta(seconds=i)))
    store.put_outbox(replace(entry("f" * 16), project="other", entry_id="other-1"))
    assert [e.span_id for e in store.list_outbox(project=P)] == [f"{i:016x}" for i in (1, 2, 3)]
    assert len(store.list_outbox(limit=2)) == 2
    assert store.count_outbox(project="other") == 1 and store.count_outbox() == 4
    payload = store.list_outbox(project="other")[0].payload
    assert payload["result"] == {"label": "requested", "score": 0.5}


def test_payload_compares_as_json(store: ApprovalStore) -> None:
    """A payload holding tuples equals its JSON round trip: re-queueing changes nothing."""
    e = entry(payload={"span_id": "x", "tags": ("a", "b"), "n": 1})
    first = store.put_outbox(e)
    assert first.payload["tags"] == ["a", "b"]
    assert store.put_outbox(e).revision == 1


def test_threads_never_overspend_the_budget(store: ApprovalStore) -> None:
    budget = BudgetWindow("hour", T0 - timedelta(hours=1), 5)
    barrier = threading.Barrier(12)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        stored, _ = store.put_review_sample(sample(f"r{i}"), budgets=[budget])
        with lock:
            results.append(stored.sampled)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 5 and len(results) == 12
    assert store.count_review_samples(P) == 5
