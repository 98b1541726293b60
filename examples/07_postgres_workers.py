"""07 - Postgres and several processes: one pauses, a reviewer decides, another applies.

Process 1 (this script) runs the agent until the transfer waits, and records alice's
approval **without** the graph (as a web service or ``hitl approve`` without
``--graph`` would). Process 2 (``worker``, started here) holds the graph and applies
recorded decisions with ``Inbox.apply_decided()``: the transfer runs there, once.
Needs PostgreSQL: ``$HITL_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test).

    python examples/07_postgres_workers.py
"""

import os
import subprocess
import sys
import uuid

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from hitl_langgraph import GatedToolNode, Inbox, Reviewer, RiskPolicy, Rule, open_store
from hitl_langgraph.testing import ScriptedChatModel

URL = os.environ.get("HITL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    return f"sent {amount} to {to} (by worker pid {os.getpid()})"


def script(messages):
    if messages[-1].type == "human":
        call = {"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c1"}
        return AIMessage("", tool_calls=[call])
    return AIMessage(f"Done: {messages[-1].content}")


def build(store, saver):
    policy = RiskPolicy(rules=[Rule(tool="transfer_funds", score=0.95)])
    model = ScriptedChatModel(script=script)
    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    graph.add_node("tools", GatedToolNode([transfer_funds], policy=policy, store=store))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=saver)


def main():
    from langgraph.checkpoint.postgres import PostgresSaver

    try:
        store = open_store(URL)
    except Exception as exc:
        sys.exit(f"no PostgreSQL at {URL} (set HITL_POSTGRES_URL): {exc}")
    with PostgresSaver.from_conn_string(URL) as saver:
        saver.setup()
        if sys.argv[1:2] == ["worker"]:  # process 2: holds the graph, applies decisions
            report = Inbox(store, build(store, saver)).apply_decided()
            request_id = sys.argv[2]
            print(f"worker {os.getpid()}: applied {request_id in report.applied}")
            out = build(store, saver).get_state(
                {"configurable": {"thread_id": store.get_request(request_id).thread_id}}
            )
            print("worker:", out.values["messages"][-1].content)
            return
        app = build(store, saver)  # process 1: run until the transfer waits
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        app.invoke({"messages": [("user", "pay bob 9000")]}, config)
        request = Inbox(store).pending(thread_id=config["configurable"]["thread_id"]).items[0]
        print(f"main {os.getpid()}: waiting {request.request_id}")
        result = Inbox(store).approve(request.request_id, reviewer=Reviewer("alice"))
        print("main: alice's approval", result.outcome)  # recorded (no graph here)
    subprocess.run([sys.executable, __file__, "worker", request.request_id], check=True)


if __name__ == "__main__":
    main()
