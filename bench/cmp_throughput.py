"""Throughput (runs/s) of a traced, risk-routed agent against the same graph without us.

The bank agent (scripted model -> tools -> model), alternating per run between
``lookup_account`` (score 0: auto) and ``transfer_funds(6000)`` (score 0.6: review,
which runs the tool and records the request for asynchronous review: nothing blocks).
Variants, interleaved in blocks of 10 runs, all on an ``InMemorySaver``:

* ours: ``GatedToolNode`` + ``RiskPolicy`` + SQLite store (as shipped) +
  ``setup_tracing`` (live Phoenix, 2 s export timeout) + ``GateSpanRecorder``;
* plain: stock ``ToolNode``, no tracing, no package;
* stock traced: stock ``ToolNode`` + stock OpenInference (same instrumentor, exporter
  timeout 2 s, same Phoenix).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from hitl_langgraph import GatedToolNode, open_store
from hitl_langgraph.testing import ScriptedChatModel

from .cmp_tracing import TIMEOUT, Instrumentation, stock_provider
from .core import Context
from .phoenix import shared_server

NAME = "throughput"
PARTS = 1


def _fixtures() -> Any:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import fixtures_graph

    return fixtures_graph


def build(tools: Any) -> Any:
    def script(messages: list[BaseMessage]) -> BaseMessage:
        if any(isinstance(m, AIMessage) for m in messages):
            return AIMessage("done")
        text = str(messages[0].content)
        call = (
            {"name": "transfer_funds", "args": {"amount": 6000, "to": "bob"}, "id": "c1"}
            if "pay" in text
            else {"name": "lookup_account", "args": {"name": "bob"}, "id": "c1"}
        )
        return AIMessage("", tool_calls=[call])

    model = ScriptedChatModel(script=script)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver())


def run(ctx: Context) -> None:
    try:
        from hitl_langgraph.tracing import GateSpanRecorder, setup_tracing
    except ImportError as exc:
        ctx.skip(NAME, f"tracing extra not installed: {exc}")
        return
    fx = _fixtures()
    server = shared_server()
    if server is None:
        ctx.skip(NAME, "phoenix is not installed")
        return
    endpoint = server.otlp_endpoint
    inst = Instrumentation()
    block, rounds = (10, 3) if ctx.quick else (10, 8)
    n = [0]

    def one(app: Any) -> None:
        n[0] += 1
        text = "pay bob" if n[0] % 2 else "look up bob"
        out = app.invoke(
            {"messages": [("user", text)]}, {"configurable": {"thread_id": uuid.uuid4().hex}}
        )
        assert out["messages"][-1].content == "done" and "__interrupt__" not in out

    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"sqlite:///{Path(d) / 'hitl.db'}")
        try:
            for _rep in ctx.repeats(NAME):
                tag = uuid.uuid4().hex[:6]
                ours_t = setup_tracing(
                    f"bench-tp-ours-{tag}",
                    endpoint,
                    instrument_langchain=False,
                    export_timeout=TIMEOUT,
                )
                stock_p = stock_provider(f"bench-tp-stock-{tag}", endpoint, TIMEOUT)
                ledger = fx.Ledger()
                variants: dict[str, tuple[Any, Any]] = {
                    "ours": (
                        build(
                            GatedToolNode(
                                fx.bank_tools(ledger),
                                policy=fx.bank_policy(),
                                store=store,
                                observers=[GateSpanRecorder(ours_t)],
                            )
                        ),
                        ours_t.tracer_provider,
                    ),
                    "plain": (build(ToolNode(fx.bank_tools(ledger))), None),
                    "stock traced": (build(ToolNode(fx.bank_tools(ledger))), stock_p),
                }
                rates: dict[str, list[float]] = {v: [] for v in variants}
                names = list(variants)
                for v in names:
                    inst.use(variants[v][1])
                    for _ in range(3):
                        one(variants[v][0])
                for r in range(rounds):
                    for v in names[r % 3 :] + names[: r % 3]:
                        app, provider = variants[v]
                        inst.use(provider)
                        t0 = time.perf_counter()
                        for _ in range(block):
                            one(app)
                        rates[v].append(block / (time.perf_counter() - t0))
                inst.use(None)
                med = {v: statistics.median(xs) for v, xs in rates.items()}
                how = (
                    f"same scripted agent and InMemorySaver, half auto / half review-routed runs; "
                    f"{block * rounds} runs per variant in interleaved blocks of {block}; "
                    "live Phoenix"
                )
                ctx.record(
                    NAME,
                    "traced + risk-routed, vs plain graph",
                    ours=med["ours"],
                    base=med["plain"],
                    unit="runs/s",
                    ours_label="GatedToolNode + SQLite store + setup_tracing",
                    base_label="stock ToolNode, no tracing",
                    how=how,
                    ratio_label="ours / baseline runs per second (higher is better)",
                )
                ctx.record(
                    NAME,
                    "traced + risk-routed, vs stock traced graph",
                    ours=med["ours"],
                    base=med["stock traced"],
                    unit="runs/s",
                    ours_label="GatedToolNode + SQLite store + setup_tracing",
                    base_label=f"stock ToolNode + stock OpenInference (timeout {TIMEOUT:g} s)",
                    how=how,
                    ratio_label="ours / baseline runs per second (higher is better)",
                )
                ours_t.shutdown(TIMEOUT)
                stock_p.shutdown()
        finally:
            inst.use(None)
            store.close()
