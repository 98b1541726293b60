"""Helpers for the feedback-loop tests: review records, a gated bank graph whose agent
reads its guidance, and an in-process Phoenix prompts API (``httpx.MockTransport``) that
mimics what the real-server test checks on Phoenix 20.26: versions with description and
metadata, tags that move between versions, lowercase tag names, 404 for unknown names."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import httpx
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.store.review_records import ReviewRecord, annotation_key
from hitl_langgraph.testing import ScriptedChatModel

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
RULE = "Ask for a manager's approval before any refund over 500 dollars."


def review(
    span: str,
    *,
    name: str = "hitl_verdict",
    label: str | None = "incorrect",
    explanation: str | None = None,
    reviewer: str | None = "alice",
    identifier: str | None = None,
    kind: str = "HUMAN",
    request_id: str | None = None,
    at: datetime = T0,
    metadata: dict[str, Any] | None = None,
    project: str = "proj",
) -> ReviewRecord:
    """One collected annotation, keyed as the review package keys them."""
    ident = identifier if identifier is not None else (f"human:{reviewer}" if reviewer else "")
    return ReviewRecord(
        review_id=annotation_key(project, span, name, ident),
        project=project,
        span_id=span,
        name=name,
        identifier=ident,
        annotator_kind=kind,
        source="API",
        created_at=at,
        updated_at=at,
        collected_at=at,
        label=label if name == "hitl_verdict" else None,
        explanation=explanation,
        reviewer=reviewer,
        request_id=request_id,
        metadata=metadata or {},
    )


def span_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Ledger:
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.entries if n == name)


def refund_policy(**kw: Any) -> RiskPolicy:
    """refund: 0.6 (review); lookup: 0.0; refunds over 5000 need approval."""
    return RiskPolicy(
        rules=[
            Rule(tool="refund", score=lambda a: 0.9 if a["amount"] > 5000 else 0.6, floor=0.55),
            Rule(tool="lookup_order", score=0.0),
        ],
        **kw,
    )


def guided_model(seen: list[str]) -> ScriptedChatModel:
    """The honest stand-in: it refunds straight away unless its system prompt carries the
    rule (then it asks for a manager). ``seen`` collects each system prompt it got."""

    def script(messages: list[BaseMessage]) -> BaseMessage:
        system = next((m.text for m in messages if isinstance(m, SystemMessage)), "")
        seen.append(system)
        if any(isinstance(m, AIMessage) for m in messages):
            return AIMessage("done")
        told = "manager's approval" in system
        if told:
            return AIMessage("This refund needs a manager's approval first; I have asked one.")
        ask = next(m.text for m in messages if isinstance(m, HumanMessage))
        amount = int(re.findall(r"\d+", ask)[-1])
        order = (re.findall(r"order (\w+)", ask) or ["A1"])[0]
        return AIMessage(
            "",
            tool_calls=[
                {
                    "name": "refund",
                    "args": {"order": order, "amount": amount},
                    "id": f"call_{uuid.uuid4().hex[:8]}",
                    "type": "tool_call",
                }
            ],
        )

    return ScriptedChatModel(script=script)


def build_refund_app(
    store: ApprovalStore,
    feedback: Any,
    ledger: Ledger,
    seen: list[str],
    *,
    observers: list[Any] | None = None,
    policy: RiskPolicy | None = None,
    other_seen: list[str] | None = None,
) -> Any:
    """START -> triage (its own prompt) -> payments (the refund agent) <-> tools.

    ``feedback`` is a :class:`~hitl_langgraph.feedback.ReviewerFeedback`; both nodes
    build their system prompt with ``feedback.apply``."""
    from langchain_core.tools import tool

    @tool
    def refund(order: str, amount: int) -> str:
        """Refund an order."""
        ledger.entries.append(("refund", {"order": order, "amount": amount}))
        return f"refunded {amount} on {order}"

    model = guided_model(seen)
    base = "You are the payments agent. Refund orders when customers ask."

    def triage(state: MessagesState) -> dict[str, Any]:
        ask = state["messages"][0].text
        prompt = feedback.apply("You route customer requests.", node="triage", input=ask)
        if other_seen is not None:
            other_seen.append(prompt)
        return {}

    def payments(state: MessagesState) -> dict[str, Any]:
        ask = state["messages"][0].text
        system = feedback.apply(base, node="payments", input=ask, tools=["refund"])
        return {"messages": [model.invoke([SystemMessage(system), *state["messages"]])]}

    g = StateGraph(MessagesState)
    g.add_node("triage", triage)
    g.add_node("payments", payments)
    g.add_node(
        "tools",
        GatedToolNode(
            [refund], policy=policy or refund_policy(), store=store, observers=observers or []
        ),
    )
    g.add_edge(START, "triage")
    g.add_edge("triage", "payments")
    g.add_conditional_edges("payments", tools_condition)
    g.add_edge("tools", "payments")
    return g.compile(checkpointer=InMemorySaver())


def run(app: Any, text: str) -> dict[str, Any]:
    cfg = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:8]}"}}
    out: dict[str, Any] = app.invoke({"messages": [HumanMessage(text)]}, cfg)
    return out


# -- an in-process Phoenix prompts API ---------------------------------------------------
_TAG = re.compile(r"^[a-z0-9]([_a-z0-9-]*[a-z0-9])?$")


def _gid(kind: str, n: int) -> str:
    return base64.b64encode(f"{kind}:{n}".encode()).decode()


@dataclass
class FakePrompts:
    prompts: dict[str, list[str]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def client(self) -> Any:
        from hitl_langgraph.review import PhoenixClient

        return PhoenixClient(
            "http://phoenix.test", transport=httpx.MockTransport(self.handle), project_wait=0
        )

    def _prompt_of(self, vid: str) -> str:
        return next(p for p, vs in self.prompts.items() if vid in vs)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("down", request=request)
        path = unquote(request.url.path)
        self.requests.append((request.method, path))
        body = json.loads(request.content) if request.content else None
        parts = path.strip("/").split("/")[1:]
        if parts == ["prompts"] and request.method == "POST":
            name = body["prompt"]["name"]
            vid = _gid("PromptVersion", len(self.versions) + 1)
            self.versions[vid] = {**body["version"], "id": vid}
            self.prompts.setdefault(name, []).append(vid)
            return httpx.Response(200, json={"data": self.versions[vid]})
        if parts[0] == "prompts" and len(parts) >= 3:
            name = parts[1]
            if name not in self.prompts:
                return httpx.Response(404, text="Not Found")
            if parts[2] == "latest":
                return httpx.Response(200, json={"data": self.versions[self.prompts[name][-1]]})
            if parts[2] == "versions":
                data = [self.versions[v] for v in reversed(self.prompts[name])]
                return httpx.Response(200, json={"data": data, "next_cursor": None})
            if parts[2] == "tags":
                vid = self.tags.get((name, parts[3]))
                if vid is None:
                    return httpx.Response(404, text="Not Found")
                return httpx.Response(200, json={"data": self.versions[vid]})
        if parts[0] == "prompt_versions":
            vid = parts[1]
            if vid not in self.versions:
                return httpx.Response(404, text="Not Found")
            if len(parts) == 2:
                return httpx.Response(200, json={"data": self.versions[vid]})
            name = self._prompt_of(vid)
            if request.method == "POST":
                if not _TAG.match(body["name"]):
                    return httpx.Response(422, text="bad tag name")
                self.tags[(name, body["name"])] = vid
                return httpx.Response(204)
            data = [
                {"name": t, "id": t} for (p, t), v in self.tags.items() if p == name and v == vid
            ]
            return httpx.Response(200, json={"data": data, "next_cursor": None})
        return httpx.Response(404, text=f"unhandled {path}")


def later(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)
