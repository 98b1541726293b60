"""Measured effect of the feedback loop on an agent that repeats a known mistake.

The scenario is fixed (seeded): customers ask the payments agent for refunds; the
company rule is that a refund over 500 needs a manager's approval. The scripted model
refunds straight away unless the guidance block in its system prompt carries that rule
(then it asks for a manager for refunds over 500, and still refunds small ones). That is
an honest stand-in for a real model's instruction-following: the bench measures the
plumbing from a reviewer's verdict to the prompt, not a model's obedience.

Pipeline (default, with a real ``phoenix serve`` started here): the agent is traced to
Phoenix, the ``ReviewSampler`` samples every review-routed refund, two reviewers (alice,
bob) annotate the sampled spans through Phoenix's REST API (a refund over 500:
"incorrect" plus the rule as guidance; a small one: "correct"), and a ``FeedbackLoop``
runs every ``--interval`` seconds in a background thread (collect from Phoenix, derive,
publish, push a Phoenix prompt version and promote it, priors, compensations). The agent
reads the ``production`` prompt version through ``PhoenixGuidance`` (TTL ``--ttl``).
``--no-phoenix`` runs the same scenario on the store alone (verdicts written to the
store, ``StoreGuidance``), which isolates the library's own latency.

Reported: error rate (refunds over 500 executed without a manager) before and after the
loop, false refusals (small refunds not made), reviews written until the guidance went
live, compensations run, the refund class's risk adjustment, and the time from the
activating verdict to the first agent run whose prompt carried it (target: < 10 s).

Usage::

    python bench/bench_feedback.py [--requests 20] [--interval 2] [--ttl 1] [--json]
        [--no-phoenix]

About 40-60 s with Phoenix on a busy 2-core box (most of it Phoenix's start-up).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import Action, GatedToolNode, RequestFilter, RiskPolicy, Rule, open_store
from hitl_langgraph.feedback import (
    AdaptiveConfig,
    AdaptiveRisk,
    FeedbackLoop,
    PhoenixContextResolver,
    PhoenixGuidance,
    PromptRegistry,
    PromptTemplate,
    ReviewerFeedback,
    StoreContextResolver,
    StoreGuidance,
    amount_bands,
)
from hitl_langgraph.store.review_records import ReviewRecord, annotation_key
from hitl_langgraph.testing import ScriptedChatModel

RULE = "Ask for a manager's approval before any refund over 500 dollars."
WORDINGS = {  # what each reviewer writes (the same rule, merged by normalization)
    "alice": RULE,
    "bob": "ask for a manager's approval before any refund over 500 dollars",
}
BASE = "You are the payments agent. Refund orders when customers ask.\n\n{{reviewer_guidance}}"
AMOUNTS = [120, 300, 450, 700, 900, 1500, 2500]


def log(msg: str) -> None:
    print(f"[bench_feedback] {msg}", file=sys.stderr, flush=True)


# -- the agent ---------------------------------------------------------------------------
@dataclass
class Outcome:
    amount: int
    refunded: bool
    told: bool

    @property
    def wrong(self) -> bool:
        return self.amount > 500 and self.refunded

    @property
    def false_refusal(self) -> bool:
        return self.amount <= 500 and not self.refunded


def model_for(seen: list[str]) -> ScriptedChatModel:
    def script(messages: list[BaseMessage]) -> BaseMessage:
        system = next((m.text for m in messages if isinstance(m, SystemMessage)), "")
        seen.append(system)
        if any(isinstance(m, AIMessage) for m in messages):
            return AIMessage("done")
        ask = next(m.text for m in messages if isinstance(m, HumanMessage))
        amount = int(re.findall(r"\d+", ask)[-1])
        order = re.findall(r"order (\w+)", ask)[0]
        if amount > 500 and "manager's approval" in system:
            return AIMessage("This refund needs a manager's approval; I have asked one.")
        call = {"name": "refund", "args": {"order": order, "amount": amount}}
        return AIMessage("", tool_calls=[{**call, "id": f"c_{uuid.uuid4().hex[:8]}"}])

    return ScriptedChatModel(script=script)


def build_app(
    store: Any, feedback: ReviewerFeedback, policy: RiskPolicy, observers: list[Any]
) -> tuple[Any, list[str], list[tuple[str, int]]]:
    seen: list[str] = []
    done: list[tuple[str, int]] = []

    @tool
    def refund(order: str, amount: int) -> str:
        """Refund an order."""
        done.append((order, amount))
        return f"refunded {amount} on {order}"

    model = model_for(seen)

    def payments(state: MessagesState) -> dict[str, Any]:
        ask = state["messages"][0].text
        system = feedback.apply(
            BASE.replace("{{reviewer_guidance}}", "").rstrip(),
            node="payments",
            input=ask,
            tools=["refund"],
        )
        return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}

    g = StateGraph(MessagesState)
    g.add_node("payments", payments)
    g.add_node("tools", GatedToolNode([refund], policy=policy, store=store, observers=observers))
    g.add_edge(START, "payments")
    g.add_conditional_edges("payments", tools_condition)
    g.add_edge("tools", "payments")
    return g.compile(checkpointer=InMemorySaver()), seen, done


# -- the scenario --------------------------------------------------------------------------
@dataclass
class Result:
    mode: str
    requests_per_phase: int
    error_rate_before: float
    error_rate_after: float
    false_refusals_after: int
    reviews_until_live: int
    wrong_verdicts_until_live: int
    verdict_to_live_s: float | None
    loop_runs: int
    loop_median_s: float
    loop_max_s: float
    compensations: int
    wrong_refunds_executed: int
    wrong_refunds_reviewed: int
    refund_risk: dict[str, Any] = field(default_factory=dict)
    guidance_version: str = ""
    prompt_versions: int = 0


class Scenario:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.rng = random.Random(7)
        self.store = open_store(f"sqlite:///{workdir / 'hitl.db'}")
        self.adaptive = AdaptiveRisk(
            self.store,
            buckets={"refund": amount_bands("amount", [500])},
            config=AdaptiveConfig(min_reviews=2),
            ttl=args.ttl,
        )
        self.outcomes: list[Outcome] = []
        self.policy = RiskPolicy(
            [Rule(tool="refund", score=0.6, floor=0.55)], adjusters=[self.adaptive]
        )
        self.undone: list[str] = []
        self.loop_times: list[float] = []
        self.stop = threading.Event()
        self.n = 0
        self.phoenix: Any = None
        self.verdicts = 0
        self.wrong_verdicts = 0

    def request(self) -> tuple[str, int]:
        self.n += 1
        return f"O{self.n}", self.rng.choice(AMOUNTS)

    def run_risky(self, app: Any, done: list[tuple[str, int]], seen: list[str]) -> Outcome:
        """One request for a refund over 500 (the confirming run)."""
        return self.run(app, done, seen, amount=900)

    def run(
        self, app: Any, done: list[tuple[str, int]], seen: list[str], amount: int | None = None
    ) -> Outcome:
        order, drawn = self.request()
        amount = amount or drawn
        before = len(done)
        cfg = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:8]}"}}
        app.invoke({"messages": [HumanMessage(f"Please refund order {order}, {amount}")]}, cfg)
        told = "manager's approval" in seen[-1] if seen else False
        out = Outcome(amount, len(done) > before, told)
        self.outcomes.append(out)
        return out

    def loop_thread(self, loop: FeedbackLoop) -> threading.Thread:
        def body() -> None:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                report = loop.run_once()
                self.loop_times.append(time.perf_counter() - t0)
                slow = {k: v for k, v in report.seconds.items() if v >= 0.05}
                log(f"loop run {time.perf_counter() - t0:.3f} s; steps >= 50 ms: {slow}")
                for step, err in report.errors:
                    log(f"loop step {step} failed: {err}")
                self.stop.wait(self.args.interval)

        t = threading.Thread(target=body, daemon=True, name="feedback-loop")
        t.start()
        return t


def verdict_records(
    store: Any, request_id: str, span: str, reviewer: str, wrong: bool, project: str
) -> None:
    """--no-phoenix: what ReviewQueue.collect() would store."""
    now = datetime.now(timezone.utc)
    ident = f"human:{reviewer}"
    base = {
        "project": project,
        "span_id": span,
        "identifier": ident,
        "annotator_kind": "HUMAN",
        "source": "API",
        "created_at": now,
        "updated_at": now,
        "collected_at": now,
        "reviewer": reviewer,
        "request_id": request_id,
    }
    store.put_review(
        ReviewRecord(
            review_id=annotation_key(project, span, "hitl_verdict", ident),
            name="hitl_verdict",
            label="incorrect" if wrong else "correct",
            **base,
        )
    )
    if wrong:
        store.put_review(
            ReviewRecord(
                review_id=annotation_key(project, span, "hitl_guidance", ident),
                name="hitl_guidance",
                explanation=WORDINGS[reviewer],
                **base,
            )
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="requests per before/after phase")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between loop runs")
    parser.add_argument("--ttl", type=float, default=1.0, help="agents' guidance cache TTL (s)")
    parser.add_argument("--max-learning", type=int, default=40, help="cap on learning requests")
    parser.add_argument("--no-phoenix", action="store_true", help="store only, no Phoenix server")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_scenario(args, Path(tmp))
    result_dict = asdict(result)
    result_dict["total_s"] = round(time.monotonic() - t_start, 1)
    if args.json:
        print(json.dumps(result_dict, indent=2))
    else:
        print_table(result_dict)
    return 0


def run_scenario(args: argparse.Namespace, workdir: Path) -> Result:
    sc = Scenario(args, workdir)
    project = f"bench-feedback-{uuid.uuid4().hex[:6]}"
    server = tracing = client = sampler = None
    observers: list[Any] = []
    registry: PromptRegistry | None = None
    try:
        if not args.no_phoenix:
            from hitl_langgraph.review import (
                PhoenixClient,
                ReviewQueue,
                ReviewSampler,
                ReviewSampling,
                constant_rate,
            )
            from hitl_langgraph.tracing import GateSpanRecorder, setup_tracing
            from hitl_langgraph.tracing._server import PhoenixServer

            log("starting phoenix serve ...")
            server = PhoenixServer(workdir=workdir / "phoenix", startup_timeout=120).start()
            log(f"phoenix ready at {server.url}")
            tracing = setup_tracing(project, server.url, batch=False)
            client = PhoenixClient(server.url)
            queue = ReviewQueue(client, project=project, store=sc.store)
            queue.setup()
            sampler = ReviewSampler(
                sc.store,
                project=project,
                client=client,
                sampling=ReviewSampling(curve=constant_rate(1.0)),
                sync_interval=0.5,
                first_attempt_delay=0.2,
            )
            observers = [GateSpanRecorder(tracing), sampler]
            registry = PromptRegistry(
                f"payments-{uuid.uuid4().hex[:6]}",
                phoenix=client,
                base=PromptTemplate.chat(BASE, "{{question}}"),
                node="payments",
                tools=["refund"],
                store=sc.store,
                ttl=args.ttl,
            )
            feedback = ReviewerFeedback(PhoenixGuidance(registry))
            loop = FeedbackLoop(
                sc.store,
                project=project,
                collect=queue.collect,
                resolver=PhoenixContextResolver(sc.store, client, project),
                prompts=[registry],
                auto_promote=True,
                adaptive=sc.adaptive,
                compensations={"refund": lambda req: sc.undone.append(req.request_id)},
                mirror=lambda: queue.sync(force=True),
            )
        else:
            feedback = ReviewerFeedback(StoreGuidance(sc.store, ttl=args.ttl), record_spans=False)
            loop = FeedbackLoop(
                sc.store,
                project=project,
                resolver=StoreContextResolver(sc.store, node_of={"refund": "payments"}),
                adaptive=sc.adaptive,
                compensations={"refund": lambda req: sc.undone.append(req.request_id)},
            )
        app, seen, done = build_app(sc.store, feedback, sc.policy, observers)
        loop.run_once()  # v1: the base prompt in production

        log(f"phase 1: {args.requests} requests, no reviews")
        before = [sc.run(app, done, seen) for _ in range(args.requests)]
        risky_before = [o for o in before if o.amount > 500]

        log(f"phase 2: reviewers annotate, the loop runs every {args.interval:.1f} s")
        thread = sc.loop_thread(loop)
        reviewers = ["alice", "bob"]
        activating_at: float | None = None
        live_at: float | None = None
        reviews_until_live = wrong_until_live = 0
        for _ in range(args.max_learning):
            out = sc.run(app, done, seen)
            if out.told and out.amount > 500:
                live_at = time.monotonic()
                break
            if not out.refunded:
                continue
            rid = sc.store.list_requests(RequestFilter(status=None), limit=1000)[-1].request_id
            reviewer = reviewers[sc.verdicts % 2]
            if args.no_phoenix:
                verdict_records(sc.store, rid, uuid.uuid4().hex[:16], reviewer, out.wrong, project)
            else:
                assert tracing is not None and client is not None
                tracing.force_flush(5.0)
                sample = sc.store.get_review_sample(rid)
                if sample is None or not sample.span_id:
                    continue
                annotate(client, sample.span_id, reviewer, out.wrong)
            sc.verdicts += 1
            sc.wrong_verdicts += int(out.wrong)
            if out.wrong:
                activating_at = time.monotonic()
            reviews_until_live, wrong_until_live = sc.verdicts, sc.wrong_verdicts
            if sc.wrong_verdicts >= 2:
                # what the next run would be told: poll the agent's guidance source (cheap,
                # TTL-cached), then confirm with a real run
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if (
                        "manager's approval"
                        in feedback.render(node="payments", tools=["refund"]).text
                    ):
                        break
                    time.sleep(0.02)
                probe = sc.run_risky(app, done, seen)
                if probe.told:
                    live_at = time.monotonic()
                break
        verdict_to_live = (
            None if activating_at is None or live_at is None else live_at - activating_at
        )
        shown = "-" if verdict_to_live is None else f"{verdict_to_live:.2f} s"
        log(f"guidance live after {reviews_until_live} reviews; {shown}")

        log(f"phase 3: {args.requests} requests with the loop's guidance")
        after = [sc.run(app, done, seen) for _ in range(args.requests)]
        risky_after = [o for o in after if o.amount > 500]
        time.sleep(args.interval + 0.5)  # one more loop run: compensations, priors
        sc.stop.set()
        thread.join(timeout=30)
        snap = sc.adaptive.current()
        big = snap.priors.get("refund|amount>=500")
        assessed = sc.policy.assess(Action("refund", {"order": "x", "amount": 900}))
        wrong_executed = sum(o.wrong for o in sc.outcomes)
        return Result(
            mode="store only" if args.no_phoenix else "phoenix",
            requests_per_phase=args.requests,
            error_rate_before=round(
                sum(o.wrong for o in risky_before) / max(len(risky_before), 1), 3
            ),
            error_rate_after=round(sum(o.wrong for o in risky_after) / max(len(risky_after), 1), 3),
            false_refusals_after=sum(o.false_refusal for o in after),
            reviews_until_live=reviews_until_live,
            wrong_verdicts_until_live=wrong_until_live,
            verdict_to_live_s=None if verdict_to_live is None else round(verdict_to_live, 2),
            loop_runs=len(sc.loop_times),
            loop_max_s=round(max(sc.loop_times, default=0.0), 3),
            loop_median_s=round(sorted(sc.loop_times)[len(sc.loop_times) // 2], 3)
            if sc.loop_times
            else 0.0,
            compensations=len(set(sc.undone)),
            wrong_refunds_executed=wrong_executed,
            wrong_refunds_reviewed=sc.wrong_verdicts,
            refund_risk={}
            if big is None
            else {
                "class": big.key,
                "delta": big.delta,
                "wrong": big.wrong,
                "reviewed": big.reviewed,
                "score_900_now": assessed.score,
                "route_900_now": assessed.route,
            },
            guidance_version=loop.published()[1].version,
            prompt_versions=len(registry.versions()) if registry is not None else 0,
        )
    finally:
        if sampler is not None:
            sampler.close()
        if tracing is not None:
            tracing.shutdown(2.0)
        if server is not None:
            server.stop()
        sc.store.close()


def annotate(client: Any, span: str, reviewer: str, wrong: bool) -> None:
    """A reviewer's verdict through Phoenix's REST API (retried until the span is in)."""
    from hitl_langgraph.review import PhoenixNotFound

    rows: list[dict[str, Any]] = [
        {
            "span_id": span,
            "name": "hitl_verdict",
            "annotator_kind": "HUMAN",
            "identifier": f"human:{reviewer}",
            "result": {
                "label": "incorrect" if wrong else "correct",
                "score": 0.0 if wrong else 1.0,
            },
        },
    ]
    if wrong:
        rows.append(
            {
                "span_id": span,
                "name": "hitl_guidance",
                "annotator_kind": "HUMAN",
                "identifier": f"human:{reviewer}",
                "result": {"explanation": WORDINGS[reviewer]},
            }
        )
    deadline = time.monotonic() + 15
    while True:
        try:
            client.annotate_spans(rows)
            return
        except PhoenixNotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("mode", r["mode"]),
        ("requests per phase", r["requests_per_phase"]),
        ("error rate before (refund > 500 without manager)", f"{r['error_rate_before']:.0%}"),
        ("error rate after", f"{r['error_rate_after']:.0%}"),
        ("false refusals after (small refunds refused)", r["false_refusals_after"]),
        (
            "reviews until live (wrong verdicts)",
            f"{r['reviews_until_live']} ({r['wrong_verdicts_until_live']})",
        ),
        (
            "verdict -> live prompt change",
            "-"
            if r["verdict_to_live_s"] is None
            else f"{r['verdict_to_live_s']:.2f} s (target < 10 s)",
        ),
        (
            "loop runs / median / max run",
            f"{r['loop_runs']} / {r['loop_median_s'] * 1000:.0f} ms"
            f" / {r['loop_max_s'] * 1000:.0f} ms",
        ),
        (
            "wrong refunds executed / reviewed wrong / compensated",
            f"{r['wrong_refunds_executed']} / {r['wrong_refunds_reviewed']} / {r['compensations']}",
        ),
        ("refund>500 risk adjustment", json.dumps(r["refund_risk"]) if r["refund_risk"] else "-"),
        (
            "guidance version / Phoenix prompt versions",
            f"{r['guidance_version']} / {r['prompt_versions']}",
        ),
        ("total time", f"{r['total_s']} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric'.ljust(width)}  value")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")


if __name__ == "__main__":
    raise SystemExit(main())
