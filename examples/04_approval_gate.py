"""04 - approval_gate: gate a custom action held in the state (not a tool call).

A drafting node writes a payment into the state; the gate node asks the policy and, if
needed, a human; it routes to ``send`` or ``redraft`` with ``Command(goto=...)``. An
edit is written back to the state field before ``send`` runs.

    python examples/04_approval_gate.py
"""

import uuid
from typing import Any, Optional

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict

from hitl_langgraph import RiskPolicy, Rule, approval_gate, open_store


class State(TypedDict, total=False):
    payment: Optional[dict[str, Any]]
    status: str


policy = RiskPolicy(rules=[Rule(tool="payment", score=lambda a: min(a["amount"] / 10_000, 1.0))])
graph = StateGraph(State)
graph.add_node("draft", lambda s: {"payment": {"amount": 12_000, "to": "acme"}})
graph.add_node(
    "gate",
    approval_gate("payment", policy=policy, store=open_store("memory://"),
                  on_approve="send", on_reject="redraft"),
    destinations=("send", "redraft"),
)
graph.add_node("send", lambda s: {"status": "sent {amount} to {to}".format(**s["payment"])})
graph.add_node("redraft", lambda s: {"status": "sent back for redrafting"})
graph.add_edge(START, "draft")
graph.add_edge("draft", "gate")
app = graph.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": str(uuid.uuid4())}}
out = app.invoke({}, config)
pending = out["__interrupt__"][0]
print("waiting:", pending.value["action_requests"][0]["args"])

# the reviewer lowers the amount: the edited payment is what gets sent
edit = {"type": "edit",
        "edited_action": {"name": "payment", "args": {"amount": 8_000, "to": "acme"}}}
out = app.invoke(Command(resume={pending.id: edit}), config)
print(out["status"])  # sent 8000 to acme
