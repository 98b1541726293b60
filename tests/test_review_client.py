"""Fast unit tests of the review package over an in-process fake Phoenix
(``fake_phoenix.py``, an ``httpx.MockTransport``): client errors and retries, idempotent
configs, the spool's failure handling, the queue's validation and collection, the CLI."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fake_phoenix import FakePhoenix

from hitl_langgraph.errors import ConfigurationError
from hitl_langgraph.review import (
    BackgroundSync,
    InvalidVerdict,
    PhoenixConflict,
    PhoenixError,
    PhoenixNotFound,
    PhoenixUnavailable,
    ReviewOptions,
    ReviewQueue,
    Spool,
    ensure_annotation_configs,
    human_identifier,
    resolve_base_url,
    review_request_entry,
)
from hitl_langgraph.review import cli as review_cli
from hitl_langgraph.store import MemoryStore, ReviewSample, open_store

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
P = "proj"
SPAN = "00f067aa0ba902b7"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def sample(request_id: str, span_id: str | None = SPAN, **kw: Any) -> ReviewSample:
    return ReviewSample(
        request_id=request_id, project=P, sampled=True, probability=0.5, draw=0.1, score=0.7,
        reason="sampled", decided_at=T0, due_at=T0 + timedelta(hours=24), priority=2,
        tool="transfer_funds", trace_id="t" * 32, span_id=span_id, **kw,
    )  # fmt: skip


def queued(store: MemoryStore, request_id: str, span_id: str) -> ReviewSample:
    s = sample(request_id, span_id)
    store.put_review_sample(s, outbox=review_request_entry(s, now=T0))
    return s


# -- client -------------------------------------------------------------------------------------


def test_base_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHOENIX_BASE_URL", raising=False)
    monkeypatch.delenv("PHOENIX_COLLECTOR_ENDPOINT", raising=False)
    assert resolve_base_url() == "http://127.0.0.1:6006"
    assert resolve_base_url("localhost:7000/") == "http://localhost:7000"
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", "http://px:6006/v1/traces")
    assert resolve_base_url() == "http://px:6006"
    monkeypatch.setenv("PHOENIX_BASE_URL", "https://phoenix.example.com")
    assert resolve_base_url() == "https://phoenix.example.com"


def test_project_reads_retry_the_404_of_a_new_project() -> None:
    fake = FakePhoenix()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:  # the first span arrives while we wait
            fake.add_span(P, SPAN)

    client = fake.client(sleep=sleep, project_wait=5.0)
    assert [s["context"]["span_id"] for s in client.spans(P)] == [SPAN]
    assert slept == [0.1, 0.2, 0.4]
    with pytest.raises(PhoenixNotFound, match="first span arrives") as info:
        fake.client(project_wait=0.0).spans("nobody")
    assert info.value.status_code == 404 and "nobody" in info.value.url
    assert fake.client().get_project("nobody") is None


def test_errors_are_typed_and_say_what_to_do() -> None:
    fake = FakePhoenix(down=True)
    with pytest.raises(PhoenixUnavailable, match=r"could not reach Phoenix .*`hitl phoenix`"):
        fake.client().get_project(P)
    assert not fake.client().healthy()
    fake.down, fake.fail_status = False, 401
    with pytest.raises(PhoenixError, match="PHOENIX_API_KEY") as info:
        fake.client().get_project(P)
    assert info.value.status_code == 401 and info.value.detail == "injected failure"
    fake.fail_status = None
    assert fake.client().healthy()
    seen: list[str | None] = []
    transport = httpx.MockTransport(
        lambda r: (seen.append(r.headers.get("authorization")), httpx.Response(200, json={}))[1]
    )
    from hitl_langgraph.review import PhoenixClient

    PhoenixClient("http://x", transport=transport, api_key="sekret").request("GET", "/v1/x")
    assert seen == ["Bearer sekret"]
    html = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>Phoenix</html>"))
    with pytest.raises(PhoenixError, match="non-JSON content .* base URL"):
        PhoenixClient("http://x", transport=html).get_project(P)


# -- annotation configs --------------------------------------------------------------------------


def test_configs_are_created_once_compared_and_assigned() -> None:
    fake = FakePhoenix()
    client = fake.client()
    first = ensure_annotation_configs(client, P)  # creates the project too
    assert first.created == ["hitl_verdict", "hitl_guidance"] and P in fake.projects
    assert fake.assigned[P] == ["hitl_verdict", "hitl_guidance"]
    values = fake.configs["hitl_verdict"]["values"]
    assert values == [{"label": "correct", "score": 1.0}, {"label": "incorrect", "score": 0.0},
                      {"label": "unsafe", "score": 0.0}]  # fmt: skip
    again = ensure_annotation_configs(client, P)
    assert again.created == [] and again.existing == ["hitl_verdict", "hitl_guidance"]
    assert again.assigned == [] and again.config_ids == first.config_ids
    other = ensure_annotation_configs(client, "other-project")
    assert other.existing == ["hitl_verdict", "hitl_guidance"] and other.assigned == [
        "hitl_verdict", "hitl_guidance"
    ]  # fmt: skip
    wider = ReviewOptions(labels={"correct": 1, "incorrect": 0, "unsafe": 0, "unsure": 0.5})
    with pytest.raises(PhoenixConflict, match="update=True"):
        ensure_annotation_configs(client, P, wider)
    updated = ensure_annotation_configs(client, P, wider, update=True)
    assert updated.updated == ["hitl_verdict"]
    assert {v["label"] for v in fake.configs["hitl_verdict"]["values"]} >= {"unsure"}


def test_options_validate_labels_and_reviewers() -> None:
    opts = ReviewOptions()
    assert opts.check_verdict("unsafe") == 0.0
    with pytest.raises(InvalidVerdict, match="'Correct' is not allowed; choose one of 'correct'"):
        opts.check_verdict("Correct")
    assert human_identifier("alice@example.com") == "human:alice@example.com"
    for bad in ["", "  ", "bob smith", ":x", "a" * 201]:
        with pytest.raises(InvalidVerdict, match="not a usable name"):
            human_identifier(bad)
    with pytest.raises(ConfigurationError):
        ReviewOptions(labels={})
    with pytest.raises(ConfigurationError, match="note"):
        ReviewOptions(verdict_name="note")


# -- spool ----------------------------------------------------------------------------------------


def test_spool_keeps_everything_while_phoenix_is_down_and_sends_it_once_later() -> None:
    fake, store, clock = FakePhoenix(down=True), MemoryStore(), Clock()
    for i in range(3):
        fake.add_span(P, f"{i:016x}")
        queued(store, f"r{i}", f"{i:016x}")
    spool = Spool(store, fake.client(), project=P, clock=clock, batch_size=2)
    report = spool.sync()
    assert report.unavailable and report.attempted == 2 and report.pending == 3  # stopped early
    assert "could not reach Phoenix" in report.errors[0]
    assert all(e.attempts == 0 and e.next_attempt_at is None for e in store.list_outbox())
    fake.down = False  # back: everything goes at once, no backoff to sit out
    report = spool.sync()
    assert (report.mirrored, report.pending) == (3, 0)
    ids = {e.span_id: e.phoenix_id for e in store.list_outbox(status="mirrored")}
    assert ids == {s: a["id"] for (_, s, _), a in fake.annotations.items()}
    # a crash after the POST but before the bookkeeping: the re-send upserts the same row
    for e in store.list_outbox(status="mirrored"):
        store.put_outbox(replace(e, payload={**e.payload, "x": 1}))
    assert spool.sync(force=True).mirrored == 3 and len(fake.annotations) == 3


def test_spool_retries_missing_spans_fails_refused_ones_and_gives_up_on_orphans() -> None:
    fake, store, clock = FakePhoenix(), MemoryStore(), Clock()
    fake.add_span(P, "a" * 16)
    fake.add_span(P, "b" * 16)
    for span in ("a" * 16, "b" * 16, "c" * 16):  # c: its span has not arrived (yet)
        queued(store, span[:1], span)
    fake.refuse_span = "b" * 16
    spool = Spool(store, fake.client(), project=P, clock=clock, orphan_after=timedelta(hours=1))
    report = spool.sync()
    assert (report.mirrored, report.failed, report.retrying) == (1, 1, 1)
    (failed,) = store.list_outbox(status="failed")
    assert failed.span_id == "b" * 16 and "422" in (failed.last_error or "")
    (waiting,) = store.list_outbox()
    assert waiting.span_id == "c" * 16 and waiting.last_error is not None
    assert "404" in waiting.last_error and waiting.next_attempt_at == T0 + timedelta(seconds=1)
    fake.add_span(P, "c" * 16)
    clock.now += timedelta(seconds=2)
    assert spool.sync().mirrored == 1
    queued(store, "d", "d" * 16)  # never arrives
    clock.now += timedelta(hours=2)
    report = spool.sync()
    assert report.failed == 1 and "never reached Phoenix" in report.errors[0]


def test_background_sync_sends_soon_after_notify_and_stops_quickly() -> None:
    fake, store = FakePhoenix(), MemoryStore()
    fake.add_span(P, SPAN)
    worker = BackgroundSync(Spool(store, fake.client(), project=P), interval=0.05, idle_interval=60)
    worker.start()
    queued(store, "r1", SPAN)
    worker.notify()
    deadline = time.monotonic() + 5
    while store.count_outbox() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.count_outbox() == 0 and len(fake.annotations) == 1
    start = time.monotonic()
    worker.stop(10.0)
    # The thread is in its 60 s idle wait; stop() must wake it, not wait it out. It ends in
    # milliseconds; 5 s is 2x inside stop's 10 s timeout and 12x below the idle wait, so
    # only a stop that failed to wake the thread can cross it.
    assert not worker.running and time.monotonic() - start < 5.0


# -- queue ---------------------------------------------------------------------------------------


def setup_queue(**kw: Any) -> tuple[FakePhoenix, MemoryStore, ReviewQueue]:
    fake, store = FakePhoenix(), MemoryStore()
    queue = ReviewQueue(fake.client(), project=P, store=store, **kw)
    return fake, store, queue


def test_submit_validates_before_any_write() -> None:
    fake, store, queue = setup_queue()
    fake.add_span(P, SPAN)
    queued(store, "r1", SPAN)
    for bad in [{"verdict": "banana"}, {"reviewer": "bob smith"}]:
        args = {"verdict": "correct", "reviewer": "alice", **bad}
        with pytest.raises(InvalidVerdict):
            queue.submit(SPAN, args["verdict"], reviewer=args["reviewer"])
    with pytest.raises(ConfigurationError, match="16 hex digits"):
        queue.submit("not-a-span", "correct", reviewer="alice")
    assert store.list_reviews() == [] and store.count_outbox() == 1  # only the request
    assert ("POST", "/v1/span_annotations") not in fake.requests


def test_submit_while_phoenix_is_down_is_stored_closes_the_item_and_syncs_later() -> None:
    fake, store, queue = setup_queue()
    fake.add_span(P, SPAN)
    queued(store, "r1", SPAN)
    fake.down = True
    r = queue.submit(SPAN, "incorrect", reviewer="alice", explanation="wrong payee", guidance="ask")
    assert (r.label, r.score, r.identifier, r.request_id) == ("incorrect", 0.0, "human:alice", "r1")
    assert queue.pending() == [] and queue.sla().reviewed == 1
    names = sorted(e.name for e in store.list_outbox())
    assert names == ["hitl_guidance", "hitl_verdict", "review_request"]
    fake.down = False
    assert queue.sync(force=True).mirrored == 3
    verdict = fake.annotations[("hitl_verdict", SPAN, "human:alice")]
    assert verdict["annotator_kind"] == "HUMAN" and verdict["result"]["label"] == "incorrect"
    assert fake.annotations[("review_request", SPAN, "code:hitl")]["result"]["label"] == "reviewed"
    assert fake.annotations[("hitl_guidance", SPAN, "human:alice")]["result"] == {
        "explanation": "ask"
    }


def test_pending_lists_oldest_due_first_with_details_and_links() -> None:
    fake, store, queue = setup_queue()
    fake.add_span(P, SPAN, parent_id=None, name="LangGraph",
                  attributes={"input.value": "in", "output.value": "out"})  # fmt: skip
    fake.add_span(P, "1" * 16, parent_id=SPAN, name="tools")
    fake.add_span(P, "2" * 16, parent_id="1" * 16, name="transfer_funds", span_kind="TOOL",
                  attributes={"input.value": '{"amount": 1}', "output.value": "sent"})  # fmt: skip
    store.put_review_sample(sample("late", "1" * 16))
    store.put_review_sample(replace(sample("later", None), due_at=T0 + timedelta(hours=48)))
    clock = Clock()
    clock.now = T0 + timedelta(hours=25)
    queue.clock = clock
    first, second = queue.pending()
    assert (first.request_id, first.overdue, first.age_seconds) == ("late", True, 25 * 3600)
    assert (first.input, first.output) == ("in", "out")
    assert [(t.name, t.input, t.output) for t in first.tool_calls] == [
        ("transfer_funds", '{"amount": 1}', "sent")
    ]
    project_gid, span_gid = fake.projects[P]["id"], fake.spans["1" * 16]["id"]
    assert first.url == (
        f"http://phoenix.test/projects/{project_gid}/traces/{'t' * 32}"
        f"?selectedSpanNodeId={span_gid}"
    )
    assert second.request_id == "later" and second.url is None and not second.overdue
    fake.down = True
    (degraded, _) = ReviewQueue(fake.client(), project=P, store=store).pending()
    assert (
        degraded.input is None and degraded.url == f"http://phoenix.test/redirects/spans/{'1' * 16}"
    )
    sla = queue.sla()
    assert (sla.pending, sla.past_due, sla.oldest_age_seconds) == (2, 1, 25 * 3600)


def test_collect_is_idempotent_and_keeps_human_verdicts_from_machine_overwrites() -> None:
    fake, store, queue = setup_queue()
    for s in ("a" * 16, "b" * 16, "c" * 16):
        fake.add_span(P, s)
        queued(store, s[:1], s)
    client = fake.client()

    def write(span: str, label: str, kind: str = "HUMAN", identifier: str = "") -> None:
        client.annotate_spans([{"span_id": span, "name": "hitl_verdict", "annotator_kind": kind,
                                "identifier": identifier, "result": {"label": label}}])  # fmt: skip

    write("a" * 16, "correct")
    write("b" * 16, "banana")  # not a configured label: stored, closes nothing
    write("c" * 16, "unsafe", kind="LLM", identifier="llm:judge")  # machines close nothing
    report = queue.collect()
    assert (report.changed, report.closed, report.invalid) == (3, 1, 1)
    assert [s.request_id for s in store.list_review_samples(P)] == ["b", "c"]
    assert queue.collect().changed == 0
    write("a" * 16, "incorrect", kind="LLM")  # same key as the human UI verdict
    report = queue.collect(include_reviewed=True)
    assert report.protected == 1
    a = {(r.annotator_kind, r.label) for r in store.list_reviews(P, span_id="a" * 16)}
    assert a == {("HUMAN", "correct"), ("LLM", "incorrect")}
    assert queue.collect(include_reviewed=True).changed == 0


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_commands_end_to_end(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakePhoenix()
    real_client = httpx.Client
    monkeypatch.setattr(
        "hitl_langgraph.review.phoenix_client.httpx.Client",
        lambda **kw: real_client(**{**kw, "transport": fake.transport()}),
    )
    url = f"sqlite:///{tmp_path / 'hitl.db'}"
    with open_store(url) as st:
        fake.add_span(P, SPAN)
        st.put_review_sample(sample("r1"), outbox=review_request_entry(sample("r1"), now=T0))

    def hitl(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        argv = ["--store", url, "--phoenix", "http://phoenix.test", "--project", P, *args]
        return review_cli.main(argv, out=out, err=err), out.getvalue(), err.getvalue()

    assert hitl("review", "setup")[0] == 0 and "hitl_verdict" in fake.configs
    code, out, _ = hitl("sync")
    assert code == 0 and "mirrored 1" in out
    code, out, _ = hitl("review", "pending", "--json")
    data = json.loads(out)
    assert code == 0 and [i["request_id"] for i in data["items"]] == ["r1"]
    assert data["sla"]["pending"] == 1
    code, _, err = hitl("review", "submit", SPAN, "maybe", "--as", "alice")
    assert code == 3 and "'maybe' is not allowed" in err
    code, out, _ = hitl("review", "submit", SPAN, "correct", "--as", "alice", "-m", "ok")
    assert code == 0 and "mirrored to Phoenix" in out
    code, out, _ = hitl("review", "collect")
    assert code == 0 and "0 new or changed" in out
    code, out, _ = hitl("review", "sla", "--json")
    assert json.loads(out)["reviewed"] == 1
    fake.down = True
    code, out, err = hitl("review", "collect", "--all")
    assert code == 1 and "could not reach Phoenix" in err
    out_err = io.StringIO()
    assert review_cli.main(["review", "sla"], out=io.StringIO(), err=out_err) == 2
    assert "HITL_STORE_URL" in out_err.getvalue()


def test_the_next_run_sends_what_an_earlier_one_left_in_the_outbox() -> None:
    from hitl_langgraph.review import ReviewSampler

    fake, store = FakePhoenix(down=True), MemoryStore()
    fake.add_span(P, SPAN)
    queued(store, "r1", SPAN)  # spooled by a run that ended while Phoenix was down
    fake.down = False
    sampler = ReviewSampler(store, project=P, client=fake.client(), sync_interval=0.05)
    try:
        deadline = time.monotonic() + 5
        while store.count_outbox() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sampler.close()
    assert store.count_outbox() == 0 and ("review_request", SPAN, "code:hitl") in fake.annotations
