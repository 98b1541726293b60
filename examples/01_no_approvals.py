"""01 - the baseline: a ReAct agent with plain LangGraph, no oversight at all.

Whatever the model proposes runs at once, a 9,000 transfer included. The next examples
add the gates. Runs offline: the model is a scripted fake that proposes one transfer.

    python examples/01_no_approvals.py
"""

import uuid

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from hitl_langgraph.testing import ScriptedChatModel


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    return f"sent {amount} to {to}"


def script(messages):
    if messages[-1].type == "human":
        call = {"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c1"}
        return AIMessage("", tool_calls=[call])
    return AIMessage(f"Done: {messages[-1].content}")


model = ScriptedChatModel(script=script)
graph = StateGraph(MessagesState)
graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
graph.add_node("tools", ToolNode([transfer_funds]))  # runs every call, no questions asked
graph.add_edge(START, "agent")
graph.add_conditional_edges("agent", tools_condition)
graph.add_edge("tools", "agent")
app = graph.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": str(uuid.uuid4())}}
out = app.invoke({"messages": [("user", "pay bob 9000")]}, config)
print(out["messages"][-1].content)  # Done: sent 9000 to bob  (nobody was asked)
