"""The demo scenario: run the batch, decide the paused transfers, review in Phoenix, learn.

:func:`run_demo` does the work and returns a :class:`DemoSummary`; it draws progress and
tables on a rich ``Console`` and asks its ``ask`` callable for the terminal reviewer's
decisions (``reviewer="auto"`` decides deterministically without asking).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import ConfigurationError, HitlError
from ..inbox import Inbox, Reviewer
from ..store.base import ApprovalStore, RequestFilter
from ..store.url import open_store
from .agent import BASE_PROMPT, FOLLOW_UP, LEFT_PENDING, NODE, REQUESTS, TOOL_NAMES, build_app

__all__ = ["GUIDANCE", "REVIEWER", "DemoOptions", "DemoSummary", "run_demo"]

REVIEWER = "sam"  # the Phoenix reviewer the demo plays
GUIDANCE = "Before refunding more than 400 dollars, look up the account and confirm the order."
REVIEW_FILTER = "annotations['review_request'].label == 'pending'"  # as review.queue's
Ask = Callable[[str, list[str], str], str]  # (question, choices or [], default) -> answer


@dataclass
class DemoOptions:
    """Options of :func:`run_demo` (the ``hitl demo`` flags)."""

    data: Path = field(default_factory=lambda: Path("hitl-demo"))
    phoenix_url: str | None = None
    keep_phoenix: bool = False
    reset: bool = False
    reviewer: str = "ask"  # "ask": the person at the terminal; "auto": deterministic
    model: str | None = None
    project: str = "hitl-demo"
    phoenix_timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.reviewer not in ("ask", "auto"):
            raise ConfigurationError(f"reviewer must be 'ask' or 'auto', got {self.reviewer!r}")


@dataclass
class DemoSummary:
    """What one demo run did (``hitl demo --json`` prints it)."""

    run_id: str
    data: str
    store_url: str
    phoenix_url: str
    project: str
    review_url: str = ""
    review_filter: str = REVIEW_FILTER
    requests: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    ran: dict[str, int] = field(default_factory=dict)
    sampled: int = 0
    waited: list[dict[str, Any]] = field(default_factory=list)
    denied: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)
    collected: int = 0
    guidance_active: list[str] = field(default_factory=list)
    next_prompt: str = ""
    audit_ok: bool = False
    audit_events: int = 0
    audit_problems: list[str] = field(default_factory=list)
    phoenix_kept: bool = False
    phoenix_pid: int | None = None
    left_pending: str = ""
    next_command: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_demo(
    options: DemoOptions, *, console: Console | None = None, ask: Ask | None = None
) -> DemoSummary:
    """Run the whole demo once; see the package docstring."""
    from ..review import PhoenixClient, ReviewQueue, ReviewSampler, ReviewSampling, constant_rate
    from ..tracing import setup_tracing

    console = console or Console()
    if options.reviewer == "ask" and ask is None:
        raise ConfigurationError("reviewer='ask' needs an ask callable (or reviewer='auto')")
    t0 = time.monotonic()
    data = options.data.resolve()
    if options.reset and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:6]
    store_url = f"sqlite:///{data / 'hitl.db'}"
    with _phoenix(options, data, console) as (url, pid):
        summary = DemoSummary(
            run_id=run_id,
            data=str(data),
            store_url=store_url,
            phoenix_url=url,
            project=options.project,
            phoenix_kept=options.keep_phoenix and options.phoenix_url is None,
            phoenix_pid=pid if options.keep_phoenix else None,
        )
        store = open_store(store_url)
        client = PhoenixClient(url)
        queue = ReviewQueue(client, project=options.project, store=store)
        sampler = ReviewSampler(
            store,
            project=options.project,
            client=client,
            sampling=ReviewSampling(curve=constant_rate(1.0)),  # every refund, for the demo
            sync_interval=0.5,
            first_attempt_delay=0.2,
        )
        # one call: every gate in the process records GUARDRAIL spans, links decisions to
        # the paused trace and feeds the sampler (no per-node wiring)
        tracing = setup_tracing(options.project, url, observers=[sampler])
        try:
            queue.setup()
            feedback = _feedback(store)
            prompts: list[str] = []

            def build() -> Any:
                return build_app(
                    data,
                    store,
                    run_id=run_id,
                    system_prompt=lambda ask_: feedback.apply(
                        BASE_PROMPT, node=NODE, input=ask_, tools=TOOL_NAMES
                    ),
                    prompts=prompts,
                    model=options.model,
                )

            threads = _run_batch(build(), run_id, console, summary)
            _decide(store, build, threads, options, console, ask, summary)
            tracing.force_flush(10.0)
            _review(store, queue, sampler, threads, console, summary)
            _learn(store, queue, options.project, summary, console)
            # the next run's prompt carries the guidance (a fresh graph, as a new process)
            feedback = _feedback(store)
            prompts.clear()
            cfg = _config(f"demo-{run_id}-next", FOLLOW_UP.customer)
            build().invoke({"messages": [("user", FOLLOW_UP.text)]}, cfg)
            summary.next_prompt = prompts[0] if prompts else ""
            # one more transfer, left waiting for you to decide from the CLI
            cfg = _config(f"demo-{run_id}-left", LEFT_PENDING.customer)
            build().invoke({"messages": [("user", LEFT_PENDING.text)]}, cfg)
            left = store.list_requests(
                RequestFilter(thread_id=cfg["configurable"]["thread_id"]), limit=1
            )
            summary.left_pending = left[0].request_id if left else ""
            summary.ran = _ran(data, run_id)
            report = store.verify_audit()
            summary.audit_ok, summary.audit_events = report.ok, report.events
            summary.audit_problems = list(report.problems)
            summary.review_url = queue.review_url() or url
            shown = _store_url_for_humans(data)
            summary.next_command = f"hitl --store {shown} pending" + (
                f" && hitl --store {shown} approve {summary.left_pending} --as you --role finance"
                if summary.left_pending
                else ""
            )
            tracing.force_flush(5.0)
        finally:
            sampler.close(2.0)
            queue.sync(force=True) if _reachable(client) else None
            tracing.shutdown(2.0)
            client.close()
            store.close()
    summary.seconds = round(time.monotonic() - t0, 1)
    return summary


# -- steps ------------------------------------------------------------------------------------


@contextmanager
def _phoenix(
    options: DemoOptions, data: Path, console: Console
) -> Iterator[tuple[str, int | None]]:
    if options.phoenix_url:
        yield options.phoenix_url.rstrip("/"), None
        return
    from ..tracing._server import PhoenixServer

    server = PhoenixServer(workdir=data / "phoenix", startup_timeout=options.phoenix_timeout)
    with console.status(f"starting Phoenix (data in {server.workdir}) ..."):
        server.start()
    console.print(f"Phoenix is up at {server.url}", soft_wrap=True)
    try:
        yield server.url, server.pid
    finally:
        if not options.keep_phoenix:
            server.stop()


def _feedback(store: ApprovalStore) -> Any:
    from ..feedback import ReviewerFeedback, StoreGuidance

    return ReviewerFeedback(StoreGuidance(store, ttl=0))


def _config(thread: str, customer: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, "user_id": customer}}


def _run_batch(app: Any, run_id: str, console: Console, summary: DemoSummary) -> dict[str, str]:
    """Run every request; returns {thread_id: expected route}."""
    threads: dict[str, str] = {}
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("customer requests", total=len(REQUESTS), last="")
        for i, req in enumerate(REQUESTS):
            thread = f"demo-{run_id}-{i:02d}"
            threads[thread] = req.expect
            out = app.invoke({"messages": [("user", req.text)]}, _config(thread, req.customer))
            state = "paused for approval" if out.get("__interrupt__") else "done"
            progress.update(task, advance=1, last=f"{req.customer}: {state}")
    summary.requests = len(REQUESTS)
    routes: Counter[str] = Counter()
    for thread in threads:
        recs = store_requests(app, thread)
        for rec in recs:
            routes[rec.route] += 1
            if rec.route == "deny":
                summary.denied.append(
                    {"tool": rec.tool, "args": rec.args, "reasons": list(rec.reasons)}
                )
        if not recs:
            routes["auto"] += 1
    summary.routes = dict(routes)
    return threads


def store_requests(app: Any, thread: str) -> list[Any]:
    """The gate requests of ``thread`` (from the GatedToolNode's store)."""
    node = app.builder.nodes["tools"].runnable
    store: ApprovalStore = node.engine.store
    return store.list_requests(RequestFilter(thread_id=thread, status=None), limit=100)


def _auto_decision(i: int, rec: Any) -> tuple[str, dict[str, Any], str]:
    """Deterministic decisions for ``--reviewer auto``: approve, edit, reject, in turn."""
    kind = ("approve", "edit", "reject")[i % 3]
    if kind == "edit":
        return kind, {"amount": int(rec.args["amount"]) * 2 // 3}, "a third less, as agreed"
    if kind == "reject":
        return kind, {}, f"{rec.args.get('to')} is not a known payee"
    return kind, {}, "invoice checked"


def _ask_decision(ask: Ask, rec: Any) -> tuple[str, dict[str, Any], str]:
    where = f"{rec.tool}({json.dumps(rec.args)})"
    answer = ask(f"{where}: [a]pprove, [e]dit or [r]eject?", ["a", "e", "r"], "a")
    kind = {"a": "approve", "e": "edit", "r": "reject"}[answer]
    changes: dict[str, Any] = {}
    if kind == "edit":
        while True:
            text = ask('the arguments that change, as JSON (e.g. {"amount": 5000})', [], "")
            try:
                changes = json.loads(text)
                if isinstance(changes, dict) and changes:
                    break
            except json.JSONDecodeError:
                pass
            ask("that is not a JSON object with at least one key; press Enter", [], "")
    reason = ask("reason (recorded in the audit trail)", [], "")
    return kind, changes, reason


def _decide(
    store: ApprovalStore,
    build: Callable[[], Any],
    threads: dict[str, str],
    options: DemoOptions,
    console: Console,
    ask: Ask | None,
    summary: DemoSummary,
) -> None:
    """Show the pending approvals, decide each, resume from SQLite with a fresh graph."""
    page = Inbox(store).pending(route="approve", limit=500)
    mine = [r for r in page.items if r.thread_id in threads]
    table = Table(title="Pending approvals (the agent is waiting)")
    for col in ("request", "customer", "tool", "args", "risk", "may decide"):
        table.add_column(col)
    for r in mine:
        table.add_row(
            r.request_id[:12],
            r.requester or "",
            r.tool,
            json.dumps(r.args),
            f"{r.score:.2f}",
            ", ".join(r.approver_roles) or "anyone",
        )
    console.print(table)
    # a fresh graph object on the same SQLite files: what another process would do
    inbox = Inbox(store, build())
    you = Reviewer("you", {"finance"})
    for i, rec in enumerate(mine):
        if options.reviewer == "auto":
            kind, changes, reason = _auto_decision(i, rec)
        else:
            assert ask is not None
            kind, changes, reason = _ask_decision(ask, rec)
        reason_or_none = reason or None
        if kind == "approve":
            result = inbox.approve(rec.request_id, reviewer=you, reason=reason_or_none)
        elif kind == "reject":
            result = inbox.reject(rec.request_id, reviewer=you, reason=reason_or_none)
        else:
            try:
                result = inbox.edit(
                    rec.request_id,
                    reviewer=you,
                    args={**rec.args, **changes},
                    reason=reason_or_none,
                )
            except HitlError as exc:  # a bad edit changes nothing; say so and reject
                console.print(f"edit refused ({exc}); rejecting instead", soft_wrap=True)
                result = inbox.reject(rec.request_id, reviewer=you, reason=str(exc))
                kind = "reject"
        done = store.get_request(rec.request_id)
        waited = (
            (done.decided_at - done.created_at).total_seconds()
            if done is not None and done.decided_at
            else None
        )
        summary.waited.append(
            {
                "request_id": rec.request_id,
                "tool": rec.tool,
                "args": rec.args,
                "decision": kind,
                "edited_args": {**rec.args, **changes} if kind == "edit" else None,
                "by": "you",
                "waited_s": None if waited is None else round(waited, 1),
                "outcome": result.outcome,
            }
        )
        console.print(
            f"{kind} {rec.tool} {json.dumps(rec.args)} -> {result.outcome}", soft_wrap=True
        )


def _review(
    store: ApprovalStore,
    queue: Any,
    sampler: Any,
    threads: dict[str, str],
    console: Console,
    summary: DemoSummary,
) -> None:
    """Wait for the sampled refunds to reach Phoenix, then submit one verdict + guidance."""
    samples = [
        s
        for s in store.list_review_samples(queue.project, sampled=True, reviewed=False, limit=500)
        if s.span_id and _thread_of(store, s.request_id) in threads
    ]
    summary.sampled = len(samples)
    if not samples:
        return
    spans = [s.span_id for s in samples if s.span_id]
    deadline = time.monotonic() + 60
    with console.status("waiting for the sampled spans to reach Phoenix ..."):
        while True:
            with suppress(Exception):
                sampler.spool.sync(force=True)
            seen = _annotated(queue, spans)
            if seen >= len(spans) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    items = [i for i in queue.pending(limit=500) if i.span_id in spans]
    table = Table(title="Sampled for review in Phoenix (the agent did not wait)")
    for col in ("span", "tool", "args", "risk", "priority", "due"):
        table.add_column(col)
    for it in items:
        rec = store.get_request(it.request_id) if it.request_id else None
        table.add_row(
            it.span_id,
            rec.tool if rec else "",
            json.dumps(rec.args) if rec else "",
            f"{rec.score:.2f}" if rec else "",
            str(it.sample.priority),
            it.sample.due_at.strftime("%H:%M"),
        )
    console.print(table)
    # the reviewer looks at the largest refund and writes a verdict and a guidance note
    target = max(samples, key=lambda s: s.score)
    assert target.span_id is not None
    queue.submit(
        target.span_id,
        "incorrect",
        reviewer=REVIEWER,
        explanation="a refund this large needs the order checked first",
        guidance=GUIDANCE,
    )
    summary.verdict = {
        "span_id": target.span_id,
        "request_id": target.request_id,
        "label": "incorrect",
        "reviewer": REVIEWER,
        "guidance": GUIDANCE,
    }
    console.print(
        f"{REVIEWER} marked span {target.span_id} 'incorrect' with guidance: {GUIDANCE}",
        soft_wrap=True,
    )


def _learn(
    store: ApprovalStore, queue: Any, project: str, summary: DemoSummary, console: Console
) -> None:
    """Collect verdicts from Phoenix and turn them into active guidance."""
    from ..feedback import FeedbackLoop, GuidanceConfig, StoreContextResolver

    loop = FeedbackLoop(
        store,
        project=project,
        collect=lambda: queue.collect(include_reviewed=True),
        resolver=StoreContextResolver(store, node_of=dict.fromkeys(TOOL_NAMES, NODE)),
        guidance=GuidanceConfig(owners=frozenset({REVIEWER})),
    )
    report = loop.run_once()
    collected = report.collected
    summary.collected = int(getattr(collected, "annotations", 0) or 0)
    summary.guidance_active = [i.instruction for i in report.guidance.active]
    for step, exc in report.errors:
        console.print(f"feedback step {step} failed: {exc}", soft_wrap=True)


# -- helpers ------------------------------------------------------------------------------------


def _thread_of(store: ApprovalStore, request_id: str) -> str | None:
    rec = store.get_request(request_id)
    return None if rec is None else rec.thread_id


def _annotated(queue: Any, spans: list[str]) -> int:
    """How many of ``spans`` Phoenix holds a review_request annotation for."""
    try:
        found = queue.client.span_annotations(queue.project, spans, names=["review_request"])
    except Exception:
        return 0
    return len({a["span_id"] for a in found})


def _reachable(client: Any) -> bool:
    try:
        return bool(client.healthy())
    except Exception:
        return False


def _store_url_for_humans(data: Path) -> str:
    """``sqlite:///hitl-demo/hitl.db`` when the folder is under the working directory."""
    try:
        return f"sqlite:///{(data / 'hitl.db').relative_to(Path.cwd())}"
    except ValueError:
        return f"sqlite:///{data / 'hitl.db'}"


def _ran(data: Path, run_id: str) -> dict[str, int]:
    ledger = data / "ledger.jsonl"
    counts: Counter[str] = Counter()
    if ledger.exists():
        for line in ledger.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("run") == run_id:
                counts[row["tool"]] += 1
    return dict(counts)
