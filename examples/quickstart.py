import sqlite3
import tempfile
import uuid
from pathlib import Path

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from hitl_langgraph import GatedToolNode, RiskPolicy, Rule, open_store
from hitl_langgraph.testing import ScriptedChatModel


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    return f"sent {amount} to {to}"


@tool
def lookup_account(name: str) -> str:
    """Look up an account."""
    return f"{name}: balance 12,000"


policy = RiskPolicy(
    rules=[
        Rule(
            tool="transfer_funds",
            score=lambda args: min(args["amount"] / 10_000, 1.0),
            approver_roles={"finance"},
        ),
        Rule(tool="lookup_*", score=0.0),
    ]
)  # default thresholds: score > 0.85 -> blocking approval
data = Path(tempfile.mkdtemp(prefix="hitl-quickstart-"))  # or any folder you name
store = open_store(f"sqlite:///{data / 'hitl.db'}")  # also "memory://", "postgresql://..."

def scripted_model(messages):        # offline stand-in; use init_chat_model("provider:model")
    if messages[-1].type == "human":  # a user asks: propose the transfer they asked for
        amount = int(messages[-1].content.split()[-1])
        return AIMessage("", tool_calls=[{"name": "transfer_funds", "id": str(uuid.uuid4()),
                                          "args": {"amount": amount, "to": "bob"}}])
    return AIMessage(f"Done: {messages[-1].content}")


model = ScriptedChatModel(script=scripted_model)
graph = StateGraph(MessagesState)
graph.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
graph.add_node("tools", GatedToolNode([transfer_funds, lookup_account], policy=policy, store=store))
graph.add_edge(START, "agent")
graph.add_conditional_edges("agent", tools_condition)
graph.add_edge("tools", "agent")
app = graph.compile(
    checkpointer=SqliteSaver(sqlite3.connect(data / "checkpoints.db", check_same_thread=False))
)

config = {"configurable": {"thread_id": str(uuid.uuid4())}}
paused = app.invoke({"messages": [("user", "pay bob 9000")]}, config)  # pauses at an interrupt
request = paused["__interrupt__"][0]
print("waiting:", request.value["action_requests"][0]["description"])

# later (minutes or days, any process): a reviewer decides and the graph resumes
done = app.invoke(Command(resume={request.id: {"decisions": [{"type": "approve"}]}}), config)
print(done["messages"][-1].content)
