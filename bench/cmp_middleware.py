"""HITLMiddleware against LangChain's HumanInTheLoopMiddleware inside ``create_agent``.

The same scripted model (one ``transfer_funds(9000)`` call, then "done"), the same tool,
the same checkpointer object; one cycle = invoke until the interrupt, then resume with
an approval, on a fresh thread. LangChain's middleware gates by tool name
(``interrupt_on={"transfer_funds": True}``); ours scores the call with a ``RiskPolicy``
(score 0.9 -> approve) and also writes its store (pending index, decision, journal,
audit), which LangChain's does not. Compared mode for mode: ``per_call`` against
``per_call``, and ``batched`` against ``batched`` when this checkout's HITLMiddleware
takes a ``mode`` argument.
"""

from __future__ import annotations

import inspect
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import HITLMiddleware, open_store
from hitl_langgraph.testing import ScriptedChatModel

from .cmp_gate import policy, transfer_funds
from .core import Context, interleave, med_ms

NAME = "middleware"
PARTS = 2
CALL = AIMessage(
    "", tool_calls=[{"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c1"}]
)


def model() -> ScriptedChatModel:
    def script(messages: list[BaseMessage]) -> BaseMessage:
        if not any(isinstance(m, AIMessage) for m in messages):
            return CALL
        return AIMessage("done")

    return ScriptedChatModel(script=script)


def ours_batched_supported() -> str | None:
    """The keyword HITLMiddleware takes for its batched mode, if any."""
    params = inspect.signature(HITLMiddleware.__init__).parameters
    for name in ("mode", "interrupt_mode"):
        if name in params:
            return name
    return None


def cycle(app: Any, answer: Callable[[Any], Any]) -> Callable[[], None]:
    def go() -> None:
        cfg = {"configurable": {"thread_id": uuid.uuid4().hex}}
        out = app.invoke({"messages": [("user", "pay")]}, cfg)
        intr = out["__interrupt__"]
        assert len(intr) == 1, intr
        done = app.invoke(Command(resume={intr[0].id: answer(intr[0])}), cfg)
        assert done["messages"][-1].content == "done", done["messages"][-1]

    return go


def per_call_answer(_: Any) -> Any:
    return {"type": "approve"}


def batched_answer(_: Any) -> Any:
    return {"decisions": [{"type": "approve"}]}


def run(ctx: Context) -> None:
    rounds = 15 if ctx.quick else 40
    mode_kw = ours_batched_supported()
    if mode_kw is None:
        ctx.skip(
            f"{NAME}/batched",
            "HITLMiddleware takes no mode argument in this checkout (the dropin branch adds it)",
        )
    with tempfile.TemporaryDirectory() as d:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(Path(d) / "cp.db", check_same_thread=False)
        setups = [
            ("memory", InMemorySaver(), "memory://"),
            ("sqlite", SqliteSaver(conn), f"sqlite:///{Path(d) / 'hitl.db'}"),
        ]
        for backend, saver, url in setups:
            store = open_store(url)

            def agent(mw: Any, saver: Any = saver) -> Any:
                return create_agent(
                    model(), tools=[transfer_funds], middleware=[mw], checkpointer=saver
                )

            variants = {
                "lc per_call": cycle(
                    agent(
                        HumanInTheLoopMiddleware(
                            {"transfer_funds": True}, interrupt_mode="per_call"
                        )
                    ),
                    per_call_answer,
                ),
                "ours per_call": cycle(
                    agent(
                        HITLMiddleware(
                            policy(), store=store, **({mode_kw: "per_call"} if mode_kw else {})
                        )
                    ),
                    per_call_answer,
                ),
                "lc batched": cycle(
                    agent(
                        HumanInTheLoopMiddleware({"transfer_funds": True}, interrupt_mode="batched")
                    ),
                    batched_answer,
                ),
            }
            if mode_kw is not None:
                variants["ours batched"] = cycle(
                    agent(HITLMiddleware(policy(), store=store, **{mode_kw: "batched"})),
                    batched_answer,
                )
            how = (
                f"same create_agent, model, tool and {type(saver).__name__}; ours also writes a "
                f"{backend} store (as shipped), LangChain's writes nothing else"
            )
            for _rep in ctx.repeats(f"{NAME}/{backend}"):
                t = interleave(variants, rounds)
                for mode in ("per_call", "batched"):
                    if f"ours {mode}" not in t:
                        continue
                    ctx.record(
                        NAME,
                        f"{backend}: {mode}",
                        ours=med_ms(t[f"ours {mode}"]),
                        base=med_ms(t[f"lc {mode}"]),
                        ours_label=f"HITLMiddleware ({mode})",
                        base_label=f"langchain HumanInTheLoopMiddleware ({mode})",
                        how=how,
                    )
                if mode_kw is None:
                    ctx.record(
                        NAME,
                        f"{backend}: ours per_call vs LangChain batched",
                        ours=med_ms(t["ours per_call"]),
                        base=med_ms(t["lc batched"]),
                        ours_label="HITLMiddleware (per_call)",
                        base_label="langchain HumanInTheLoopMiddleware (batched, its default)",
                        how=how + "; one gated call per turn, so both pause once per cycle",
                    )
            store.close()
        conn.close()
