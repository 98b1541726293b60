"""The async path (ainvoke / astream) on LangGraph's async SQLite and Postgres savers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fixtures_graph import Ledger, build_bank_app, thread
from langgraph.types import Command

from hitl_langgraph import InvalidDecision, open_store
from hitl_langgraph.testing import tool_call

# blockbuster, as under `langgraph dev`: no blocking call on the loop
pytestmark = pytest.mark.usefixtures("no_blocking")


@asynccontextmanager
async def async_sqlite(tmp_path: Path) -> AsyncIterator[Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.db")) as saver:
        yield saver


@asynccontextmanager
async def async_postgres(url: str) -> AsyncIterator[Any]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        await saver.setup()
        yield saver


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def async_saver(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    if request.param == "sqlite":
        return lambda: async_sqlite(tmp_path)
    url = request.getfixturevalue("postgres_url")
    return lambda: async_postgres(url)


def test_ainvoke_and_astream_cycle(async_saver: Callable[[], Any], tmp_path: Path) -> None:
    ledger = Ledger()
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    first = tool_call(
        ("transfer_funds", {"amount": 9_000, "to": "bob"}), ("close_account", {"name": "x"})
    )

    async def run() -> None:
        async with async_saver() as saver:
            app = build_bank_app(store, saver, first, ledger)
            cfg = thread()
            out = await app.ainvoke({"messages": [("user", "go")]}, cfg)
            intr = out["__interrupt__"][0]
            ids = [a["request_id"] for a in intr.value["action_requests"]]
            with pytest.raises(InvalidDecision):
                await app.ainvoke(Command(resume={intr.id: {"type": "approve"}}), cfg)  # 1 for 2
            state = await app.aget_state(cfg)
            assert [i.id for i in state.interrupts] == [intr.id]
            resume = {"decisions": [{"type": "approve", "request_id": ids[0]}]}
            chunks = [c async for c in app.astream(Command(resume={intr.id: resume}), cfg)]
            intr2 = next(c["__interrupt__"][0] for c in chunks if "__interrupt__" in c)
            assert ledger.count("transfer_funds") == 1
            out = await app.ainvoke(
                Command(resume={intr2.id: {"type": "reject", "request_id": ids[1]}}), cfg
            )
            assert out["messages"][-1].content == "done"

    asyncio.run(run())
    assert ledger.count("transfer_funds") == 1 and ledger.count("close_account") == 0


def test_async_only_tool_runs_once_after_approval(tmp_path: Path) -> None:
    from langchain_core.tools import StructuredTool
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import tools_condition

    from hitl_langgraph import GatedToolNode, RiskPolicy, Rule
    from hitl_langgraph.testing import ScriptedChatModel

    calls: list[int] = []

    async def refund(amount: int) -> str:
        await asyncio.sleep(0)
        calls.append(amount)
        return f"refunded {amount}"

    tool = StructuredTool.from_function(coroutine=refund, name="refund", description="Refund.")
    model = ScriptedChatModel(script=[tool_call(("refund", {"amount": 70})), tool_call()])
    g = StateGraph(MessagesState)

    async def agent(s: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(s["messages"])]}

    g.add_node("agent", agent)
    policy = RiskPolicy(rules=[Rule(tool="refund", score=0.9)])
    g.add_node("tools", GatedToolNode([tool], policy=policy, store=open_store("memory://")))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    app = g.compile(checkpointer=InMemorySaver())

    async def run() -> None:
        cfg = thread()
        intr = (await app.ainvoke({"messages": [("user", "refund")]}, cfg))["__interrupt__"][0]
        assert calls == []
        out = await app.ainvoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
        assert any(getattr(m, "content", "") == "refunded 70" for m in out["messages"])

    asyncio.run(run())
    assert calls == [70]
