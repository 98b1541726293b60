"""03 - GatedToolNode in a ReAct graph: the risky call waits for a human, the rest run.

``GatedToolNode`` is a drop-in for LangGraph's ``ToolNode``. The lookup runs at once;
the 9,000 transfer stops at an ``interrupt()``; a decision resumes the graph and the
transfer runs exactly once. Offline (scripted model), in memory.

    python examples/03_gated_tool_node.py
"""

import uuid

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store
from hitl_langgraph.testing import ScriptedChatModel

ran = []


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    ran.append(("transfer_funds", amount))
    return f"sent {amount} to {to}"


@tool
def lookup_account(name: str) -> str:
    """Look up an account."""
    ran.append(("lookup_account", name))
    return f"{name}: balance 12,000"


def script(messages):
    if messages[-1].type == "human":
        return AIMessage("", tool_calls=[
            {"name": "lookup_account", "args": {"name": "bob"}, "id": "c1"},
            {"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c2"},
        ])
    return AIMessage("Done.")


policy = RiskPolicy(rules=[
    Rule(tool="transfer_funds", score=lambda a: min(a["amount"] / 10_000, 1.0)),
    Rule(tool="lookup_*", score=0.0),
])
model = ScriptedChatModel(script=script)
graph = StateGraph(MessagesState)
graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
graph.add_node("tools", GatedToolNode([transfer_funds, lookup_account], policy=policy,
                                      store=open_store("memory://")))
graph.add_edge(START, "agent")
graph.add_conditional_edges("agent", tools_condition)
graph.add_edge("tools", "agent")
app = graph.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": str(uuid.uuid4())}}
out = app.invoke({"messages": [("user", "check bob, then pay him 9000")]}, config)
pending = out["__interrupt__"][0]
for req in pending.value["action_requests"]:
    print(f"waiting: {req['name']} {req['args']} risk={req['risk_score']:.2f}")
print("ran so far:", ran)  # nothing of this tool step runs until the gated call is decided

decisions = [{"type": "approve", "request_id": r["request_id"]}
             for r in pending.value["action_requests"]]
out = app.invoke(Command(resume={pending.id: {"decisions": decisions}}), config)
print("ran after approval:", ran)
print(out["messages"][-1].content)
