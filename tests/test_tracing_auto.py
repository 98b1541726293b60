"""One call turns asynchronous oversight on: ``setup_tracing`` alone makes every gate in
the process record GUARDRAIL spans, link decisions to the paused trace and feed extra
observers (the review sampler); gates can opt out or override.

Real gated graphs (GatedToolNode with no observers), a real SQLite checkpointer and an
in-memory span exporter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures_graph import Ledger, bank_policy, bank_tools, build_bank_app, thread
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hitl_langgraph import GatedToolNode, open_store
from hitl_langgraph.gates import events as gate_events
from hitl_langgraph.gates.events import GateEvent
from hitl_langgraph.tracing import GateSpanRecorder, attributes, setup_tracing


@pytest.fixture
def memory() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def saver(tmp_path: Any) -> Iterator[SqliteSaver]:
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as cp:
        yield cp


@pytest.fixture(autouse=True)
def _no_leftover_defaults() -> Iterator[None]:
    yield
    gate_events.clear_default_observers()


def _call(amount: int) -> AIMessage:
    return AIMessage(
        "",
        tool_calls=[
            {"name": "transfer_funds", "args": {"amount": amount, "to": "bob"}, "id": "c1"}
        ],
    )


def _spans(handle: Any, memory: InMemorySpanExporter) -> list[ReadableSpan]:
    assert handle.force_flush(5.0)
    return list(memory.get_finished_spans())


def _gate_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if (s.attributes or {}).get(attributes.OPENINFERENCE_SPAN_KIND) == "GUARDRAIL"
    ]


class Collector:
    def __init__(self) -> None:
        self.events: list[GateEvent] = []

    def __call__(self, event: GateEvent) -> None:
        self.events.append(event)


class Notifier(Collector):
    pass


def test_setup_tracing_alone_traces_every_gate_and_links_the_decision(
    memory: InMemorySpanExporter, saver: SqliteSaver
) -> None:
    store = open_store("memory://")
    ledger = Ledger()
    # the graph is compiled BEFORE tracing is set up: defaults are read per event
    app = build_bank_app(store, saver, _call(9500), ledger)
    collector = Collector()
    handle = setup_tracing("auto", span_exporter=memory, batch=False, observers=[collector])
    try:
        cfg = thread()
        out = app.invoke({"messages": [HumanMessage("pay bob")]}, cfg)
        (intr,) = out["__interrupt__"]
        app.invoke(Command(resume={intr.id: {"decisions": [{"type": "approve"}]}}), cfg)
        spans = _spans(handle, memory)
    finally:
        handle.shutdown(2.0)
    assert ledger.count("transfer_funds") == 1
    gates = {s.name: s for s in _gate_spans(spans)}
    assert set(gates) == {
        "gate transfer_funds → approve (requested)",
        "gate transfer_funds → approve (decided)",
        "gate transfer_funds → approve (executed)",
    }
    requested = gates["gate transfer_funds → approve (requested)"]
    decided = gates["gate transfer_funds → approve (decided)"]
    # the pause stored the paused trace ids (trace_ids=current_trace_ids by default) ...
    paused_trace = requested.attributes[attributes.HITL_PAUSED_TRACE_ID]  # type: ignore[index]
    assert paused_trace == f"{requested.context.trace_id:032x}"
    # ... and the decision in the resumed run (a new trace) links back to it
    assert decided.context.trace_id != requested.context.trace_id
    (link,) = decided.links
    assert f"{link.context.trace_id:032x}" == paused_trace
    assert requested.attributes[attributes.HITL_REVIEW_STATE] == "awaiting_approval"  # type: ignore[index]
    # the run's root row names what was gated, for the span list
    roots = [s for s in spans if s.parent is None and s.name.startswith("LangGraph")]
    assert {r.name for r in roots} == {"LangGraph · gate transfer_funds → approve"}
    for r in roots:
        assert r.attributes[attributes.HITL_ROUTE] == "approve"  # type: ignore[index]
        assert r.attributes[attributes.HITL_ACTION_TOOL] == "transfer_funds"  # type: ignore[index]
    # extra observers given to setup_tracing see every event of every gate
    assert {e.kind for e in collector.events} == {"requested", "decided", "executed"}
    # shutdown removes the defaults: no more spans, no more events
    n = len(collector.events)
    app2 = build_bank_app(store, saver, _call(10), Ledger())
    app2.invoke({"messages": [HumanMessage("pay bob 10")]}, thread())
    assert len(collector.events) == n
    assert gate_events.default_observers() == ()


def test_a_gate_can_opt_out_and_explicit_wiring_wins(
    memory: InMemorySpanExporter, saver: SqliteSaver
) -> None:
    store = open_store("memory://")
    collector = Collector()
    handle = setup_tracing("auto", span_exporter=memory, batch=False, observers=[collector])
    try:
        # opted out: no spans, no events, no paused trace ids
        from hitl_langgraph.gates.engine import GateEngine

        quiet = GateEngine(bank_policy(), store, tracing=False)
        app = _app(GatedToolNode(bank_tools(Ledger()), engine=quiet), saver, 9500)
        cfg = thread()
        app.invoke({"messages": [HumanMessage("pay")]}, cfg)
        assert _gate_spans(_spans(handle, memory)) == []
        assert collector.events == []
        (req,) = store.list_requests()
        assert req.status == "pending" and "paused_trace_id" not in req.metadata

        # explicit observers: a recorder of the same type replaces the default one (no
        # double spans); the default sampler-like collector still runs
        other = InMemorySpanExporter()
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(other))
        mine = Notifier()  # another type: the default collector still runs next to it
        explicit = GatedToolNode(
            bank_tools(Ledger()),
            policy=bank_policy(),
            store=store,
            observers=[GateSpanRecorder(provider), mine],
            trace_ids=lambda: ("ab" * 16, "cd" * 8),
        )
        memory.clear()
        app = _app(explicit, saver, 9400)
        app.invoke({"messages": [HumanMessage("pay")]}, thread())
        assert _gate_spans(_spans(handle, memory)) == []  # the default recorder did not run
        assert {s.name for s in other.get_finished_spans()} == {
            "gate transfer_funds → approve (requested)",
        }
        assert [e.kind for e in mine.events] == [e.kind for e in collector.events]
        pending = [r for r in store.list_requests() if r.args["amount"] == 9400]
        assert pending[0].metadata["paused_trace_id"] == "ab" * 16  # explicit trace_ids won
    finally:
        handle.shutdown(2.0)


def test_gates_false_registers_nothing(memory: InMemorySpanExporter, saver: SqliteSaver) -> None:
    handle = setup_tracing("auto", span_exporter=memory, batch=False, gates=False)
    try:
        assert gate_events.default_observers() == ()
        app = build_bank_app(open_store("memory://"), saver, _call(6000), Ledger())
        app.invoke({"messages": [HumanMessage("pay")]}, thread())
        spans = _spans(handle, memory)
        assert spans and _gate_spans(spans) == []
    finally:
        handle.shutdown(2.0)


def test_observers_must_be_callable() -> None:
    from hitl_langgraph.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="gate observers"):
        setup_tracing("auto", span_exporter=InMemorySpanExporter(), observers=["nope"])  # type: ignore[list-item]


def test_review_route_span_carries_route_and_input(
    memory: InMemorySpanExporter, saver: SqliteSaver
) -> None:
    handle = setup_tracing("auto", span_exporter=memory, batch=False)
    try:
        app = build_bank_app(open_store("memory://"), saver, _call(6000), Ledger())
        app.invoke({"messages": [HumanMessage("pay")]}, thread())
        spans = _spans(handle, memory)
    finally:
        handle.shutdown(2.0)
    names = {s.name for s in _gate_spans(spans)}
    assert names == {
        "gate transfer_funds → review (assessed)",
        "gate transfer_funds → review (executed)",
    }
    executed = next(s for s in _gate_spans(spans) if s.name.endswith("(executed)"))
    assert json.loads(str(executed.attributes[attributes.INPUT_VALUE]))["args"]["amount"] == 6000  # type: ignore[index]
    root = next(s for s in spans if s.parent is None)
    assert root.name == "LangGraph · gate transfer_funds → review"


def _app(node: GatedToolNode, saver: SqliteSaver, amount: int) -> Any:
    from fixtures_graph import scripted_turns
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import tools_condition

    model = scripted_turns(_call(amount))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", node)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=saver)
