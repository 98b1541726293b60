"""05 - HITLMiddleware with LangChain's create_agent (the ``agents`` extra).

The same policy, as agent middleware: one interrupt per model turn lists every gated
call (LangChain's ``batched`` mode); decisions match by position, as with LangChain's
own ``HumanInTheLoopMiddleware``. Offline: a scripted model.

    python examples/05_middleware.py
"""

import uuid

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from hitl_langgraph import HITLMiddleware, RiskPolicy, Rule, open_store
from hitl_langgraph.testing import ScriptedChatModel


@tool
def transfer_funds(amount: int, to: str) -> str:
    """Transfer money to an account."""
    return f"sent {amount} to {to}"


@tool
def lookup_account(name: str) -> str:
    """Look up an account."""
    return f"{name}: balance 12,000"


def script(messages):
    if messages[-1].type == "human":
        return AIMessage("", tool_calls=[
            {"name": "lookup_account", "args": {"name": "bob"}, "id": "c1"},
            {"name": "transfer_funds", "args": {"amount": 9000, "to": "bob"}, "id": "c2"},
        ])
    return AIMessage("Done: " + "; ".join(m.content for m in messages if m.type == "tool"))


policy = RiskPolicy(rules=[
    Rule(tool="transfer_funds", score=lambda a: min(a["amount"] / 10_000, 1.0)),
    Rule(tool="lookup_*", score=0.0),
])
agent = create_agent(
    ScriptedChatModel(script=script),
    tools=[transfer_funds, lookup_account],
    middleware=[HITLMiddleware(policy, store=open_store("memory://"))],
    checkpointer=InMemorySaver(),
)
config = {"configurable": {"thread_id": str(uuid.uuid4())}}
out = agent.invoke({"messages": [("user", "check bob, pay him 9000")]}, config)
pending = out["__interrupt__"][0]
print("waiting:", [r["name"] for r in pending.value["action_requests"]])

out = agent.invoke(Command(resume={pending.id: {"decisions": [{"type": "approve"}]}}), config)
print(out["messages"][-1].content)
