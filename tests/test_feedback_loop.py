"""FeedbackLoop end to end on a gated graph (memory store, no Phoenix): verdicts become the
next run's prompt for the right node, audited; priors move; compensation runs once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feedback_support import (
    RULE,
    Ledger,
    build_refund_app,
    refund_policy,
    review,
    run,
    span_id,
)

from hitl_langgraph import Action, MemoryStore, RequestFilter
from hitl_langgraph.feedback import (
    AdaptiveConfig,
    AdaptiveRisk,
    ChatModelDistiller,
    CompensationRequest,
    FeedbackLoop,
    GuidanceConfig,
    ReviewerFeedback,
    StoreContextResolver,
    StoreGuidance,
)
from hitl_langgraph.testing import FrozenClock, ScriptedChatModel


class World:
    def __init__(self, **loop_kw: Any) -> None:
        self.store = MemoryStore()
        self.clock = FrozenClock()
        self.ledger = Ledger()
        self.seen: list[str] = []
        self.triage: list[str] = []
        self.refunds_undone: list[CompensationRequest] = []
        self.adaptive = AdaptiveRisk(self.store, config=AdaptiveConfig(min_reviews=1), ttl=0)
        self.policy = refund_policy(adjusters=[self.adaptive])
        self.feedback = ReviewerFeedback(StoreGuidance(self.store, ttl=0), record_spans=False)
        self.app = build_refund_app(
            self.store,
            self.feedback,
            self.ledger,
            self.seen,
            policy=self.policy,
            other_seen=self.triage,
        )
        self.loop = FeedbackLoop(
            self.store,
            resolver=StoreContextResolver(self.store, node_of={"refund": "payments"}),
            adaptive=self.adaptive,
            compensations={"refund": self.refunds_undone.append},
            clock=self.clock,
            **loop_kw,
        )

    def last_request(self) -> Any:
        return self.store.list_requests(RequestFilter(status=None))[-1]

    def verdict(self, reviewer: str, text: str = RULE) -> None:
        rid = self.last_request().request_id
        s = span_id()
        at = self.clock()
        self.store.put_review(
            review(s, label="incorrect", reviewer=reviewer, request_id=rid, at=at)
        )
        self.store.put_review(
            review(
                s, name="hitl_guidance", explanation=text, reviewer=reviewer, request_id=rid, at=at
            )
        )


def test_two_concurring_verdicts_change_the_next_run_of_the_right_node_only() -> None:
    w = World()
    run(w.app, "Please refund order A1, 900")
    assert w.ledger.count("refund") == 1 and w.last_request().route == "review"
    w.verdict("alice")
    r1 = w.loop.run_once()
    assert r1.ok and r1.guidance.active == () and len(r1.guidance.pending) == 1
    assert [c.status for c in r1.compensations] == ["compensated"]
    w.clock.advance(minutes=5)
    run(w.app, "Please refund order A2, 800")  # not told yet: the same mistake
    assert w.ledger.count("refund") == 2
    w.verdict("bob", "ask for a manager's approval before any refund over 500 dollars")
    r2 = w.loop.run_once()
    assert r2.published and len(r2.activated) == 1 and r2.guidance.active[0].support == 2
    item = r2.guidance.active[0]
    assert (item.scope.node, item.scope.tool) == ("payments", "refund")
    before = len(w.seen)
    out = run(w.app, "Please refund order A3, 700")
    assert w.ledger.count("refund") == 2  # the agent followed the guidance
    assert RULE in w.seen[before] and f"[{item.id}]" in w.seen[before]
    assert "manager's approval" in out["messages"][-1].text
    assert w.triage and all("Reviewer guidance" not in p for p in w.triage)  # other node untouched
    # audited: activation and the version, with the reviews behind it
    events = list(w.store.list_audit(request_id="hitl_feedback:guidance"))
    kinds = [e.event for e in events]
    assert kinds.count("guidance_activated") == 1 and kinds[-1] == "guidance_version"
    assert events[-1].data["version"] == r2.guidance.version
    assert set(events[kinds.index("guidance_activated")].data["reviewers"]) == {"alice", "bob"}
    # compensated once per wrong request, also across runs
    r3 = w.loop.run_once()
    assert not r3.published and [c.status for c in r3.compensations] == ["already_done"] * 2
    assert len(w.refunds_undone) == 2
    assert w.store.verify_audit().ok


def test_reviews_raise_the_action_class_risk_into_synchronous_approval() -> None:
    w = World()
    run(w.app, "Please refund order A1, 900")
    assert w.policy.assess(_refund(900)).route == "review"
    w.verdict("alice")
    report = w.loop.run_once()
    assert report.priors_version and report.risk_changes[0]["wrong"] == 1
    one = w.policy.assess(_refund(900))
    assert one.route == "review" and one.score == 0.78  # +0.18 from 1 of 1: not yet
    run(w.app, "Please refund order A2, 800")
    w.verdict("bob")
    assert w.loop.run_once().risk_changes[0]["new_delta"] == 0.3
    a = w.policy.assess(_refund(900))
    assert a.route == "approve" and "adjusted by reviews: +0.30 from 2 of 2 wrong" in a.reasons[1]


def test_expired_guidance_is_deactivated_audited_and_leaves_the_prompt() -> None:
    w = World(guidance=GuidanceConfig(min_reviews=1, expire_after=timedelta(days=1)))
    run(w.app, "Please refund order A1, 900")
    w.verdict("alice")
    assert w.loop.run_once().activated
    w.clock.advance(days=2)
    report = w.loop.run_once()
    assert report.published and report.deactivated and report.guidance.active == ()
    (ev,) = [e for e in w.store.list_audit() if e.event == "guidance_deactivated"]
    assert ev.data["reason"].startswith("expired")
    before = len(w.seen)
    run(w.app, "Please refund order A9, 900")
    assert "Reviewer guidance" not in w.seen[before]


def test_a_failing_step_does_not_stop_the_others() -> None:
    def broken_collect() -> None:
        raise ConnectionError("Phoenix down")

    w = World(collect=broken_collect)
    run(w.app, "Please refund order A1, 900")
    w.verdict("alice")
    report = w.loop.run_once()
    assert [s for s, _ in report.errors] == ["collect"] and not report.ok
    assert [c.status for c in report.compensations] == ["compensated"]
    assert "collect: Phoenix down" in str(report)


def test_a_configured_distiller_merges_paraphrases_and_is_replayed_not_recalled() -> None:
    answers = iter(["Ask a manager before refunds over 500 dollars."] * 2)
    model = ScriptedChatModel(
        script=lambda msgs: __import__("langchain_core.messages", fromlist=["AIMessage"]).AIMessage(
            next(answers)
        )
    )
    w = World(distiller=ChatModelDistiller(model))
    run(w.app, "Please refund order A1, 900")
    w.verdict("alice", "refunds above $500 need a manager's OK")
    w.verdict("bob", "get a manager to approve refunds over 500")
    report = w.loop.run_once()
    (item,) = report.guidance.active
    assert item.instruction == "Ask a manager before refunds over 500 dollars."
    assert item.support == 2 and len(model.calls) == 2
    second = FeedbackLoop(
        w.store,
        resolver=StoreContextResolver(w.store, node_of={"refund": "payments"}),
        distiller=ChatModelDistiller(model),
        clock=w.clock,
    )
    assert second.run_once().guidance.version == report.guidance.version
    assert len(model.calls) == 2  # replayed from the audit trail
    recorded = list(w.store.list_audit(request_id="hitl_feedback:distill"))
    assert {e.data["text"] for e in recorded} == {
        "refunds above $500 need a manager's OK",
        "get a manager to approve refunds over 500",
    }


def _refund(amount: int) -> Action:
    return Action("refund", {"order": "A1", "amount": amount})
