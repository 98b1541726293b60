"""Part of "runs unchanged on the Agent Server": no blocking call on the event loop
(blockbuster active, as under ``langgraph dev``), and exactly once when the server
cancels a run while an approved tool is still running in its worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fixtures_graph import Ledger, build_bank_app, thread
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from hitl_langgraph import (
    GatedToolNode,
    HITLMiddleware,
    Inbox,
    Reviewer,
    RiskPolicy,
    Rule,
    approval_gate,
    open_store,
)
from hitl_langgraph.store import ApprovalStore, AsyncStore, open_async_store
from hitl_langgraph.testing import ScriptedChatModel, tool_call

pytestmark = pytest.mark.usefixtures("no_blocking")

TRANSFER = tool_call(("transfer_funds", {"amount": 9_000, "to": "bob"}))


@asynccontextmanager
async def saver_for(backend: str, tmp_path: Path, pg_url: str | None) -> AsyncIterator[Any]:
    if backend == "memory":
        yield InMemorySaver()
    elif backend == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.db")) as saver:
            yield saver
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        assert pg_url is not None
        async with AsyncPostgresSaver.from_conn_string(pg_url) as saver:
            await saver.setup()
            yield saver


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str | None]:
    """(name, store URL, checkpointer URL)."""
    if request.param == "memory":
        return "memory", "memory://", None
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path}/h.db", None
    url: str = request.getfixturevalue("postgres_schema_url")
    return "postgres", url, url


def test_the_detector_is_live(tmp_path: Path) -> None:
    """A sync store call on the loop raises - so the tests below would catch one."""
    from blockbuster import BlockingError

    store = open_store(f"sqlite:///{tmp_path}/h.db")

    async def run() -> None:
        with pytest.raises(BlockingError):
            store.count_requests()
        assert await AsyncStore.of(store).count_requests() == 0

    asyncio.run(run())


def test_gated_tool_node_and_inbox_never_block(
    backend: tuple[str, str, str | None], tmp_path: Path
) -> None:
    name, store_url, pg = backend
    ledger = Ledger()

    async def run() -> None:
        astore = await open_async_store(store_url)
        async with saver_for(name, tmp_path, pg) as saver:
            app = build_bank_app(astore.sync, saver, TRANSFER, ledger)
            cfg = thread()
            out = await app.ainvoke({"messages": [("user", "go")]}, cfg)
            rid = out["__interrupt__"][0].value["action_requests"][0]["request_id"]
            inbox = Inbox(astore.sync, app)
            assert [r.request_id for r in (await inbox.apending()).items] == [rid]
            res = await inbox.aapprove(rid, reviewer=Reviewer("ann", roles={"finance"}))
            assert res.outcome == "resumed"
            assert (await astore.get_execution(rid)).state == "done"  # type: ignore[union-attr]
            assert (await astore.verify_audit()).ok
        await astore.aclose()

    asyncio.run(run())
    assert ledger.count("transfer_funds") == 1


def test_middleware_never_blocks(tmp_path: Path) -> None:
    from fixtures_graph import bank_policy, bank_tools, scripted_turns
    from langchain.agents import create_agent

    ledger = Ledger()
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    app = create_agent(
        scripted_turns(TRANSFER),
        tools=bank_tools(ledger),
        middleware=[HITLMiddleware(policy=bank_policy(), store=store)],
        checkpointer=InMemorySaver(),
    )

    async def run() -> None:
        cfg = thread()
        intr = (await app.ainvoke({"messages": [("user", "go")]}, cfg))["__interrupt__"][0]
        out = await app.ainvoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
        assert out["messages"][-1].content == "done"

    asyncio.run(run())
    assert ledger.count("transfer_funds") == 1


def test_approval_gate_never_blocks(tmp_path: Path) -> None:
    from typing_extensions import TypedDict

    class S(TypedDict, total=False):
        payout: dict[str, Any]
        result: str

    store = open_store(f"sqlite:///{tmp_path}/h.db")
    g = StateGraph(S)
    g.add_node(
        "gate",
        approval_gate(
            "payout",
            on_approve="pay",
            on_reject="stop",
            policy=RiskPolicy(rules=[Rule(tool="payout", score=0.9)]),
            store=store,
        ),
    )
    g.add_node("pay", lambda s: {"result": "paid"})
    g.add_node("stop", lambda s: {"result": "stopped"})
    g.add_edge(START, "gate")
    app = g.compile(checkpointer=InMemorySaver())

    async def run() -> None:
        cfg = thread()
        out = await app.ainvoke({"payout": {"amount": 5}}, cfg)
        intr = out["__interrupt__"][0]
        out = await app.ainvoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
        assert out["result"] == "paid"

    asyncio.run(run())


# -- exactly once under cancellation ----------------------------------------------------


class SlowTool:
    """A sync tool that blocks in its worker thread until released."""

    def __init__(self, fail: bool = False) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.runs = 0
        self.fail = fail
        self.lock = threading.Lock()

        @tool
        def transfer_funds(amount: int, to: str) -> str:
            """Transfer money."""
            with self.lock:
                self.runs += 1
            self.started.set()
            assert self.release.wait(60), "never released"
            if self.fail:
                raise RuntimeError("bank unreachable")
            return f"sent {amount} to {to}"

        self.tool = transfer_funds


def slow_app(store: ApprovalStore, slow: SlowTool) -> Any:
    model = ScriptedChatModel(
        script=lambda msgs: TRANSFER if len(msgs) == 1 else tool_call()  # type: ignore[arg-type,return-value]
    )
    g = StateGraph(MessagesState)
    g.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    policy = RiskPolicy(rules=[Rule(tool="transfer_funds", score=0.9)])
    g.add_node(
        "tools",
        GatedToolNode([slow.tool], policy=policy, store=store, handle_tool_errors=False),
    )
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver())


async def _cancel_while_running(
    app: Any, cfg: dict[str, Any], iid: str, slow: SlowTool
) -> None:
    first = asyncio.ensure_future(app.ainvoke(Command(resume={iid: {"type": "approve"}}), cfg))
    await asyncio.to_thread(slow.started.wait, 30)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_cancelled_run_keeps_the_claim_and_a_second_run_gets_the_outcome(
    store_kind: str, tmp_path: Path
) -> None:
    store = open_store("memory://" if store_kind == "memory" else f"sqlite:///{tmp_path}/h.db")
    slow = SlowTool()
    app = slow_app(store, slow)

    async def run() -> None:
        cfg = thread()
        intr = (await app.ainvoke({"messages": [("user", "go")]}, cfg))["__interrupt__"][0]
        rid = intr.value["action_requests"][0]["request_id"]
        await _cancel_while_running(app, cfg, intr.id, slow)
        # the awaiting run is gone, the tool still runs: the claim is held ("started":
        # the journal marks a claim started just before the tool is called)
        running = await AsyncStore.of(store).get_execution(rid)
        assert running is not None and running.state == "started"
        second = asyncio.ensure_future(
            app.ainvoke(Command(resume={intr.id: {"type": "approve"}}), cfg)
        )
        await asyncio.sleep(0.2)  # give the second run time to (wrongly) start the tool
        assert not second.done()
        slow.release.set()
        out = await second
        msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
        assert [m.content for m in msgs] == ["sent 9000 to bob"]
        done = await AsyncStore.of(store).get_execution(rid)
        assert done is not None and done.state == "done"

    asyncio.run(run())
    assert slow.runs == 1


def test_an_action_failing_after_its_run_was_cancelled_releases_the_claim(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/h.db")
    slow = SlowTool(fail=True)
    app = slow_app(store, slow)

    async def run() -> None:
        cfg = thread()
        intr = (await app.ainvoke({"messages": [("user", "go")]}, cfg))["__interrupt__"][0]
        rid = intr.value["action_requests"][0]["request_id"]
        await _cancel_while_running(app, cfg, intr.id, slow)
        slow.release.set()
        twin = AsyncStore.of(store)
        from hitl_langgraph.gates._complete import in_flight

        while in_flight():
            await asyncio.sleep(0.01)
        assert await twin.get_execution(rid) is None  # released: a retry may run it

    asyncio.run(run())
    assert slow.runs == 1


