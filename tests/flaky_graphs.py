"""A one-tool gated graph whose tool can fail on command (tests of failure paths)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule
from hitl_langgraph.gates.engine import GateEngine
from hitl_langgraph.store.base import ApprovalStore
from hitl_langgraph.testing import ScriptedChatModel, tool_call

# The replay's wait in these tests. Nothing here depends on it being short or long: a
# correct engine never waits when the claim was released, and when another worker holds
# the claim the test expects the timeout whatever its length (short keeps the test fast).
SHORT_WAIT = 0.2


class Flaky:
    """A tool body that raises on its first ``fail`` calls and then succeeds."""

    def __init__(self, fail: int = 1) -> None:
        self.fail = fail
        self.calls = 0
        self.done = 0

    def __call__(self, amount: int) -> str:
        self.calls += 1
        if self.calls <= self.fail:
            raise RuntimeError(f"bank API unavailable (call {self.calls})")
        self.done += 1
        return f"paid {amount}"


def build(
    store: ApprovalStore,
    body: Any,
    *,
    is_async: bool = False,
    wait: float = SHORT_WAIT,
    checkpointer: Any = None,
    worker: str | None = None,
    policy: RiskPolicy | None = None,
    clock: Any = None,
) -> Any:
    if is_async:

        @tool
        async def pay(amount: int) -> str:
            """Pay an amount."""
            result = body(amount)
            if asyncio.iscoroutine(result):
                result = await result
            return str(result)

    else:

        @tool
        def pay(amount: int) -> str:
            """Pay an amount."""
            return str(body(amount))

    first = tool_call(("pay", {"amount": 5}))

    def script(messages: list[BaseMessage]) -> BaseMessage:
        return first if not any(isinstance(m, AIMessage) for m in messages) else AIMessage("ok")

    model = ScriptedChatModel(script=script)
    engine = GateEngine(
        policy or RiskPolicy(rules=[Rule(tool="pay", score=0.9)]),
        store,
        execution_wait=wait,
        worker_id=worker,
        **({"clock": clock} if clock is not None else {}),
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", GatedToolNode([pay], engine=engine))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=checkpointer or InMemorySaver())


def start(app: Any) -> tuple[dict[str, Any], Any, str]:
    cfg = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:10]}"}}
    out = app.invoke({"messages": [("user", "pay 5")]}, cfg)
    (intr,) = out["__interrupt__"]
    return cfg, intr, intr.value["action_requests"][0]["request_id"]


def approve(intr: Any) -> Command[Any]:
    return Command(resume={intr.id: {"type": "approve"}})


def paid(out: dict[str, Any]) -> list[str]:
    return [str(m.content) for m in out["messages"] if isinstance(m, ToolMessage)]
